"""The batch-1 decode step on CPU, compiled ahead of time (AOTInductor) and kept on disk.

A batch-1 step reads every decode weight once, so it should run at the memory
bandwidth. Under torch.compile each call also pays for dynamo's entry, the
AOT-autograd and inductor wrappers and a few hundred frozen constants passed
as new tensor handles, all of it cold after the weight stream; frozen weight
blocks are copies. An AOTInductor package runs the same inductor kernels from
one C++ call, and reads the model's own weights in place (its constants are
user-managed: nothing is copied or stored with the package).

The package depends only on the code, the config and the machine, never on the
weights, so it is cached under a key of those and built once (about a minute).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

import torch

from higgs_cli.engine.model import forward
from higgs_cli.engine.model.forward import Runner, StaticCache
from higgs_cli.fsutil import atomic_path, exclusive_lock, sweep_temporaries
from higgs_cli.home import compiled_dir

log = logging.getLogger(__name__)
Loaded = TypeVar("Loaded")
FORMAT = 1  # bump when the exported step's inputs change
BUILD_WAIT_SECONDS = 900.0  # for another process's build of the same step


def cache_root() -> Path:
    """$HIGGS_HOME/compiled, else the platform's user cache folder for higgs (see higgs_cli.home)."""
    return compiled_dir()


def cached_build(path: Path, build: Callable[[Path], None], load: Callable[[Path], Loaded]) -> Loaded:
    """Load `path`, building it first if it is missing; a file that fails to load is built again.

    One process builds at a time (others wait for it, then load what it built).
    The build writes a temporary file that replaces `path` in one rename, so an
    interrupted build never leaves a damaged file behind.
    """
    loaded = _try_load(path, load)
    if loaded is not _MISSING:
        return loaded
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(path.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:  # build into a temporary folder instead, for this session only
        log.warning("cannot write to %s; the compiled step is built for this session only", path.parent)
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder) / path.name
            build(tmp)
            return load(tmp)
    with exclusive_lock(path.parent / ".build.lock", what=f"the compiled-step cache {path.parent}",
                        timeout=BUILD_WAIT_SECONDS):
        sweep_temporaries(path.parent)  # left by a build that was killed
        loaded = _try_load(path, load)  # built by another process while this one waited
        if loaded is _MISSING:
            with atomic_path(path, suffix=path.suffix) as tmp:
                build(tmp)
            loaded = load(path)
    return loaded


_MISSING = object()


def _try_load(path: Path, load: Callable[[Path], Loaded]):
    if not path.exists():
        return _MISSING
    try:
        return load(path)
    except Exception as error:  # damaged, or from an incompatible build: built again
        log.warning("rebuilding %s, which failed to load: %s", path, error)
        return _MISSING


@contextlib.contextmanager
def compiler_warnings_hidden() -> Iterator[None]:
    """Hide the warnings torch's compilers give about their own use of deprecated torch APIs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*deprecated", category=FutureWarning)
        yield


class _CacheView(NamedTuple):
    keys: list[torch.Tensor]
    values: list[torch.Tensor]


class _DecodeGraph(torch.nn.Module):
    """`Runner.decode_step` with plain tensor inputs, as torch.export takes them.

    The span is the length of `span_marker`, so that it stays a dynamic size.
    """

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, lengths: torch.Tensor, frames: torch.Tensor, span_marker: torch.Tensor,
                keys: list[torch.Tensor], values: list[torch.Tensor]) -> torch.Tensor:
        return self.runner.decode_step(_CacheView(keys, values), lengths, frames, span_marker.shape[0])


def _source_digest() -> str:
    """What the compiled step is made of: this code, the forward pass, and the libraries."""
    import transformers

    digest = hashlib.sha256()
    for module in (forward, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(f"{FORMAT} {torch.__version__} {transformers.__version__} {sys.version_info[:2]}".encode())
    return digest.hexdigest()


def package_key(runner: Runner, dtype: torch.dtype) -> str:
    """A key for everything the package depends on: code, config, dtype, threads and CPU."""
    config = json.dumps(runner.config.to_dict(), sort_keys=True, default=str)
    parts = (_source_digest(), config, str(dtype), str(torch.get_num_threads()),
             torch.backends.cpu.get_cpu_capability(), str(runner.fused))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


class AotDecodeStep:
    """A batch-1 CPU decode step compiled by AOTInductor: call it as `decode_step(cache, lengths, frames, span)`."""

    def __init__(self, runner: Runner, dtype: torch.dtype, folder: Path | None = None) -> None:
        self.graph = _DecodeGraph(runner).eval()
        self.dtype = dtype
        folder = cache_root() if folder is None else folder
        self.path = folder / f"decode-b1-{package_key(runner, dtype)}.pt2"
        self.loader = cached_build(self.path, self._build, self._load)
        self._marker = torch.empty(0, dtype=dtype)

    def _example(self) -> tuple:
        config = self.graph.runner.config
        cache = StaticCache(config, 1, 256, self.dtype, torch.device("cpu"))
        return (torch.tensor([100]), torch.zeros(1, config.num_codebooks, dtype=torch.long),
                torch.empty(128, dtype=self.dtype), cache.keys, cache.values)

    def _build(self, target: Path) -> None:
        from torch.export import Dim, export

        layers = self.graph.runner.config.num_hidden_layers
        capacity, span = Dim("capacity", min=2, max=1 << 20), Dim("span", min=2, max=1 << 20)
        shapes = (None, None, {0: span}, [{2: capacity}] * layers, [{2: capacity}] * layers)
        with torch.no_grad(), compiler_warnings_hidden():
            program = export(self.graph, self._example(), dynamic_shapes=shapes, strict=False)
            torch._inductor.aoti_compile_and_package(
                program, package_path=str(target),
                inductor_configs={"aot_inductor.package_constants_in_so": False})

    def _load(self, path: Path):
        package = torch._inductor.aoti_load_package(str(path))
        tensors = dict(self.graph.named_parameters(remove_duplicate=False))
        tensors.update(self.graph.named_buffers(remove_duplicate=False))
        # user-managed: the package reads these very tensors, no copy
        package.load_constants({name: tensors[name] for name in package.get_constant_fqns()},
                               check_full_update=True, user_managed=True)
        return package.loader

    def __call__(self, cache: StaticCache, lengths: torch.Tensor, frames: torch.Tensor, span: int) -> torch.Tensor:
        if self._marker.numel() < span:
            self._marker = torch.empty(max(span, cache.capacity), dtype=self.dtype)
        return self.loader.run([lengths, frames, self._marker[:span], *cache.keys, *cache.values])[0]
