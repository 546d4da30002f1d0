"""The import graph of higgs_cli, read from the source (an AST scan, nothing imported): the project
rooms import one way, the generic half of storage/ and audio/ import no workstation module, and no
import cycle exists between modules or between packages.

Which imports count: every import statement, at module level or inside a function. A function-level
import defers loading (to keep start-up light, or torch out of a command), but it is still a
dependency: a cycle through one works only because of when it runs, and it hides which room sits on
which (the cycles removed in issue 30, layout -> manifest -> state -> layout and guards <-> guards_asr,
both ran through function-level imports). Imports under `if TYPE_CHECKING:` never run; they count for
the direction of the rooms (a type named from a higher room is still knowledge of it) but not for
cycles (annotations only, the way `from __future__ import annotations` makes them).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "higgs_cli"

# the project layer's rooms, lowest first: each may import the ones before it, never one after it
ROOMS = ("higgs_cli.project.layout", "higgs_cli.project.reading", "higgs_cli.project.folder",
         "higgs_cli.project.planning", "higgs_cli.project.building", "higgs_cli.project.commands")
# what a module below the workstation (audio/, the generic half of storage/) may import besides itself
FOUNDATION = ("higgs_cli.errors", "higgs_cli.fsutil", "higgs_cli.home", "higgs_cli.threads", "higgs_cli.engine")
GENERIC_STORAGE = ("higgs_cli.storage.urls", "higgs_cli.storage.remote", "higgs_cli.storage.objects",
                   "higgs_cli.storage.files", "higgs_cli.storage")


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return modules()[module].name == "__init__.py"


def _owner(name: str) -> str | None:
    """The higgs_cli module that `name` (a module, or a name inside one) belongs to."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> tuple[tuple[str, bool], ...]:
    """(imported higgs_cli module, under TYPE_CHECKING) for every import statement in `module`."""
    found: list[tuple[str, bool]] = []
    here = module if _is_package(module) else module.rpartition(".")[0]

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for part in child.body:
                    visit_one(part, True)
                for part in child.orelse:
                    visit_one(part, typing_only)
                continue
            visit_one(child, typing_only)

    def visit_one(child: ast.AST, typing_only: bool) -> None:
        if isinstance(child, ast.Import):
            found.extend((a.name, typing_only) for a in child.names)
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                parts = here.split(".")[:len(here.split(".")) - child.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.extend((f"{base}.{a.name}", typing_only) for a in child.names)
        visit(child, typing_only)

    visit(ast.parse(modules()[module].read_text(encoding="utf-8")), False)
    owned = {(_owner(name), typing_only) for name, typing_only in found if name.startswith("higgs_cli")}
    return tuple(sorted((name, t) for name, t in owned if name is not None and name != module))


def _graph(*, typing: bool) -> dict[str, set[str]]:
    return {m: {i for i, t in imports(m) if typing or not t} for m in modules()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def _package(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def _room(module: str) -> int | None:
    for number, room in enumerate(ROOMS):
        if module == room or module.startswith(room + "."):
            return number
    return None


def test_the_scan_sees_the_imports_it_should():
    assert ("higgs_cli.project.planning.plan", False) in imports("higgs_cli.project.building.render")
    assert ("higgs_cli.project.folder.manifest", True) in imports("higgs_cli.project.building.review")
    assert ("higgs_cli.project.building.render", False) in imports("higgs_cli.project")  # inside a function
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert len(modules()) > 100


def test_no_import_cycle_between_modules():
    assert _cycles(_graph(typing=False)) == []


def test_no_import_cycle_between_packages():
    """Packages as units: a package and its own sub-packages are one unit's inside, not a cycle."""
    graph: dict[str, set[str]] = {}
    for module, targets in _graph(typing=False).items():
        for target in targets:
            a, b = _package(module), _package(target)
            if a != b and not a.startswith(b + ".") and not b.startswith(a + "."):
                graph.setdefault(a, set()).add(b)
    assert _cycles(graph) == []


def test_the_project_rooms_import_one_way():
    """layout <- reading <- folder <- planning <- building <- commands; the face (`higgs_cli.project`)
    sits on top and no room imports it; a command imports no other command."""
    wrong = []
    for module, targets in _graph(typing=True).items():
        mine = _room(module)
        if mine is None:
            continue
        for target in targets:
            theirs = _room(target)
            if target == "higgs_cli.project" or (theirs is not None and theirs > mine):
                wrong.append(f"{module} -> {target}")
            commands = ROOMS[-1] + "."
            if module.startswith(commands) and target.startswith(commands) \
                    and target.split(".")[3] != module.split(".")[3]:
                wrong.append(f"{module} -> {target} (one command imports another)")
    assert wrong == []


def test_audio_and_generic_storage_import_no_workstation_module():
    wrong = []
    for module, targets in _graph(typing=True).items():
        own = "higgs_cli.audio" if module.startswith("higgs_cli.audio") else \
            "higgs_cli.storage" if module in GENERIC_STORAGE else None
        if own is None:
            continue
        wrong += [f"{module} -> {target}" for target in targets
                  if not target.startswith((own, *FOUNDATION))]
    assert wrong == []


def test_storage_holds_only_its_generic_half():
    """What knows of projects (a shared cache, a build published, a mirror) lives in project/folder/."""
    assert {m for m in modules() if m.startswith("higgs_cli.storage")} <= set(GENERIC_STORAGE)


def test_the_project_face_names_what_it_serves():
    import higgs_cli.project as face

    assert sorted(face.__all__) == sorted(face._FACE)
    for name in face.__all__:
        assert getattr(face, name) is not None
