"""Connecting to Ray, and checking that a cluster can hold the workers before any is started.

`--ray auto` joins the cluster this machine belongs to (RAY_ADDRESS, or a local
`ray start`); `--ray HOST:PORT` or `ray://HOST:PORT` joins one by address;
`--ray local` starts a private cluster on this machine (benchmarks, trying it
out). An address that does not answer, or a cluster that refuses this machine's
token, is refused within seconds, not after Ray's own retries.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

from higgs_cli.distributed.auth import auth_error, check_token, is_auth_failure, use_token
from higgs_cli.distributed.quiet import hidden_output, quiet_logger
from higgs_cli.errors import UsageError

EXTRA_HINT = "install the ray extra: pip install 'higgs-cli[ray]'"
CONNECT_TIMEOUT = 5.0  # seconds to wait for a cluster's head to accept a connection
RELEASE_WAIT = 10.0  # seconds to wait for resources that actors just stopped still hold


def import_ray() -> Any:
    """The ray module, or a UsageError naming the extra that provides it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed", hint=EXTRA_HINT) from None
    return ray


_HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<port>\d{1,5})$")


def check_address(address: str) -> None:
    """Refuse a malformed address, or one whose head does not accept a connection."""
    if address in ("auto", "local"):
        return
    match = _HOST_PORT.fullmatch(address)  # `$` alone would let a trailing newline through
    if not match:
        raise UsageError(f"--ray {address!r} is not a Ray address",
                         hint="pass auto, local, HOST:PORT (the head's GCS port, usually 6379) or ray://HOST:10001")
    host, port = match["host"].strip("[]"), int(match["port"])
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as error:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {error.strerror or error}",
                         hint="check the address and that the cluster is up (`ray status` on its head)") from None


def connect(address: str | None) -> tuple[Any, bool]:
    """Ray, initialised: the session already open in this process (None), or `address`.
    Returns (ray, whether this call connected, so the caller may disconnect).

    With this machine's token where Ray looks for one (distributed.auth); Ray's own lines never on
    the user's stderr or stdout (distributed.quiet); a refused token is a UsageError that says how to fix it."""
    ray = import_ray()
    quiet_logger()
    if ray.is_initialized():
        return ray, False
    address = address or "auto"
    check_address(address)
    source = use_token(address)
    with hidden_output() as said:
        try:
            if _HOST_PORT.fullmatch(address) and not address.startswith("ray://"):
                check_token(address, source)  # a refused token in a second, not after Ray's 20 s of retries
            ray.init(address=None if address == "local" else address, logging_level=logging.WARNING,
                     log_to_driver=False, include_dashboard=False if address == "local" else None)
            error = None
        except UsageError:
            raise
        except Exception as failed:  # Ray's AuthenticationError is none of the types below
            error = failed
    if error is not None:
        if is_auth_failure(error, said.text):
            raise auth_error(address, source) from None
        if not isinstance(error, (ConnectionError, RuntimeError, ValueError)):
            raise error
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {message}",
                         hint="start one (`ray start --head`), set RAY_ADDRESS, or pass --ray local") from None
    return ray, True


@dataclass(frozen=True)
class Placement:
    """How many workers, and what each one asks Ray for."""

    workers: int
    device: str  # "cuda" or "cpu": what each worker loads its model on
    options: dict  # ray.remote options: num_gpus / num_cpus


def _free(ray: Any, resource: str, needed: int, total: int, wait: float) -> int:
    """The free amount of `resource`, waiting up to `wait` s for it to reach `needed` when the cluster
    has that much in all (actors just stopped give theirs back a moment later)."""
    deadline = time.monotonic() + (wait if needed <= total else 0.0)
    while True:
        free = int(ray.available_resources().get(resource, 0))
        if free >= needed or time.monotonic() >= deadline:
            return free
        time.sleep(0.25)


def plan_workers(ray: Any, workers: int | None, device: str | None, cpus_per_worker: int = 1, *,
                 wait: float = RELEASE_WAIT) -> Placement:
    """One worker per GPU (num_gpus=1); on a cluster without GPUs, `cpus_per_worker` CPUs each.

    Refuses, before anything starts, a count the cluster's free resources cannot hold."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0))
    use_gpu = device == "cuda" or (device in (None, "auto") and gpus > 0)
    if device not in (None, "auto", "cuda", "cpu"):
        raise UsageError(f"--device {device} cannot be used with --ray", hint="pass cuda, cpu or leave it out")
    if use_gpu:
        count = workers if workers is not None else gpus
        gpus_free = _free(ray, "GPU", count, gpus, wait)
        if count < 1 or count > gpus_free:
            have = f"{gpus_free} free GPU(s) of {gpus}" if gpus else "no GPUs"
            raise UsageError(f"the Ray cluster has {have}; {max(count, 1)} worker(s) need one GPU each",
                             hint="pass fewer --workers, --device cpu, or add GPU nodes to the cluster")
        return Placement(count, "cuda", {"num_gpus": 1})
    count = workers if workers is not None else max(1, len([n for n in ray.nodes() if n.get("Alive")]))
    cpus_free = _free(ray, "CPU", count * cpus_per_worker, int(total.get("CPU", 0)), wait)
    if count * cpus_per_worker > cpus_free:
        raise UsageError(f"the Ray cluster has {cpus_free} free CPU(s); {count} worker(s) need "
                         f"{cpus_per_worker} each", hint="pass fewer --workers, or add nodes to the cluster")
    return Placement(count, "cpu", {"num_cpus": cpus_per_worker})
