"""`rouser bench`: training throughput and memory of the engine against snntorch, spikingjelly and the dense-GEMM bound.

Each measurement runs in its own child process (so its peak RSS is its own), and the kinds are interleaved
round by round in one invocation (the order rotating each round; speed and memory each round), so ratios are
measured under the same machine load; the report gives medians over the rounds and the spread of speed
(lowest and highest round), with the machine's load average. All kinds
train the paper's NMNIST network (2312-500-500-10, T = 300, batch 32) from the same initial weights on the
same `nmnist-sim` batches (``bench_kinds.py``). ``--scaling`` (``bench_scaling.py``) varies T, batch and width.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from .allocator import hand_back_freed_memory, keep_freed_memory
from .bench_kinds import BUILDERS, PEERS, available, saved_bytes
from .data import load_dataset
from .data.base import SpikeBatch
from .loss import fir_kernel

__all__ = ["format_bench", "run_bench", "run_child", "worker"]

KINDS = ("rouser", "snntorch", "spikingjelly", "dense_gemm")
WARMUP = 1
SPIKINGJELLY_INSTALL = "pip install --no-deps spikingjelly==2.0.0 loguru"


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS: now, VmHWM: peak since the last reset)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> None:
    """Start the peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _warm_imports(kind: str, device: torch.device) -> None:
    """Load the kind's libraries and PyTorch's lazily imported optimizer code before the memory baseline, so
    'memory used by training' counts training, not imports (the same for every kind)."""
    if kind in PEERS:
        __import__(PEERS[kind][0])
    if kind == "rouser" and device.type == "cpu":
        from .kernels import cpu_kernel

        cpu_kernel()
    p = torch.zeros(1, requires_grad=True)
    p.grad = torch.zeros(1)
    torch.optim.Adam([p]).step()


def _batches(batch_size: int, count: int, time_steps: int):
    """The first ``count`` shuffled training batches of `nmnist-sim` (the rest of the dataset is let go)."""
    data = load_dataset("nmnist-sim", time_steps=time_steps).train
    order = np.random.default_rng(0).permutation(len(data))
    return [data.batch(order[k * batch_size:(k + 1) * batch_size]) for k in range(count)], data.num_channels


def prepare_batches(batch_size: int, count: int, time_steps: int, folder: str) -> str:
    """Write the batches once for all child processes (every kind gets the very same ones); the file's path."""
    path = os.path.join(folder, f"batches-{time_steps}-{batch_size}-{count}.pt")
    if not os.path.exists(path):
        data, channels = _batches(batch_size, count, time_steps)
        torch.save({"batches": [dataclasses.asdict(b) for b in data], "channels": channels}, path)
    return path


def _load_batches(path: str, count: int):
    saved = torch.load(path, weights_only=False)
    return [SpikeBatch(**b) for b in saved["batches"][:count]], saved["channels"]


def _trainer_step(forward, optimizer, device):
    """Forward, backward and Adam step of a kind (``bench_kinds``), on ``device``."""
    def step(batch):
        loss = forward(batch.to(device))
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return step


def _time_steps(step, batches, device) -> tuple[float, float]:
    """Wall and CPU seconds per batch of ``step(batch)`` after the warm-up, synchronising CUDA around the clock."""
    for b in batches[:WARMUP]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    _reset_peak()  # the peak counts the timed steps (what the warm-up set up and kept stays counted)
    start, cpu = time.perf_counter(), time.process_time()
    for b in batches[WARMUP:]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    count = len(batches) - WARMUP
    return (time.perf_counter() - start) / count, (time.process_time() - cpu) / count


def worker(kind: str, batches: int, batch_size: int, device_name: str, measure: str = "speed",
           time_steps: int = 300, hidden: int = 500, data_file: str | None = None, threads: int | None = None) -> dict:
    """Measure one kind in this process: samples/s (``measure="speed"``), or peak memory and the bytes autograd
    keeps for backward per neuron-step (``"memory"``) on the 2312-hidden-hidden-10 network.

    Memory is measured in a process of its own with glibc's mmap threshold fixed (``hand_back_freed_memory``),
    which makes large allocations slower, so it never shares a process with a speed measurement. Training
    memory is the peak over the timed steps above the process before the model was built.
    """
    if measure == "memory":
        hand_back_freed_memory()
    else:  # as a training process runs (`rouser train`), for every kind alike
        keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device_name)
    if data_file:
        data, channels = _load_batches(data_file, batches + WARMUP)
    else:
        data, channels = _batches(batch_size, batches + WARMUP, time_steps)
    sizes = [channels, hidden, hidden, 10]
    kernel = fir_kernel(device=device)
    _warm_imports(kind, device)
    gc.collect()
    base = _status_mb("VmRSS")
    forward, optimizer = BUILDERS[kind](sizes, device, kernel)
    seconds, cpu_seconds = _time_steps(_trainer_step(forward, optimizer, device), data, device)
    peak = _status_mb("VmHWM")
    result = dict(kind=kind, measure=measure, samples_per_s=batch_size / seconds, peak_rss_mb=peak, base_rss_mb=base,
                  cpu_samples_per_s=batch_size / cpu_seconds, threads=torch.get_num_threads(),
                  training_mb=peak - base, time_steps=time_steps, batch_size=batch_size, hidden=hidden)
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if measure == "memory" and optimizer is not None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        kept = saved_bytes(forward, data[0].to(device), params)
        result.update(saved_mb=kept / 2**20, bytes_per_neuron_step=kept / (time_steps * batch_size * sum(sizes[1:])))
    return result


