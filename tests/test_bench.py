"""`rouser bench` machinery at a tiny size: every kind runs in its child process and reports what the note needs."""

import subprocess
import sys

import torch

from engine.bench import format_bench, run_bench
from engine.bench_kinds import BUILDERS, available, saved_bytes
from engine.data.base import SpikeSplit
from engine.loss import fir_kernel


def test_bench_reports_every_figure():
    result = run_bench(rounds=1, batches=1, batch_size=2, quick=False, time_steps=12)
    peers = [p for p in ("snntorch", "spikingjelly") if available(p)]
    assert "snntorch" in peers  # the bench extra installs it
    for key in ("samples_per_s", "dense_gemm_samples_per_s", "ratio_to_dense_gemm", "peak_rss_mb", "training_mb",
                "bytes_per_neuron_step") + tuple(f"{k}_{p}" for p in peers for k in (
                    "speedup_vs", "training_memory_ratio_vs")) + tuple(f"{p}_bytes_per_neuron_step" for p in peers):
        assert result[key] > 0, key
    for peer in peers:
        assert result[f"speedup_vs_{peer}"] == result["samples_per_s"] / result[f"{peer}_samples_per_s"]
        assert result[f"one_thread_cpu_speedup_vs_{peer}"] > 0
        lo, hi = result[f"speedup_vs_{peer}_spread"]
        assert lo <= hi
    assert all(p in peers or any(p in note for note in result["notes"]) for p in ("snntorch", "spikingjelly"))
    text = format_bench(result)
    assert "snntorch" in text and "dense GEMM" in text and "B/neuron-step" in text


def test_engine_keeps_fewer_bytes_for_backward_than_step_by_step_autograd():
    """The fused layers keep only their input spikes (CSR indices); snntorch keeps floats for every step."""
    steps, batch = 20, 2
    g = torch.Generator().manual_seed(0)
    dense = (torch.rand(steps, batch, 30, generator=g) < 0.05)
    samples = [tuple(x.numpy() for x in torch.nonzero(dense[:, b], as_tuple=True)) for b in range(batch)]
    data = SpikeSplit.from_samples(samples, [0, 1], steps, 30).batch([0, 1])
    kept = {}
    for kind in ("rouser", "snntorch"):
        forward, optimizer = BUILDERS[kind]([30, 16, 16, 10], torch.device("cpu"), fir_kernel())
        params = [p for group in optimizer.param_groups for p in group["params"]]
        kept[kind] = saved_bytes(forward, data, params)
    assert 0 < kept["rouser"] < kept["snntorch"] / 3


def test_bench_rejects_bad_rounds():
    proc = subprocess.run([sys.executable, "-m", "engine", "bench", "--rounds", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--rounds" in proc.stderr and "Traceback" not in proc.stderr


def test_scaling_table_has_a_row_per_setting():
    from engine.bench_scaling import format_scaling, run_scaling

    result = run_scaling(snntorch=False, configs=((12, 2, 16),))  # snntorch's rows run the same workers as above
    (row,) = result["rows"]
    assert row["rouser"]["samples_per_s"] > 0 and row["rouser"]["training_mb"] > 0 and "snntorch" not in row
    table = format_scaling(result)
    assert "| 12 | 2 | 16 |" in table and "speed-up" in table
