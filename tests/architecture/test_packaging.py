"""Packaging tells the truth: every third-party module higgs imports comes from a declared dependency."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on older Pythons
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
OWN = {"higgs_cli", "higgs_plugins"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # An optional extra (ray, s3) counts as declared: its modules name the extra when it is missing.
    specs = [*project["dependencies"], *(spec for name, extra in project.get("optional-dependencies", {}).items()
                                         if name != "dev" for spec in extra)]
    return {_normal(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}


def imported_top_levels() -> dict[str, str]:
    """Top-level module -> the first file that imports it, over higgs_cli/ and plugins/."""
    found: dict[str, str] = {}
    for path in sorted([*(ROOT / "higgs_cli").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return {m: f for m, f in found.items() if m not in OWN and m not in sys.stdlib_module_names and m != "__future__"}


def test_every_imported_module_is_a_declared_dependency():
    owners = metadata.packages_distributions()
    deps = declared()
    undeclared = {module: where for module, where in imported_top_levels().items()
                  if not {_normal(d) for d in owners.get(module, [])} & deps}
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_walk_sees_the_modules_that_arrive_only_through_other_packages():
    """The check above is only as good as the walk: it must see the imports that once came in by luck."""
    modules = imported_top_levels()
    assert {"numpy", "soundfile", "typer", "rich", "pluggy", "yaml", "torch"} <= set(modules)
    assert {"soxr", "scipy", "av"} <= set(modules)
