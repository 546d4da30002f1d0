"""The higgs home folder: where the voice library and the compiled-step cache live.

`HIGGS_HOME` puts everything under one folder (tests, containers, a shared
machine). Without it the platform's folders are used: the user data folder for
what a user made (voices) and the user cache folder for what can be rebuilt
(compiled decode steps). Torch-free; every caller asks here.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "higgs"
HOME_ENV = "HIGGS_HOME"


def higgs_home() -> Path | None:
    """$HIGGS_HOME (with `~` expanded), or None when it is unset or empty."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else None


def data_dir() -> Path:
    """Where user-made data lives: $HIGGS_HOME, else the platform's user data folder for higgs."""
    home = higgs_home()
    if home is not None:
        return home
    import platformdirs  # needed only without HIGGS_HOME

    return Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """Where rebuildable files live: $HIGGS_HOME, else the platform's user cache folder for higgs."""
    home = higgs_home()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def voices_dir() -> Path:
    """The voice library: $HIGGS_HOME/voices, else voices/ in the user data folder."""
    return data_dir() / "voices"


def compiled_dir() -> Path:
    """Compiled decode steps: $HIGGS_HOME/compiled, else compiled/ in the user cache folder."""
    return cache_dir() / "compiled"


def training_codes_dir() -> Path:
    """Training clips' audio codes (`higgs voice prepare`/`train`), by content: `training/codes/` in the
    user cache folder ($HIGGS_HOME with it set)."""
    return cache_dir() / "training" / "codes"


def training_runs_dir() -> Path:
    """`higgs voice train`'s runs (checkpoints, for --resume), one folder per voice: `training/runs/` in
    the user data folder ($HIGGS_HOME with it set)."""
    return data_dir() / "training" / "runs"
