"""The voice library: named reference recordings that tasks clone."""

from higgs_cli.voices.codes import CodesCache
from higgs_cli.voices.library import SkippedFolder, Voice, VoiceLibrary, check_name, default_root
from higgs_cli.voices.reference import prepare_reference

__all__ = ["CodesCache", "SkippedFolder", "Voice", "VoiceLibrary", "check_name", "default_root",
           "prepare_reference"]
