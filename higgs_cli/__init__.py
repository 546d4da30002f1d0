"""higgs: a command-line workstation for expressive speech with Higgs Audio V2."""

__version__ = "0.1.0"
