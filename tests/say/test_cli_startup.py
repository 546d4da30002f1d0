"""What `higgs say` loads at start-up: a warm-server `say` should not pay for the project layer."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test starts higgs in a new process

PROBE = """
import sys
from higgs_cli.cli.app import main
try:
    main({args!r})
except SystemExit as done:
    code = done.code
heavy = [m for m in ("higgs_cli.project.building.render", "higgs_cli.plugins.manager", "av", "torch")
         if m in sys.modules]
print(code, ",".join(heavy))
"""


def _loaded(*args: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    code, _, heavy = done.stdout.strip().rpartition("\n")[2].partition(" ")
    return code, heavy


def test_say_loads_neither_the_project_layer_nor_plugins(tmp_path):
    code, heavy = _loaded("say", "--help")
    assert code == "0" and heavy == ""
    code, heavy = _loaded("--json", "say", "hello", "-o", str(tmp_path / "x.wav"), "--voice", "nobody")  # no model
    assert code == "2" and heavy == ""


def test_other_commands_and_the_root_help_still_see_every_noun():
    done = subprocess.run([sys.executable, "-m", "higgs_cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for noun in ("say", "serve", "model", "voice", "project", "plugins"):
        assert noun in done.stdout
    code, heavy = _loaded("project", "--help")
    assert code == "0" and "higgs_cli.project.building.render" in heavy
