"""The model engine: the only package that imports torch and transformers.

Import `higgs_cli.engine.request` freely (no torch); `higgs_cli.engine.session`
pulls in torch and transformers, so import it only where a model is needed.
"""