def run_child(kind: str, batches: int, batch_size: int, device: str, measure: str = "speed", time_steps: int = 300,
              hidden: int = 500, data_file: str | None = None, threads: int | None = None) -> dict:
    """``worker`` in a fresh process: python -m engine.bench '{json arguments}'."""
    spec = dict(kind=kind, batches=batches, batch_size=batch_size, device_name=device, measure=measure,
                time_steps=time_steps, hidden=hidden, data_file=data_file, threads=threads)
    proc = subprocess.run([sys.executable, "-m", "engine.bench", json.dumps(spec)], capture_output=True, text=True,
                          check=False)
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
    step = _trainer_step(*BUILDERS["rouser"](trainer.sizes, torch.device("cpu"), fir_kernel()), torch.device("cpu"))
    bare_ms = 1000 * _time_steps(step, data, torch.device("cpu"))[0]
    return dict(quick_epoch_s=seconds, quick_batches=len(batches), quick_batch_ms_median=statistics.median(per_batch),
                quick_bare_step_ms=bare_ms)


def _interleave(kinds, rounds, batches, batch_size, time_steps, data, progress) -> tuple[dict, dict]:
    """Speed and memory of every kind, each in its own process, the kinds' order rotating round by round:
    ({kind: [speed records]}, {kind: median memory figures over the rounds})."""
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    mem: dict[str, list[dict]] = {k: [] for k in kinds if k != "dense_gemm"}
    for r in range(rounds):
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
            progress(f"round {r + 1}/{rounds}: {kind}")
            runs[kind].append(run_child(kind, batches, batch_size, "cpu", time_steps=time_steps, data_file=data))
            if kind in mem:
                mem[kind].append(run_child(kind, 1, batch_size, "cpu", "memory", time_steps, data_file=data))
    fields = ("peak_rss_mb", "training_mb", "bytes_per_neuron_step")
    return runs, {k: {f: statistics.median(x[f] for x in v) for f in fields} for k, v in mem.items()}


def _spread(values) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)]


def run_bench(rounds: int = 3, batches: int = 4, batch_size: int = 32, snntorch: bool = True, quick: bool = True,
              spikingjelly: bool = True, time_steps: int = 300, progress=lambda message: None) -> dict:
    """Interleave the kinds for ``rounds`` rounds; report medians, spreads and ratios (see module docstring).

    A peer whose library is not installed is skipped with a note in ``notes``. ``time_steps`` other than the
    paper's 300 is for quick checks of the machinery.
    """
    wanted = dict(snntorch=snntorch, spikingjelly=spikingjelly)
    notes = []
    for peer, on in wanted.items():
        if on and not available(peer):
            notes.append(f"{peer} is not installed: row skipped"
                         + (f" ({SPIKINGJELLY_INSTALL})" if peer == "spikingjelly" else ' (pip install -e ".[bench]")'))
    kinds = [k for k in KINDS if wanted.get(k, True) and available(k)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        data = prepare_batches(batch_size, 4 * batches + WARMUP, time_steps, folder)
        runs, memory = _interleave(kinds, rounds, batches, batch_size, time_steps, data, progress)
        single = {}
        for kind in kinds:  # CPU time on one thread: what the load of other processes changes least
            progress(f"one thread: {kind}")
            single[kind] = run_child(kind, batches, batch_size, "cpu", time_steps=time_steps, data_file=data,
                                     threads=1)["cpu_samples_per_s"]
        if torch.cuda.is_available():
            progress("cuda")
            cuda = [run_child(k, batches * 4, batch_size, "cuda", time_steps=time_steps, data_file=data) for k in kinds]
    rate = {k: [x["samples_per_s"] for x in v] for k, v in runs.items()}
    med = {k: statistics.median(v) for k, v in rate.items()}
    result = dict(network="2312-500-500-10", time_steps=time_steps, batch_size=batch_size, rounds=rounds,
                  batches_per_round=batches, threads=torch.get_num_threads(), cpus=os.cpu_count(), notes=notes,
                  load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],
                  samples_per_s=med["rouser"], samples_per_s_spread=_spread(rate["rouser"]),
                  peak_rss_mb=memory["rouser"]["peak_rss_mb"], training_mb=memory["rouser"]["training_mb"],
                  bytes_per_neuron_step=memory["rouser"]["bytes_per_neuron_step"],
                  dense_gemm_samples_per_s=med["dense_gemm"], ratio_to_dense_gemm=med["rouser"] / med["dense_gemm"],
                  per_round={k: [round(x, 2) for x in v] for k, v in rate.items()},
                  one_thread_cpu_samples_per_s=single)
    for peer in PEERS:
        if peer not in kinds:
            continue
        per_round = [a / b for a, b in zip(rate["rouser"], rate[peer])]
        m = memory[peer]
        result.update({f"{peer}_samples_per_s": med[peer], f"{peer}_samples_per_s_spread": _spread(rate[peer]),
                       f"speedup_vs_{peer}": med["rouser"] / med[peer], f"speedup_vs_{peer}_spread": _spread(per_round),
                       f"{peer}_peak_rss_mb": m["peak_rss_mb"], f"{peer}_training_mb": m["training_mb"],
                       f"{peer}_bytes_per_neuron_step": m["bytes_per_neuron_step"],
                       f"memory_ratio_vs_{peer}": memory["rouser"]["peak_rss_mb"] / m["peak_rss_mb"],
                       f"training_memory_ratio_vs_{peer}": memory["rouser"]["training_mb"] / m["training_mb"],
                       f"one_thread_cpu_speedup_vs_{peer}": single["rouser"] / single[peer],
                       f"{peer}_setup": PEERS[peer][1]})
    if torch.cuda.is_available():
        result["cuda"] = {x["kind"]: dict(samples_per_s=x["samples_per_s"], peak_cuda_mb=x.get("peak_cuda_mb")) for x in cuda}
        result["cuda_device"] = torch.cuda.get_device_name(0)
    if quick:
        progress("quick preset epoch")
        result.update(quick_epoch_seconds())
        progress("data path")
        from .data.bench import data_throughput

        result["data"] = data_throughput("nmnist-sim", batch_size)
    return result


