"""Editing one line of project.yaml from the page: its text, scene, seed or pause, and nothing else.

The file is read and written with ruamel.yaml's round-trip mode, so comments, key order, quoting
and layout stay as the author wrote them; only the edited value changes. The new file is checked
by the real loader (`load_project`) before it replaces the old one (an atomic rename), so a bad
value is refused with the loader's own message and project.yaml is never left invalid.

A line is found from its reference through the loaded project: the planned line's script line
(`refs.sources`), its section, and its position there. Every form a line takes is handled: the
section's own `text:`, `- text`, `- NAME: text` (plus line keys) and `- {speaker:, text:}`.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import atomic_path
from higgs_cli.project import load_project
from higgs_cli.project.planning.current import current_lines
from higgs_cli.project.reading.schema import LINE_KEYS

if TYPE_CHECKING:
    from higgs_cli.studio.state import Studio

FIELDS = ("text", "scene", "seed", "pause")
MAX_TEXT = 20_000  # characters a page may send for one value; the loader's own limits apply after


def _yaml():
    from ruamel.yaml import YAML

    editor = YAML()  # round-trip
    editor.preserve_quotes = True
    editor.width = 1 << 20  # never re-wrap a long line
    editor.indent(mapping=2, sequence=4, offset=2)
    return editor


def _value(field: str, value: Any) -> Any:
    """The page's value checked for its field (None removes a scene, seed or pause: inherited again)."""
    if field not in FIELDS:
        raise UsageError(f"'{field}' cannot be edited here; the page edits {', '.join(FIELDS)}")
    if value is None or value == "":
        if field == "text":
            raise UsageError("a line's text cannot be empty", hint="type what the line says")
        return None
    if field in ("text", "scene"):
        if not isinstance(value, str):
            raise UsageError(f"{field} must be text")
        if len(value) > MAX_TEXT:
            raise UsageError(f"{field} is {len(value)} characters; the page sends at most {MAX_TEXT}")
        return value.strip()
    if field == "seed":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
            raise UsageError(f"seed must be a whole number from 0, not {value!r}")
        return int(str(value).strip())
    try:  # pause
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"pause must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or isinstance(value, bool):
        raise UsageError(f"pause must be a number of seconds, not {value!r}")
    return number


def _styled(old: Any, new: Any) -> Any:
    """`new` in the quoting style of `old` (a double-quoted text stays double-quoted)."""
    if isinstance(new, str) and isinstance(old, str) and type(old) is not str:
        try:
            return type(old)(new)
        except TypeError:
            return new
    return new


def _node(data: Any, section_id: str, index: int) -> tuple[Any, Any]:
    """(container, key) of the line: the section mapping itself for a one-text section, else its `lines:`
    list and the line's position in it."""
    script = data.get("script") if hasattr(data, "get") else None
    section = next((s for s in script or [] if hasattr(s, "get") and s.get("id") == section_id), None)
    if section is None:
        raise UsageError(f"section '{section_id}' is not in project.yaml as written (an include or anchor?)",
                         hint="edit this line in project.yaml itself")
    if "lines" not in section:
        return section, None
    lines = section.get("lines")
    if not isinstance(lines, list) or not 0 <= index < len(lines):
        raise UsageError(f"line {index + 1} of section '{section_id}' is not in project.yaml as written",
                         hint="edit this line in project.yaml itself")
    return lines, index


def _set(container: Any, key: Any, field: str, value: Any) -> None:
    """Set `field` of the line at container[key] (key None: the container is the line)."""
    from ruamel.yaml.comments import CommentedMap

    line = container if key is None else container[key]
    if not hasattr(line, "get"):  # `- text`: a plain line becomes a mapping only when it gains a key
        if field == "text":
            container[key] = _styled(line, value)
            return
        if value is None:
            return
        line = CommentedMap([("text", line)])
        container[key] = line
    if field == "text":
        if "text" in line:
            line["text"] = _styled(line["text"], value)
            return
        others = [k for k in line if k not in LINE_KEYS]
        if len(others) != 1:
            raise UsageError("this line's text is not where the page can find it", hint="edit project.yaml itself")
        line[others[0]] = _styled(line[others[0]], value)
        return
    if value is None:
        line.pop(field, None)
    else:
        line[field] = _styled(line.get(field), value)


def edit_line(studio: Studio, ref: str, field: str, value: Any, *, seen_sha: object) -> dict:
    """Change one value of line `ref` in project.yaml; refused when the file changed since the page
    read it (`seen_sha`), or when the result does not load. Holds the project lock while writing."""
    value = _value(field, value)
    if not isinstance(ref, str) or not ref:
        raise UsageError("name the line to edit (e.g. talk:2)")
    with studio.layout.lock(f"project {studio.root.name}"):
        studio.check_sha(seen_sha)
        project = studio.project()
        cur = current_lines(project, tasks=studio.tasks)
        found = cur.refs.resolve(ref)
        if len(found) != 1:
            raise UsageError(f"'{ref}' names {len(found)} lines; edit one", hint=f"e.g. {cur.refs.ref(found[0])}")
        source = cur.refs.sources[found[0]]
        section = next((s for s in project.sections if s.id == cur.planned[found[0]].section), None)
        if source is None or section is None:
            raise UsageError(f"{ref} is made by its task, not written as a line", hint="edit project.yaml itself")
        if field == "text" and sum(s is source for s in cur.refs.sources) > 1:
            raise UsageError(f"{ref} is one chunk of a longer line; its text is edited as a whole",
                             hint="edit the line in project.yaml itself")
        index = next(k for k, line in enumerate(section.lines) if line is source)
        editor = _yaml()  # round-trip; the file was just read by the safe loader (project()), which refuses tags
        original = studio.project_bytes().decode("utf-8")
        data = editor.load(original)
        container, key = _node(data, section.id, index)
        _set(container, key, field, value)
        out = io.StringIO()
        editor.dump(data, out)
        text = out.getvalue()
        file = studio.layout.project_file
        with atomic_path(file) as tmp:
            tmp.write_text(text, encoding="utf-8")
            try:
                load_project(tmp, tasks=studio.tasks)
            except ValidationError as error:  # the loader's problems, naming project.yaml, not the temporary
                problems = "; ".join(p.replace(str(tmp), file.name) for p in error.problems)
                raise UsageError(f"the edit was refused: {problems or error.message}",
                                 hint="nothing was changed; correct the value and save again") from None
    return {"ref": ref, "field": field, "value": value, "sha": studio.sha(), "changed": text != original}
