"""The layers of docs/architecture.md, checked on the source: CLI -> project -> plugin contract -> engine.

Each rule names what a package may import; a change that breaks one fails here, not in review.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TORCH = {"torch", "torchaudio", "transformers", "peft", "accelerate"}
TORCH_FREE_ENGINE = {"higgs_cli.engine", "higgs_cli.engine.request", "higgs_cli.engine.text",
                     "higgs_cli.engine.api", "higgs_cli.engine.vocab", "higgs_cli.engine.checkpoint",
                     "higgs_cli.engine.training.settings"}
"""Engine modules any layer may import at module level: they load no torch."""


def _sources() -> list[Path]:
    return sorted((ROOT / "higgs_cli").rglob("*.py")) + sorted((ROOT / "plugins").glob("*.py"))


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Every absolute import in a file, with whether it runs at module level (not inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, top))
            visit(child, inner)

    visit(tree, True)
    return found


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return "plugins" if rel.parts[0] == "plugins" else ".".join(rel.parts[:2])


def _violations(rule) -> list[str]:
    bad = []
    for path in _sources():
        for module, top in _imports(path):
            reason = rule(_package(path), module, top)
            if reason:
                bad.append(f"{path.relative_to(ROOT)} imports {module}: {reason}")
    return bad


def test_only_the_engine_imports_torch():
    def rule(package, module, top):
        if module.split(".")[0] in TORCH and package != "higgs_cli.engine":
            return "only higgs_cli/engine may import torch, transformers, peft or accelerate"
    assert _violations(rule) == []


def test_the_plugin_contract_and_tasks_sit_below_the_project_layer():
    def rule(package, module, top):
        if package in ("higgs_cli.plugins", "plugins") and module.startswith(("higgs_cli.project", "higgs_cli.cli")):
            return "the plugin contract and tasks may not import the project layer or the CLI"
    assert _violations(rule) == []


def test_nothing_below_the_cli_imports_it():
    def rule(package, module, top):
        if package not in ("higgs_cli.cli", "higgs_cli.__main__.py") and module.startswith("higgs_cli.cli"):
            return "only the CLI imports the CLI"
    assert _violations(rule) == []


def test_the_engine_imports_no_upper_layer():
    def rule(package, module, top):
        if package == "higgs_cli.engine" and module.startswith(
                ("higgs_cli.project", "higgs_cli.cli", "higgs_cli.plugins", "higgs_cli.voices", "higgs_cli.speech")):
            return "the engine knows nothing of projects, plugins, voices or the CLI"
    assert _violations(rule) == []


def test_sessions_sit_below_the_workstation():
    """sessions/ opens models for the CLI and is imported by the workstation (identity, lazy): it
    imports neither, nor the server's app half (the server imports sessions' wire and discovery)."""
    upper = ("higgs_cli.cli", "higgs_cli.project", "higgs_cli.batch", "higgs_cli.speech", "higgs_cli.voices",
             "higgs_cli.plugins", "higgs_cli.server", "higgs_cli.storage")

    def rule(package, module, top):
        if package == "higgs_cli.sessions" and module.startswith(upper):
            return "sessions/ imports only the engine, distributed/ and the shared helpers"
    assert _violations(rule) == []


def test_torch_backed_engine_modules_load_only_inside_functions_elsewhere():
    def rule(package, module, top):
        if top and package != "higgs_cli.engine" and module.startswith("higgs_cli.engine") \
                and module not in TORCH_FREE_ENGINE:
            return f"import it inside the function that needs it (module level: {sorted(TORCH_FREE_ENGINE)})"
    assert _violations(rule) == []


# every module of the session front door: a command through a server or Ray loads no torch here
SESSIONS = {f"higgs_cli.sessions.{p.stem}" for p in (ROOT / "higgs_cli" / "sessions").glob("[!_]*.py")} | {
    "higgs_cli.sessions"}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(TORCH_FREE_ENGINE | {
    "higgs_cli.cli.app", "higgs_cli.project.building.render", "higgs_cli.project.commands.status", "higgs_cli.speech",
    "higgs_cli.plugins", "higgs_cli.voices.library", "higgs_cli.project.folder.cache", "higgs_cli.batch.render",
    "higgs_cli.project.commands.importers"} | SESSIONS))
def test_importing_leaves_torch_unloaded(module):
    code = f"import sys, {module}; sys.exit(any(m in sys.modules for m in {sorted(TORCH)!r}))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0, f"{module} loads torch"


def test_a_checkpoints_identity_is_read_without_torch(tiny_model):
    """A render whose lines are cached keys them from the checkpoint's files: no torch, no weights."""
    code = ("import sys; from higgs_cli.sessions.identity import model_identity; "
            f"identity = model_identity({str(tiny_model)!r}); "
            f"sys.exit(2 if identity is None else any(m in sys.modules for m in {sorted(TORCH)!r}))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_task_contracts_output_defaults_are_the_audio_layers():
    from higgs_cli.audio.cleanup import DEFAULT_HIGHPASS_HZ
    from higgs_cli.audio.io import DEFAULT_MP3_KBPS
    from higgs_cli.audio.subtitles import LABELS
    from higgs_cli.plugins import OutputSettings

    assert (OutputSettings().subtitle_labels, OutputSettings().bitrate) == (LABELS[0], DEFAULT_MP3_KBPS)
    assert OutputSettings().highpass == DEFAULT_HIGHPASS_HZ


@pytest.mark.slow
def test_the_task_contract_loads_no_audio_io():
    code = "import sys, higgs_cli.plugins; sys.exit(any(m.startswith('higgs_cli.audio') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