def format_bench(r: dict) -> str:
    lines = [f"network {r['network']}, T = {r['time_steps']}, batch {r['batch_size']}, {r['threads']} threads, "
             f"median of {r['rounds']} interleaved rounds [lowest, highest round]; load average "
             f"{r['load_average'][0]:.1f} before, {r['load_average'][1]:.1f} after the rounds ({r['cpus']} CPUs)",
             f"{'':<14}{'samples/s':>11}{'spread':>16}{'peak RSS MB':>13}{'training MB':>13}{'B/neuron-step':>15}"]

    def row(name, prefix):
        lo, hi = r[f"{prefix}samples_per_s_spread"]
        lines.append(f"{name:<14}{r[f'{prefix}samples_per_s']:>11.1f}{f'[{lo:.1f}, {hi:.1f}]':>16}"
                     f"{r[f'{prefix}peak_rss_mb']:>13.0f}{r[f'{prefix}training_mb']:>13.0f}"
                     f"{r[f'{prefix}bytes_per_neuron_step']:>15.3f}")
    row("rouser", "")
    for peer in PEERS:
        if f"{peer}_samples_per_s" in r:
            row(peer, f"{peer}_")
    lines.append(f"{'dense GEMM':<14}{r['dense_gemm_samples_per_s']:>11.1f}")
    for peer in PEERS:
        if f"speedup_vs_{peer}" in r:
            lo, hi = r[f"speedup_vs_{peer}_spread"]
            lines.append(f"vs {peer}: speed-up {r[f'speedup_vs_{peer}']:.1f}x [{lo:.1f}, {hi:.1f}], peak RSS "
                         f"{r[f'memory_ratio_vs_{peer}']:.2f}x, memory used by training "
                         f"{r[f'training_memory_ratio_vs_{peer}']:.2f}x ({r[f'{peer}_setup']})")
    lines.append(f"ratio to the dense-GEMM bound {r['ratio_to_dense_gemm']:.2f}x")
    one = r["one_thread_cpu_samples_per_s"]
    lines.append("one thread, samples per CPU-second (little changed by other processes' load): "
                 + ", ".join(f"{k} {v:.1f}" for k, v in one.items())
                 + "".join(f"; {p} {r[f'one_thread_cpu_speedup_vs_{p}']:.1f}x" for p in PEERS
                           if f"one_thread_cpu_speedup_vs_{p}" in r))
    lines += r.get("notes", [])
    for kind, c in r.get("cuda", {}).items():
        lines.append(f"cuda ({r.get('cuda_device', 'GPU')}) {kind}: {c['samples_per_s']:.1f} samples/s, "
                     f"peak {c['peak_cuda_mb'] or 0:.0f} MB")
    if "quick_epoch_s" in r:
        lines.append(f"quick preset: one epoch {r['quick_epoch_s']:.1f} s ({r['quick_batches']} batches, "
                     f"median {r['quick_batch_ms_median']:.0f} ms per batch with metrics, "
                     f"{r['quick_bare_step_ms']:.0f} ms as a bare training step)")
    if "data" in r:
        lines.append(f"data path (cached nmnist-sim, batch {r['data']['batch_size']}, events to CSR): "
                     f"{r['data']['samples_per_s']:.0f} samples/s")
    return "\n".join(lines)


if __name__ == "__main__":  # child process: python -m engine.bench '{"kind": ..., ...}'
    print(json.dumps(worker(**json.loads(sys.argv[1]))))
