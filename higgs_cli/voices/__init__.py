"""The voice library: named reference recordings that tasks clone; and the one voice resolver
(reference_turn.py), which makes any voice a prompt's reference turn.

The names below load on first use, so importing `higgs_cli.voices.reference_turn` (as `higgs say`
does at start-up) does not load the library and its audio stack.
"""

from __future__ import annotations

import importlib

_WHERE = {"CodesCache": "codes", "SkippedFolder": "library", "Voice": "library", "VoiceLibrary": "library",
          "check_name": "library", "default_root": "library", "prepare_reference": "reference"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
