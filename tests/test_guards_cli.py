"""The quality guards through the CLI, on random checkpoints whose end-of-stream logit is biased:
down (every line runs to its limit: retried, then flagged) and up (every line ends in a fraction of
a second: too short for its text, flagged)."""

from __future__ import annotations

import json

import pytest
from biased_models import biased_eos_model

LINES = ["This line has quite a few words in it, so it should last a while.",
         "And a second line, which is also long enough to take a few seconds."]


def write_project(root, *, retries: int = 2, guards: str = "") -> None:
    root.mkdir()
    lines = "\n".join(f"      - narrator: {text}" for text in LINES)
    (root / "project.yaml").write_text(
        "version: 1\ntitle: Guards\n"
        f"defaults: {{max_seconds: 1, retries: {retries}, seed: 3}}\n"
        f"{guards}"
        "speakers:\n  narrator: {description: calm voice}\n"
        f"script:\n  - id: story\n    task: dialogue\n    lines:\n{lines}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def never_ends(tiny_model, tmp_path_factory):
    return biased_eos_model(tiny_model, tmp_path_factory.mktemp("biased") / "never-ends", -40.0)


@pytest.fixture(scope="module")
def ends_at_once(tiny_model, tmp_path_factory):
    # EOS favoured only in the last codebook, which the delay pattern frees 7 frames in: 0.28 s lines
    return biased_eos_model(tiny_model, tmp_path_factory.mktemp("biased") / "ends-at-once", 40.0, codebooks=(7,))


def render(cli, show, model, *extra):
    result = cli("--json", "project", "render", show, "--model", model, *extra)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    manifest = json.loads((show / "build" / "manifest.json").read_text(encoding="utf-8"))
    return summary, manifest


def test_a_model_that_never_ends_is_retried_then_flagged(cli, never_ends, tmp_path):
    show = tmp_path / "show"
    write_project(show, retries=2)
    summary, manifest = render(cli, show, never_ends)
    assert summary["generated"] == 2 and summary["flagged"] == 2 and summary["retried"] == 2
    assert len(summary["unfinished"]) == 2
    for line in manifest["lines"]:
        assert line["tries"] == 3  # the line's own seed, then two retries
        assert [flag["code"] for flag in line["flags"]] == ["unfinished"]
        assert "ran to its length limit (1 s, 25 frames)" in line["flags"][0]["message"]
    # the flags are cached with the line: a second render generates nothing and still says so
    again, manifest_again = render(cli, show, never_ends)
    assert again["generated"] == 0 and again["flagged"] == 2
    assert [line["flags"] for line in manifest_again["lines"]] == [line["flags"] for line in manifest["lines"]]


def test_a_model_that_ends_at_once_gives_lines_flagged_too_short(cli, ends_at_once, tmp_path):
    show = tmp_path / "show"
    write_project(show, retries=1)
    summary, manifest = render(cli, show, ends_at_once)
    assert summary["generated"] == 2 and summary["flagged"] == 2 and summary["retried"] == 2
    assert summary["unfinished"] == []
    for line in manifest["lines"]:
        assert line["tries"] == 2
        [flag] = line["flags"]
        assert flag["code"] == "too_short" and "0.28 s of audio for" in flag["message"]


def test_guards_off_keep_the_first_try(cli, never_ends, tmp_path):
    show = tmp_path / "show"
    write_project(show, guards="guards: {enabled: false}\n")
    summary, manifest = render(cli, show, never_ends)
    assert summary["flagged"] == 0 and summary["retried"] == 0 and len(summary["unfinished"]) == 2
    assert all(line["tries"] == 1 and not line["flags"] for line in manifest["lines"])


def test_retries_keep_a_render_deterministic(cli, never_ends, tmp_path):
    outputs = []
    for name in ("one", "two"):
        show = tmp_path / name
        write_project(show, retries=1)
        _, manifest = render(cli, show, never_ends)
        stems = sorted((show / "build").rglob("*.wav"))
        outputs.append(([line["flags"] for line in manifest["lines"]], [p.read_bytes() for p in stems]))
    assert outputs[0] == outputs[1]
