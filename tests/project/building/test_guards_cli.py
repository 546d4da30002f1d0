"""The quality guards through the CLI, on random checkpoints whose end-of-stream logit is biased:
down (every line runs to its limit: retried, then flagged) and up (every line ends in a fraction of
a second: too short for its text, flagged)."""

from __future__ import annotations

import json

import pytest
from biased_models import biased_eos_model, tiny_whisper

from higgs_cli.plugins import hookimpl
from higgs_cli.project.building.guards import spoken_text

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


# -- checks from plugins and speech recognition, through the CLI ---------------------------------

SHORT = ["Hi.", "Yes."]  # 0.5 s expected: the ends-at-once model's 0.28 s lines pass the built-in checks


def write_short_project(root, guards: str = "") -> None:
    root.mkdir()
    lines = "\n".join(f"      - narrator: {text}" for text in SHORT)
    (root / "project.yaml").write_text(
        "version: 1\ntitle: Short\ndefaults: {max_seconds: 1, retries: 2, seed: 5}\n" + guards +
        "speakers:\n  narrator: {description: calm voice}\n"
        f"script:\n  - id: story\n    task: dialogue\n    lines:\n{lines}\n", encoding="utf-8")


class FirstTryChecker:
    """A check_line plugin that rejects the first try of every line it sees."""

    def __init__(self):
        self.seen: list[tuple[str, int]] = []

    @hookimpl
    def check_line(self, line, request):
        first = all(text != line.display_text for text, _ in self.seen)
        self.seen.append((line.display_text, request.seed))
        return [{"code": "first-try", "message": "the first try is never kept"}] if first else []


@pytest.fixture
def first_try_checker():
    from higgs_cli.plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    checker = FirstTryChecker()
    pm.register(checker, name="test-first-try")
    yield checker
    if pm.get_plugin("test-first-try") is not None:
        pm.unregister(name="test-first-try")


def test_a_check_line_plugin_forces_a_retry(cli, ends_at_once, tmp_path, first_try_checker):
    show = tmp_path / "show"
    write_short_project(show)
    summary, manifest = render(cli, show, ends_at_once)
    assert summary["generated"] == 2 and summary["retried"] == 2 and summary["flagged"] == 0
    assert all(line["tries"] == 2 and line["flags"] == [] for line in manifest["lines"])
    seeds = {}
    for text, seed in first_try_checker.seen:  # the line's display text (spoken_text: its words)
        seeds.setdefault(spoken_text(text), []).append(seed)
    assert sorted(seeds) == sorted(SHORT) and all(len(set(s)) == 2 for s in seeds.values())


def test_a_random_whisper_flags_every_line(cli, ends_at_once, tmp_path):
    whisper = tiny_whisper(tmp_path / "whisper")
    show = tmp_path / "show"
    write_short_project(show, guards=f"guards: {{asr_model: '{whisper}', max_wer: 0.5}}\n")
    summary, manifest = render(cli, show, ends_at_once)
    assert summary["flagged"] == 2 and summary["retried"] == 2
    for line in manifest["lines"]:
        assert line["tries"] == 3 and [flag["code"] for flag in line["flags"]] == ["asr"]
        assert "word error rate" in line["flags"][0]["message"]


def test_an_asr_model_that_is_not_a_folder_is_refused(cli, ends_at_once, tmp_path):
    show = tmp_path / "show"
    write_short_project(show, guards="guards: {asr_model: ./no-whisper-here}\n")
    result = cli("project", "render", show, "--model", ends_at_once)
    assert result.exit_code == 2 and "guards.asr_model" in result.stderr and "not a folder" in result.stderr
    assert "Traceback" not in result.output and not (show / "build").exists()
