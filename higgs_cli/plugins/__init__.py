"""The plugin system: hookspecs, the one plugin manager, and the Task protocol."""

import pluggy

hookimpl = pluggy.HookimplMarker("higgs")

__all__ = ["hookimpl"]
