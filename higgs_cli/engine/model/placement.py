"""Where a session runs: the device, its number type, CPU threads, and whether the weights fit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from higgs_cli.errors import ModelError, UsageError


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, else cuda, then mps, then cpu."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise UsageError(f"unknown device '{requested}'", hint="use cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for, but no CUDA GPU is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise UsageError("--device mps was asked for, but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def configure_threads(device: torch.device) -> None:
    """On CPU use one thread per core this process may run on, unless OMP_NUM_THREADS says otherwise."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, min(cores, torch.get_num_threads())))


def cpu_threads() -> int:
    """The threads torch computes with in this process."""
    return torch.get_num_threads()


def set_cpu_threads(count: int) -> None:
    torch.set_num_threads(max(1, count))


@contextmanager
def cpu_threads_set(count: int) -> Iterator[None]:
    """torch computes with `count` threads for the duration (then with the count before)."""
    before = torch.get_num_threads()
    set_cpu_threads(count)
    try:
        yield
    finally:
        set_cpu_threads(before)


def weight_bytes(model_dir, dtype: torch.dtype) -> int:
    """The model's weights in `dtype`, from its safetensors files (stored in bf16, 2 bytes each)."""
    stored = sum(f.stat().st_size for f in Path(model_dir).glob("*.safetensors"))
    return stored // 2 * dtype.itemsize


def check_fits(needed: int, free: int) -> None:
    """A clear error when the weights alone (plus a tenth for the cache and work space) exceed
    the GPU memory that is free, before anything is loaded."""
    if needed * 1.1 > free:
        raise ModelError(f"the model needs about {needed * 1.1 / 1e9:.1f} GB of GPU memory (weights "
                         f"{needed / 1e9:.1f} GB and room for the KV cache), but only {free / 1e9:.1f} GB is free",
                         hint="free GPU memory, use a GPU with more memory, or run with --device cpu "
                              "(a smaller --batch-size only shrinks the KV cache, not the weights)")


DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
          "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX). Elsewhere torch emulates
    bf16 through fp32 conversions, several times slower than fp32 itself."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def pick_dtype(device: torch.device, requested: str | None = None, *, compile: bool = False) -> torch.dtype:
    """`requested`, else $HIGGS_DTYPE, else bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere.

    On a CPU with bf16 units its matrix products run 4-5x faster than fp32 ones
    (650-740 against 136-175 GFLOP/s measured here), and a batch-32 prefill ran
    3.2x faster. A compiled CPU session stays in fp32: its batch-1 step is built
    and checked against the eager one in fp32 only.
    """
    requested = requested or os.environ.get("HIGGS_DTYPE") or None
    if requested:
        if requested.lower() not in DTYPES:
            raise UsageError(f"unknown dtype '{requested}'", hint="set $HIGGS_DTYPE to fp32 or bf16 "
                             "(fp16 on a GPU), or unset it")
        return DTYPES[requested.lower()]
    if device.type == "cuda" or (device.type == "cpu" and not compile and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32
