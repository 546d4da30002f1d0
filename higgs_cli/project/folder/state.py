"""The last render's state (`.higgs/last_render.json`): which model keyed the lines, and where
the outputs went, so that `status` and `clean` find them without being told again.

The state names the folder it was written for (its path and inode) and keeps
the output folder relative when it lies inside the project: a copied or moved
project reads no state, and so never acts on its original's outputs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from higgs_cli.fsutil import atomic_write_text, read_json
from higgs_cli.project.layout import ProjectLayout


@dataclass(frozen=True)
class RenderState:
    model: str
    model_id: str
    codec_id: str
    project: str  # ProjectLayout.folder_id() of the folder this state belongs to
    build_dir: str  # relative to the project when inside it (posix), else absolute

    def build(self, layout: ProjectLayout) -> Path:
        return layout.root / self.build_dir  # an absolute build_dir stays itself


def write_state(layout: ProjectLayout, build: Path, *, model: str, model_id: str, codec_id: str) -> None:
    root, where = layout.root.resolve(), build.resolve()
    build_dir = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
    state = RenderState(model=model, model_id=model_id, codec_id=codec_id, project=layout.folder_id(),
                        build_dir=build_dir)
    atomic_write_text(layout.state_file, json.dumps(asdict(state), indent=2, ensure_ascii=False) + "\n")


def read_state(layout: ProjectLayout) -> RenderState | None:
    """The last render's state, or None: none, unreadable, or written for another folder."""
    data = read_json(layout.state_file)
    if data is None or data.get("project") != layout.folder_id():
        return None  # a copy, a moved project, or a state from before states named their folder
    try:
        state = RenderState(**{k: data[k] for k in RenderState.__dataclass_fields__})
    except KeyError:
        return None
    return state if all(isinstance(v, str) for v in asdict(state).values()) else None


def clear_state(layout: ProjectLayout) -> None:
    layout.state_file.unlink(missing_ok=True)

