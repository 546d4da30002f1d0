"""The voice library: named reference recordings that tasks clone."""

from higgs_cli.voices.library import SkippedFolder, Voice, VoiceLibrary, default_root

__all__ = ["SkippedFolder", "Voice", "VoiceLibrary", "default_root"]
