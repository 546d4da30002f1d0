"""`higgs model`: pull, inspect and create checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from higgs_cli.cli.output import RANDOM_MODEL_WARNING, out

app = typer.Typer(no_args_is_help=True)


@app.command("pull")
def pull(
    repo: Annotated[Optional[str], typer.Argument(help="Hub repo id [default: the Higgs Audio V2 base model].")] = None,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit.")] = None,
) -> None:
    """Download a model and its audio tokenizer into the Hugging Face cache."""
    from higgs_cli.cli.progress import status
    from higgs_cli.engine import checkpoint

    repo = repo or checkpoint.DEFAULT_MODEL
    with status(f"downloading {repo}..."):
        path = checkpoint.download(repo, revision=revision)
        files = checkpoint.locate(str(path))
    data = {"repo_id": repo, "revision": revision, "path": str(path),
            "audio_tokenizer": str(files.audio_tokenizer_dir)}
    out.result(data, lambda c: c.print(f"{repo} is ready at {path}"))


@app.command("info")
def info(model: Annotated[Optional[str], typer.Argument(
        help="A Hub repo id or checkpoint folder; without it, list cached models.")] = None) -> None:
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
                grid.add_row(row["repo_id"], models.human_size(row["size_bytes"]), ", ".join(row["revisions"]),
                             row["path"])
            console.print(grid)

        out.result({"models": rows}, table)
        return
    from higgs_cli.engine import checkpoint

    files = checkpoint.locate(model)
    summary = models.summarize_config(files.model_dir)
    data = {"model": model, "path": str(files.model_dir), "audio_tokenizer": str(files.audio_tokenizer_dir),
            **summary}
    if summary["random_weights"]:
        data["warning"] = RANDOM_MODEL_WARNING

    def human(console) -> None:
        grid = Table(show_header=False, box=None)
        for key, value in data.items():
            if key == "size_bytes":
                value = models.human_size(value)
            elif key == "parameters" and value:
                value = f"{value / 1e6:.1f} M"
            grid.add_row(f"[bold]{key}[/]", str(value))
        console.print(grid)

    out.result(data, human)


@app.command("init-random")
def init_random(
    folder: Annotated[Path, typer.Argument(help="Where to write the checkpoint.")],
    size: Annotated[str, typer.Option("--size", help="tiny (a few MB, tests), small (hidden 1024, 8 layers) "
                                                   "or full (the real dimensions, 11 GB).")] = "tiny",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for the random weights.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty folder.")] = False,
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
            "warning": RANDOM_MODEL_WARNING}

    def human(console) -> None:
        console.print(f"wrote a random {size} checkpoint to {path} ({models.human_size(data['size_bytes'])})")
        console.print(f"[yellow]note:[/] {RANDOM_MODEL_WARNING}")

    out.result(data, human)
