"""`higgs model`: pull, inspect and create checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from higgs_cli.cli.factory import make_app
from higgs_cli.cli.options import DEFAULT_MODEL, JsonFlag, QuietFlag, RevisionOption
from higgs_cli.cli.output import human_size, out
from higgs_cli.engine.request import RANDOM_WEIGHTS_NOTE

app = make_app("model", help="Download, inspect and create models.")


@app.command("pull")
def pull(
    repo: Annotated[Optional[str], typer.Argument(show_default=False,
                                                  help=f"Hub repo id [default: {DEFAULT_MODEL}].")] = None,
    revision: RevisionOption = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Download a model and its audio tokenizer into the Hugging Face cache."""
    from higgs_cli.cli.progress import status
    from higgs_cli.engine import checkpoint

    repo = repo or DEFAULT_MODEL
    with status(f"downloading {repo}..."):
        path = checkpoint.download(repo, revision=revision)
        files = checkpoint.locate(str(path))
    data = {"repo_id": repo, "revision": revision, "path": str(path),
            "audio_tokenizer": str(files.audio_tokenizer_dir)}
    out.result(data, lambda c: c.print(f"{repo} is ready at {path}"))


@app.command("info")
def info(
    model: Annotated[Optional[str], typer.Argument(
        show_default=False, help="A Hub repo id or checkpoint folder; without it, list cached models.")] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Show cached models, or one model's configuration."""
    from rich.table import Table

    from higgs_cli import models

    if model is None:
        rows = models.cached_models()

        def table(console) -> None:
            if not rows:
                console.print("no Higgs models in the Hugging Face cache; `higgs model pull` downloads one")
                return
            grid = Table("repo", "size", "revisions", "path")
            for row in rows:
                grid.add_row(row["repo_id"], human_size(row["size_bytes"]), ", ".join(row["revisions"]), row["path"])
            console.print(grid)

        out.result({"models": rows}, table)
        return
    from higgs_cli.engine import checkpoint

    files = checkpoint.locate(model)
    summary = models.summarize_config(files.model_dir)
    data = {"model": model, "path": str(files.model_dir), "audio_tokenizer": str(files.audio_tokenizer_dir),
            **summary}
    if summary["random_weights"]:
        data["warning"] = RANDOM_WEIGHTS_NOTE
        out.random_weights()

    def human(console) -> None:
        grid = Table(show_header=False, box=None)
        for key, value in data.items():
            if key == "warning":
                continue  # said once, on stderr
            if key == "size_bytes":
                value = human_size(value)
            elif key == "parameters" and value:
                value = f"{value / 1e6:.1f} M"
            grid.add_row(Text(key, style="bold"), str(value))
        console.print(grid)

    out.result(data, human)


@app.command("init-random")
def init_random(
    folder: Annotated[Path, typer.Argument(help="Where to write the checkpoint.", show_default=False)],
    size: Annotated[str, typer.Option("--size", help="tiny (a few MB, tests), small (hidden 1024, 8 layers) "
                                                   "or full (the real dimensions, 11 GB).")] = "tiny",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for the random weights.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty folder.")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Write a random-init checkpoint in the real layout. It speaks noise: for tests and demos."""
    from higgs_cli.cli.progress import status
    from higgs_cli.engine import checkpoint

    if size not in checkpoint.SIZES:
        from higgs_cli.errors import UsageError

        raise UsageError(f"unknown size '{size}'", hint=f"choose one of: {', '.join(checkpoint.SIZES)}")
    with status(f"writing a random {size} checkpoint..."):
        path = checkpoint.init_random(folder, size=size, seed=seed, force=force)
    from higgs_cli import models

    data = {"path": str(path), "size": size, "seed": seed, "size_bytes": models.folder_size(path),
            "warning": RANDOM_WEIGHTS_NOTE}
    out.random_weights()
    out.result(data, lambda console: console.print(
        f"wrote a random {size} checkpoint to {path} ({human_size(data['size_bytes'])})"))
