"""The voice library: named reference recordings that tasks clone; and the one voice resolver
(reference_turn.py), which makes any voice a prompt's reference turn.

The names below load on first use, so importing `higgs_cli.voices.reference_turn` (as `higgs say`
does at start-up) does not load the library and its audio stack.
"""

from __future__ import annotations

__all__ = ["CodesCache", "SkippedFolder", "Voice", "VoiceLibrary", "check_name", "default_root",
           "prepare_reference"]


def __getattr__(name: str):
    if name == "CodesCache":
        from higgs_cli.voices.codes import CodesCache

        return CodesCache
    if name == "prepare_reference":
        from higgs_cli.voices.reference import prepare_reference

        return prepare_reference
    if name in __all__:
        from higgs_cli.voices import library

        return getattr(library, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
