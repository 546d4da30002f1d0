"""The decode loop a GPU needs, checked on the CPU: device choice and memory, host sync intervals,
and the smoke form of `make gpu-check`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from higgs_cli.engine.request import GREEDY, GenerationRequest, Sampling


def test_cuda_without_a_gpu_is_a_clear_usage_error(monkeypatch):
    from higgs_cli.engine.session import pick_device
    from higgs_cli.errors import UsageError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="no CUDA GPU is available"):
        pick_device("cuda")


def test_the_number_type_follows_the_device_and_the_cpu(monkeypatch):
    """bf16 on CUDA and on CPUs with bf16 units, fp32 on other CPUs and for a compiled CPU
    session; a name asked for, then $HIGGS_DTYPE, override; a bad name is a usage error."""
    from higgs_cli.engine.model import placement
    from higgs_cli.errors import UsageError

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("HIGGS_DTYPE", raising=False)
    for native, want in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(placement, "cpu_has_bf16", lambda native=native: native)
        assert placement.pick_dtype(cpu) == want
        assert placement.pick_dtype(cpu, compile=True) == torch.float32
        assert placement.pick_dtype(cuda) == torch.bfloat16
    assert placement.pick_dtype(cpu, "bf16") == torch.bfloat16
    monkeypatch.setenv("HIGGS_DTYPE", "FP32")
    assert placement.pick_dtype(cuda) == torch.float32
    assert placement.pick_dtype(cpu, "bf16") == torch.bfloat16  # asked for outright: that wins
    monkeypatch.setenv("HIGGS_DTYPE", "fp8")
    with pytest.raises(UsageError, match="unknown dtype 'fp8'") as caught:
        placement.pick_dtype(cpu)
    assert "HIGGS_DTYPE" in caught.value.hint


def test_a_model_too_large_for_the_gpu_says_how_much_it_needs(tiny_model):
    from higgs_cli.engine.session import check_fits, weight_bytes
    from higgs_cli.errors import ModelError

    stored = sum(f.stat().st_size for f in tiny_model.glob("*.safetensors"))
    assert weight_bytes(tiny_model, torch.bfloat16) == stored // 2 * 2
    assert weight_bytes(tiny_model, torch.float32) == stored // 2 * 4
    check_fits(11 * 10**9, 24 * 10**9)
    with pytest.raises(ModelError, match=r"needs about 12\.1 GB of GPU memory.*only 8\.0 GB is free") as caught:
        check_fits(11 * 10**9, 8 * 10**9)
    assert "--device cpu" in caught.value.hint


def test_host_sync_interval_changes_no_code(tiny_session):
    """The GPU loop reads the done mask every 8 steps: slots refill later, codes stay the same."""
    from higgs_cli.engine.decode.loop import run_jobs

    requests = [GenerationRequest(text="Greedy line.", sampling=GREEDY, max_frames=9),
                GenerationRequest(text="A sampled line with RAS.", sampling=Sampling(temperature=0.9), seed=3,
                                  max_frames=30),
                GenerationRequest(text="Third.", sampling=Sampling(temperature=0.0, ras_window=3, ras_max_repeat=1),
                                  seed=1, max_frames=14)]
    jobs = tiny_session._jobs(requests)
    runs = [run_jobs(tiny_session.runner, jobs, slots=2, device=tiny_session.device, dtype=tiny_session.dtype,
                     sync_every=every) for every in (1, 3, 8)]
    for other in runs[1:]:
        for (a, fa), (b, fb) in zip(runs[0], other):
            assert np.array_equal(a, b) and fa == fb


@pytest.mark.slow
def test_gpu_check_smoke_form_runs_on_cpu(tmp_path):
    """`make gpu-check` without a GPU: the same checks on the CPU with the tiny model, fast, and says so."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NO GPU" in done.stdout
    results = json.loads(out.read_text())
    assert results["device"] == "cpu" and all(check["equal"] for check in results["checks"].values())
    assert {run["batch"] for run in results["speed"]["runs"]} == {1, 8}
    assert results["seconds"] < 60
