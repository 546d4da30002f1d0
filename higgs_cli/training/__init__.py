"""Training a voice further (`higgs voice prepare`, `higgs voice train`): the workstation's side.

Torch-free: preparing data (reading, cutting, checking and encoding clips), the
run's settings and manifest, and storing the adapter with the voice. The steps
themselves run in `higgs_cli.engine.training`, the only place that imports torch
and peft.
"""
