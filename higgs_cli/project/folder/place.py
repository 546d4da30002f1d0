"""Where a render reads its project and writes its outputs, when either is a URL.

`prepare_render(path, output_dir)` is called by `project render` before it
loads the project: a project URL is mirrored locally (mirror.py); an output URL
is checked now (a missing bucket or bad credentials fail before any line is
generated) and rendered into a local staging folder that `publish()` uploads
after the render (publish.py). A project read from a bucket publishes to its
own `build/` prefix unless --output-dir says otherwise. Local paths pass through.
`prepare_project(path)` is the same for `project status` and `project clean`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from higgs_cli.project.layout import BUILD_DIR
from higgs_cli.storage.objects import Prefix
from higgs_cli.storage.urls import StorageUrl, looks_like_url, parse_url


@dataclass
class RenderPlace:
    path: Path  # the local project folder or file to load
    out_dir: Path | None  # the local folder to render into (None: the project's build/)
    source: StorageUrl | None = None  # the project's URL, when it came from a bucket
    target: Prefix | None = None  # where the build is published, when that is a URL

    def publish(self) -> dict | None:
        """Upload the finished build (manifest last); what was written, or None for a local render."""
        if self.target is None:
            return None
        from higgs_cli.project.folder.publish import publish_build

        return publish_build(self.out_dir, self.target.url, target=self.target).to_dict()


def prepare_render(path: str | os.PathLike, output_dir: str | os.PathLike | None) -> RenderPlace:
    """Resolve a render's project and output locations (see the module's docstring)."""
    source = None
    if looks_like_url(path):
        from higgs_cli.project.folder.mirror import mirror_project

        source = parse_url(path, what="project")
        local = mirror_project(source)
        if output_dir is None:
            output_dir = str(source.child(BUILD_DIR))
    else:
        local = Path(path)
    if output_dir is not None and looks_like_url(output_dir):
        from higgs_cli.project.folder.publish import stage

        target = Prefix(parse_url(output_dir, what="--output-dir"), what="--output-dir")
        target.check("rendering into")
        return RenderPlace(local, stage(target.url), source, target)
    return RenderPlace(local, Path(output_dir) if output_dir is not None else None, source, None)


def prepare_project(path: str | os.PathLike) -> RenderPlace:
    """Where `project status` and `project clean` find a project: a URL mirrored as `prepare_render`
    mirrors it (the same local folder, so its cache and last render's state), with `out_dir` and
    `target` where a render publishes by default (its `build/` prefix). Local paths pass through."""
    if not looks_like_url(path):
        return RenderPlace(Path(path), None)
    from higgs_cli.project.folder.mirror import mirror_project
    from higgs_cli.project.folder.publish import stage

    source = parse_url(path, what="project")
    local = mirror_project(source)
    target = Prefix(source.child(BUILD_DIR), what="project")
    return RenderPlace(local, stage(target.url), source, target)
