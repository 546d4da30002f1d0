"""Nothing a project file, a voice archive or a downloaded model contains may run code.

A scan of higgs' own source (higgs_cli/, plugins/) fails on any way of loading that can run
code: pickle and its relatives, `torch.load` without `weights_only=True`, YAML loaders other
than the safe one, `trust_remote_code`, `np.load(allow_pickle=True)`, eval/exec/compile,
dynamic imports outside the plugin manager's entry points, shell commands. Then the same
promise is checked from the outside, with a booby-trapped checkpoint.
"""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

REPO = Path(__file__).parents[2]
SOURCES = sorted([*REPO.joinpath("higgs_cli").rglob("*.py"), *REPO.joinpath("plugins").rglob("*.py")])

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader"}


def _name(node: ast.AST) -> str:
    """`a.b.c` for an attribute chain, `f` for a name, "" otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_constant(node, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def violations(source: str, where: str = "<code>") -> list[str]:
    """Every unsafe loading construct in `source`, as "where:line: what"."""
    found = []

    def bad(node, what):
        found.append(f"{where}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = {a.name for a in node.names}
            for module in modules:
                if module.split(".")[0] in FORBIDDEN_MODULES:
                    bad(node, f"imports {module}")
                if module in ("importlib.util", "importlib.machinery", "imp") or (
                        module == "importlib" and names - {"resources", "metadata"}):
                    bad(node, f"imports {module} (plugins load only through entry points)")
        if not isinstance(node, ast.Call):
            continue
        func = _name(node.func)
        last = func.rsplit(".", 1)[-1]
        if isinstance(node.func, ast.Name) and func in FORBIDDEN_BUILTINS:
            bad(node, f"calls {func}()")
        if func in ("yaml.load", "yaml.load_all", "yaml.compose", "yaml.compose_all", "yaml.parse"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _name(loader).rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
                bad(node, f"{func} without Loader=yaml.SafeLoader")
        if func in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
            bad(node, f"calls {func}")
        if func == "torch.load" and not _is_constant(_keyword(node, "weights_only"), True):
            bad(node, "torch.load without weights_only=True")
        if last == "load" and func.split(".")[0] in ("np", "numpy"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not _is_constant(allow, False):
                bad(node, "np.load with allow_pickle other than False")
        trust = _keyword(node, "trust_remote_code")
        if trust is not None and not _is_constant(trust, False):
            bad(node, "trust_remote_code is not False")
        if func in ("os.system", "os.popen") or (_keyword(node, "shell") is not None
                                                and not _is_constant(_keyword(node, "shell"), False)):
            bad(node, f"runs a shell ({func})")
        if last in ("spec_from_file_location", "import_module", "load_module", "exec_module"):
            bad(node, f"imports code dynamically ({func})")
    return found


def weight_loads_without_safetensors(source: str, where: str = "<code>") -> list[str]:
    """`SomethingModel.from_pretrained(...)` (weights, not configs) without use_safetensors=True."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _name(node.func).endswith(".from_pretrained"):
            owner = _name(node.func).rsplit(".", 1)[0].rsplit(".", 1)[-1]
            weights = owner.endswith(("Model", "ForConditionalGeneration", "ForCausalLM"))
            if weights and not _is_constant(_keyword(node, "use_safetensors"), True):
                found.append(f"{where}:{node.lineno}: {owner}.from_pretrained without use_safetensors=True")
    return found


def test_the_scanner_finds_what_it_should():
    planted = """
import pickle
from importlib import import_module
from importlib import resources
import yaml, torch, numpy as np, subprocess
yaml.load(text)
yaml.load(text, Loader=yaml.FullLoader)
yaml.compose(text, yaml.SafeLoader)
yaml.safe_load(text)
yaml.unsafe_load(text)
torch.load(path)
torch.load(path, weights_only=True)
np.load(path, allow_pickle=True)
np.load(path, allow_pickle=False)
AutoModel.from_pretrained(path, trust_remote_code=True)
AutoTokenizer.from_pretrained(path, trust_remote_code=False)
eval("1")
exec("x = 1")
model.eval()
subprocess.run("ls", shell=True)
"""
    found = violations(planted)
    assert [f.split(": ", 1)[1] for f in found] == [
        "imports pickle", "imports importlib (plugins load only through entry points)",
        "yaml.load without Loader=yaml.SafeLoader", "yaml.load without Loader=yaml.SafeLoader",
        "calls yaml.unsafe_load", "torch.load without weights_only=True",
        "np.load with allow_pickle other than False", "trust_remote_code is not False", "calls eval()",
        "calls exec()", "runs a shell (subprocess.run)",
    ], found
    assert weight_loads_without_safetensors("MyModel.from_pretrained(p)\n"
                                            "MyModel.from_pretrained(p, use_safetensors=True)\n"
                                            "Cfg.from_pretrained(p)\nXForConditionalGeneration.from_pretrained(p)") \
        == ["<code>:1: MyModel.from_pretrained without use_safetensors=True",
            "<code>:4: XForConditionalGeneration.from_pretrained without use_safetensors=True"]


def test_higgs_source_has_no_unsafe_loading():
    assert len(SOURCES) > 20
    found = [v for path in SOURCES for v in violations(path.read_text(encoding="utf-8"),
                                                         str(path.relative_to(REPO)))]
    assert found == []


def test_model_weights_load_only_from_safetensors():
    found = [v for path in SOURCES for v in weight_loads_without_safetensors(path.read_text(encoding="utf-8"),
                                                                             str(path.relative_to(REPO)))]
    assert found == []


class _Trap:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickled_checkpoint_is_refused_without_being_opened(cli, tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    for args in (["model", "info", model], ["say", "Hello.", "-o", tmp_path / "x.wav", "--model", model]):
        result = cli(*args)
        assert result.exit_code == 1 and "missing model.safetensors" in result.output, result.output
    assert not marker.exists()


def test_remote_code_in_a_checkpoint_is_never_run(cli, tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    marker = tmp_path / "pwned"
    (model / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")
    for name in ("config.json", "tokenizer_config.json"):
        config = json.loads((model / name).read_text())
        config["auto_map"] = {"AutoConfig": "evil.Config", "AutoModel": "evil.Model",
                              "AutoTokenizer": ["evil.Tokenizer", "evil.Tokenizer"]}
        (model / name).write_text(json.dumps(config))
    result = cli("say", "Hello.", "-o", tmp_path / "x.wav", "--model", model)
    assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
    assert not marker.exists()
