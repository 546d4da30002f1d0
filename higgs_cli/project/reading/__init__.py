"""Reading `project.yaml`: safe YAML, the schema, values, speakers, lexicon and length checks, the loader.

The lowest room of the project layer: it imports only `project.layout` and the layers
below the workstation (plugins' script model, errors, engine's torch-free face).
"""
