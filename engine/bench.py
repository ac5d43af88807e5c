"""`rouser bench`: training throughput and peak memory of the engine against snntorch and the dense-GEMM bound.

Each measurement runs in its own child process (so its peak RSS is its own), and the kinds are
interleaved round by round in one invocation, so ratios are measured under the same machine load.
All kinds train the paper's NMNIST network (2312-500-500-10, T = 300) on the same `nmnist-sim` batches.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

from .data import load_dataset
from .loss import fir_kernel, target_spikes, van_rossum_loss
from .network import RouserNetwork, get_preset
from .neuron import NeuronParams

__all__ = ["run_bench", "format_bench"]

KINDS = ("rouser", "snntorch", "dense_gemm")
WARMUP = 1


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS: now, VmHWM: peak since the last reset)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fixed_mmap_threshold() -> None:
    """Serve every allocation above 1 MiB by mmap, so freed tensors leave the RSS at once (both kinds alike).

    glibc otherwise raises its mmap threshold after the first large free and keeps later tensors on a heap
    that never shrinks, and peak RSS then reports allocator caching rather than the tensors alive.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _reset_peak() -> None:
    """Start the peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _batches(batch_size: int, count: int, time_steps: int):
    """The first ``count`` shuffled training batches of `nmnist-sim` (the rest of the dataset is let go)."""
    data = load_dataset("nmnist-sim", time_steps=time_steps).train
    order = np.random.default_rng(0).permutation(len(data))
    return [data.batch(order[k * batch_size:(k + 1) * batch_size]) for k in range(count)], data.num_channels


def _time_steps(step, batches, device) -> float:
    """Seconds per batch of ``step(batch)`` after a warm-up, synchronising CUDA around the clock."""
    for b in batches[:WARMUP]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for b in batches[WARMUP:]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (len(batches) - WARMUP)


def _rouser_step(sizes, device, kernel, time_steps):
    """Forward, backward (hand-written BPTT, sparse input) and Adam step of the engine."""
    model = RouserNetwork(sizes, 1.0, NeuronParams(), seed=0).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        batch = batch.to(device)
        out = model(batch)[-1]
        loss = van_rossum_loss(out, target_spikes(batch.labels, sizes[-1], time_steps), kernel)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def _snntorch_step(sizes, device, kernel, time_steps):
    """The usual snntorch way: nn.Linear + snn.Synaptic per layer, a Python loop over time, autograd BPTT."""
    import snntorch as snn

    linears = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in zip(sizes[:-1], sizes[1:])).to(device)
    neurons = nn.ModuleList(snn.Synaptic(alpha=0.75, beta=0.97, threshold=1.0, learn_threshold=True,
                                         reset_mechanism="subtract") for _ in sizes[1:]).to(device)
    optimizer = torch.optim.Adam(list(linears.parameters()) + list(neurons.parameters()), lr=1e-3)

    def step(batch):
        batch = batch.to(device)
        x = batch.dense()
        states = [n.init_synaptic() for n in neurons]
        out = []
        for t in range(time_steps):
            s = x[t]
            for k, (fc, lif) in enumerate(zip(linears, neurons)):
                s, syn, mem = lif(fc(s), *states[k])
                states[k] = (syn, mem)
            out.append(s)
        loss = van_rossum_loss(torch.stack(out), target_spikes(batch.labels, sizes[-1], time_steps), kernel)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def _dense_gemm_step(sizes, device, kernel, time_steps):
    """Only the dense matmuls of a training step: forward, input gradient and weight gradient per layer."""
    weights = [torch.randn(o, i, device=device) for i, o in zip(sizes[:-1], sizes[1:])]

    def step(batch):
        rows = time_steps * batch.batch_size
        for w in weights:
            x = torch.ones(rows, w.shape[1], device=device)
            y = x @ w.t()
            _ = y @ w
            _ = y.t() @ x
    return step


def worker(kind: str, batches: int, batch_size: int, device_name: str, measure: str = "speed") -> dict:
    """Measure one kind in this process: samples/s (``measure="speed"``) or peak memory (``"memory"``).

    Memory is measured in a process of its own with glibc's mmap threshold fixed (see _fixed_mmap_threshold),
    which makes large allocations slower, so it never shares a process with a speed measurement.
    """
    if measure == "memory":
        _fixed_mmap_threshold()
    torch.manual_seed(0)
    device = torch.device(device_name)
    preset = get_preset("nmnist")
    data, channels = _batches(batch_size, batches + WARMUP, preset.time_steps)
    sizes = [channels, *preset.hidden, 10]
    kernel = fir_kernel(device=device)
    gc.collect()
    _reset_peak()  # the peak counts from here: the batches are loaded, the dataset is gone
    base = _status_mb("VmRSS")
    step = dict(rouser=_rouser_step, snntorch=_snntorch_step, dense_gemm=_dense_gemm_step)[kind](
        sizes, device, kernel, preset.time_steps)
    seconds = _time_steps(step, data, device)
    peak = _status_mb("VmHWM")
    result = dict(kind=kind, measure=measure, samples_per_s=batch_size / seconds, peak_rss_mb=peak, base_rss_mb=base,
                  training_mb=peak - base)
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _child(kind: str, batches: int, batch_size: int, device: str, measure: str = "speed") -> dict:
    cmd = [sys.executable, "-m", "engine.bench", kind, str(batches), str(batch_size), device, measure]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {kind} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def quick_epoch_seconds() -> dict:
    """One epoch of the `quick` preset on the default dataset through the Trainer (metrics and probe included),
    and the same batches as bare training steps, so the cost of the per-batch metrics shows."""
    from .config import TrainConfig
    from .train import Trainer

    trainer = Trainer(TrainConfig(preset="quick", device="cpu", lr_th=1e-2))
    start = time.perf_counter()
    batches = [e.record for e in trainer.events() if e.kind == "batch"]
    seconds = time.perf_counter() - start
    per_batch = [1000 * trainer.config.batch_size / b.samples_per_s for b in batches]
    train, cfg = trainer.dataset.train, trainer.config
    order = trainer.batch_order(0)
    data = [train.batch(order[k * cfg.batch_size:(k + 1) * cfg.batch_size]) for k in range(min(40, len(batches)))]
    step = _rouser_step(trainer.sizes, torch.device("cpu"), fir_kernel(), trainer.dataset.time_steps)
    bare_ms = 1000 * _time_steps(step, data, torch.device("cpu"))
    return dict(quick_epoch_s=seconds, quick_batches=len(batches), quick_batch_ms_median=statistics.median(per_batch),
                quick_bare_step_ms=bare_ms)


def run_bench(rounds: int = 3, batches: int = 4, batch_size: int = 32, snntorch: bool = True, quick: bool = True,
              progress=lambda message: None) -> dict:
    """Interleave the kinds for ``rounds`` rounds; report medians and ratios (see module docstring)."""
    kinds = [k for k in KINDS if snntorch or k != "snntorch"]
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds:
            progress(f"round {r + 1}/{rounds}: {kind}")
            runs[kind].append(_child(kind, batches, batch_size, "cpu"))
    memory = {}
    for kind in kinds:
        progress(f"memory: {kind}")
        memory[kind] = _child(kind, 1, batch_size, "cpu", "memory")
    med = {k: statistics.median(x["samples_per_s"] for x in v) for k, v in runs.items()}
    peak = {k: m["peak_rss_mb"] for k, m in memory.items()}
    training = {k: m["training_mb"] for k, m in memory.items()}
    result = dict(network="2312-500-500-10", time_steps=300, batch_size=batch_size, rounds=rounds,
                  batches_per_round=batches, threads=torch.get_num_threads(),
                  samples_per_s=med["rouser"], peak_rss_mb=peak["rouser"], training_mb=training["rouser"],
                  dense_gemm_samples_per_s=med["dense_gemm"], ratio_to_dense_gemm=med["rouser"] / med["dense_gemm"],
                  per_round={k: [round(x["samples_per_s"], 2) for x in v] for k, v in runs.items()})
    if snntorch:
        result.update(snntorch_samples_per_s=med["snntorch"], speedup_vs_snntorch=med["rouser"] / med["snntorch"],
                      snntorch_peak_rss_mb=peak["snntorch"], memory_ratio_vs_snntorch=peak["rouser"] / peak["snntorch"],
                      snntorch_training_mb=training["snntorch"],
                      training_memory_ratio_vs_snntorch=training["rouser"] / training["snntorch"])
    if torch.cuda.is_available():
        progress("cuda")
        cuda = [_child(k, batches * 4, batch_size, "cuda") for k in kinds]
        result["cuda"] = {x["kind"]: dict(samples_per_s=x["samples_per_s"], peak_cuda_mb=x.get("peak_cuda_mb")) for x in cuda}
    if quick:
        progress("quick preset epoch")
        result.update(quick_epoch_seconds())
        progress("data path")
        from .data.bench import data_throughput

        result["data"] = data_throughput("nmnist-sim", batch_size)
    return result


def format_bench(r: dict) -> str:
    lines = [f"network {r['network']}, T = {r['time_steps']}, batch {r['batch_size']}, {r['threads']} threads, "
             f"median of {r['rounds']} interleaved rounds",
             f"{'':<14}{'samples/s':>11}{'peak RSS MB':>13}{'training MB':>13}",
             f"{'rouser':<14}{r['samples_per_s']:>11.1f}{r['peak_rss_mb']:>13.0f}{r['training_mb']:>13.0f}"]
    if "snntorch_samples_per_s" in r:
        lines.append(f"{'snntorch':<14}{r['snntorch_samples_per_s']:>11.1f}{r['snntorch_peak_rss_mb']:>13.0f}"
                     f"{r['snntorch_training_mb']:>13.0f}")
    lines.append(f"{'dense GEMM':<14}{r['dense_gemm_samples_per_s']:>11.1f}{'':>13}")
    if "speedup_vs_snntorch" in r:
        lines.append(f"speed-up vs snntorch {r['speedup_vs_snntorch']:.1f}x; peak RSS {r['memory_ratio_vs_snntorch']:.2f}x "
                     f"of snntorch's, memory used by training (peak above the loaded process) "
                     f"{r['training_memory_ratio_vs_snntorch']:.2f}x")
    lines.append(f"ratio to the dense-GEMM bound {r['ratio_to_dense_gemm']:.2f}x")
    for kind, c in r.get("cuda", {}).items():
        lines.append(f"cuda {kind}: {c['samples_per_s']:.1f} samples/s, peak {c['peak_cuda_mb'] or 0:.0f} MB")
    if "quick_epoch_s" in r:
        lines.append(f"quick preset: one epoch {r['quick_epoch_s']:.1f} s ({r['quick_batches']} batches, "
                     f"median {r['quick_batch_ms_median']:.0f} ms per batch with metrics, "
                     f"{r['quick_bare_step_ms']:.0f} ms as a bare training step)")
    if "data" in r:
        lines.append(f"data path (cached nmnist-sim, batch {r['data']['batch_size']}, events to CSR): "
                     f"{r['data']['samples_per_s']:.0f} samples/s")
    return "\n".join(lines)


if __name__ == "__main__":  # child process: python -m engine.bench KIND BATCHES BATCH_SIZE DEVICE [MEASURE]
    kind, n, bs, dev = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    print(json.dumps(worker(kind, n, bs, dev, *sys.argv[5:6])))
