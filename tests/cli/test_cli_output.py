"""What the CLI prints: help and user text as written (no markup eaten), sizes in binary units,
--debug only as a global flag, --batch-size checked, one default batch size."""

from __future__ import annotations

import json
import re

import pytest
from fakes import FakeSession


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("args, shown", [
    (("say", "--help"), ["[laugh], [music start] ... markers work.", "[default: the best there is]",
                         "[default: $HIGGS_MODEL, then a project's model:, then bosonai/higgs-audio-v2",
                         "0 picks the likeliest code (greedy), but while RAS is on", "0 turns RAS off."]),
    (("project", "render", "--help"), ["[default: the best there is]", "[default: $HIGGS_MODEL",
                                       "[default: 32; x>=1]"]),
    (("model", "pull", "--help"), ["[default: bosonai/higgs-"]),
])
def test_help_shows_brackets_as_written(cli, args, shown):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    for text in shown:
        assert text in _flat(result.stdout), text


def test_the_shared_options_have_one_wording(cli):
    import typer

    from higgs_cli.cli.app import _register_nouns, app

    cli("--help")
    _register_nouns()
    root = typer.main.get_command(app)
    say, render = root.commands["say"], root.commands["project"].commands["render"]

    def helps(command):
        return {param.name: (param.help, param.default) for param in command.params}

    for name in ("model", "device", "revision", "compile_", "json_output", "quiet"):
        assert helps(say)[name] == helps(render)[name], name


@pytest.fixture
def fake_render(cli, fake_sessions, tmp_path):
    fake_sessions.each(lambda: FakeSession(is_random=True))

    def render(title: str, *args):
        show = tmp_path / "show"
        assert cli("project", "new", show, "--title", title).exit_code == 0
        return show, cli("project", "render", show, *args)

    return render


def test_titles_and_notes_print_as_written(fake_render):
    from higgs_cli.engine.request import RANDOM_WEIGHTS_NOTE

    _, result = fake_render("Ep [draft] [bold]")
    assert result.exit_code == 0, result.output
    assert "rendered Ep [draft] [bold]:" in result.stdout
    assert result.output.count(RANDOM_WEIGHTS_NOTE) == 1 and RANDOM_WEIGHTS_NOTE in result.stderr


def test_voice_text_prints_as_written(cli, tmp_path):
    from fakes import write_voice

    ref = write_voice(tmp_path / "r.wav", seconds=3.0)
    assert cli("voice", "add", "v", ref, "--transcript", "[laugh] Hi :smile:", "-d", "[warm] voice").exit_code == 0
    shown = cli("voice", "show", "v").stdout
    assert "[laugh] Hi :smile:" in shown and "[warm] voice" in shown
    assert "[warm] voice" in cli("voice", "list").stdout


def test_errors_print_brackets_as_written(cli):
    result = cli("voice", "show", "[nobody]")
    assert result.exit_code == 2 and "[nobody]" in result.stderr


def test_the_default_batch_size_is_one_constant(fake_render, fake_sessions):
    from higgs_cli.engine.api import DEFAULT_BATCH_SIZE

    made = fake_sessions.each(FakeSession).made
    _, result = fake_render("Show")
    assert result.exit_code == 0, result.output
    assert made and set(made[0].batch_sizes) == {DEFAULT_BATCH_SIZE}




def test_batch_size_below_one_is_refused(cli, tmp_path):
    show = tmp_path / "show"
    assert cli("project", "new", show).exit_code == 0
    result = cli("project", "render", show, "-b", "0")
    assert result.exit_code == 2 and "'--batch-size' / '-b': Input should be greater than or equal to 1" in (
        result.stderr)
    as_json = cli("project", "render", show, "--batch-size", "0", "--json")
    assert as_json.exit_code == 2
    error = json.loads(as_json.stdout)
    assert "--batch-size" in error["error"] and error["exit_code"] == 2 and "higgs project render --help" in error[
        "hint"]


def test_a_text_that_reads_debug_is_spoken_not_a_flag(cli, tmp_path, fake_sessions):
    """`higgs say -- --debug`: the word is TEXT; a later error is still one clean message."""
    session = fake_sessions.always(FakeSession())
    result = cli("say", "-o", tmp_path / "x.wav", "--", "--debug")
    assert result.exit_code == 0, result.output
    assert session.requests[0].text.startswith("--debug")  # normalized text ends in a stop
    refused = cli("say", "-o", tmp_path / "x.aiff2", "--", "--debug")  # before: a traceback
    assert refused.exit_code == 2 and "unsupported extension" in refused.stderr


def test_debug_before_the_command_still_shows_tracebacks(cli, tmp_path):
    from higgs_cli.errors import UsageError

    with pytest.raises(UsageError):
        cli("--debug", "say", "hi", "-o", tmp_path / "x.aiff2")


@pytest.mark.parametrize("size, text", [(None, "?"), (512, "512 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB"),
                                        (3 * 1024**3, "3.0 GiB"), (2 * 1024**4, "2.0 TiB")])
def test_human_size_uses_binary_units(size, text):
    from higgs_cli.cli.output import human_size

    assert human_size(size) == text
