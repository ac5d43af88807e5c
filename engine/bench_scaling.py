"""`rouser bench --scaling`: samples/s and memory used by training as T, batch and hidden width grow.

One factor at a time from the paper's setting (T = 300, batch 32, 2312-500-500-10): T 100 and 1000, batch 128,
hidden width 2000. Each kind and setting is timed in a process of its own (``bench.run_child``: one warm-up
and two timed batches) and its memory measured in another (one timed batch), as ``run_bench`` does; on 2
quiet cores the table takes a few minutes. snntorch runs where its estimated memory fits in half of the
memory available; the table says where it was left out.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .bench import prepare_batches, run_child
from .bench_kinds import available

__all__ = ["SCALING", "format_scaling", "run_scaling"]

SCALING = ((300, 32, 500), (100, 32, 500), (1000, 32, 500), (300, 128, 500), (300, 32, 2000))  # (T, batch, width)


def _available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def _measure(kind: str, steps: int, batch: int, width: int, data: str) -> dict:
    """Speed and memory, each from a process of its own (as in ``run_bench``)."""
    speed = run_child(kind, 2, batch, "cpu", "speed", steps, width, data)
    memory = run_child(kind, 1, batch, "cpu", "memory", steps, width, data)
    return dict(samples_per_s=speed["samples_per_s"], training_mb=memory["training_mb"],
                bytes_per_neuron_step=memory["bytes_per_neuron_step"])


def run_scaling(snntorch: bool = True, configs=SCALING, progress=lambda message: None) -> dict:
    """Measure the engine (and snntorch where it fits) at each (T, batch, width) of ``configs``."""
    rows, per_unit = [], None  # snntorch's training MB per (T * batch * (inputs + 6 * width)), from a measured row
    load_before = os.getloadavg()[0]
    peer = snntorch and available("snntorch")
    folder = tempfile.TemporaryDirectory()
    for steps, batch, width in configs:
        progress(f"scaling: T {steps}, batch {batch}, width {width}")
        data = prepare_batches(batch, 3, steps, folder.name)
        row = dict(time_steps=steps, batch_size=batch, hidden=width, rouser=_measure("rouser", steps, batch, width, data))
        work = steps * batch * (2312 + 6 * width)
        estimate = None if per_unit is None else per_unit * work
        if peer and (estimate is None or estimate < _available_mb() / 2):
            row["snntorch"] = _measure("snntorch", steps, batch, width, data)
            per_unit = row["snntorch"]["training_mb"] / work
        elif peer:
            row["snntorch_skipped"] = f"estimated {estimate:.0f} MB, over half the memory available"
        rows.append(row)
    folder.cleanup()
    notes = [] if peer or not snntorch else ['snntorch is not installed: its columns are empty (pip install -e ".[bench]")']
    return dict(rows=rows, threads=torch.get_num_threads(), notes=notes,
                load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)])


def format_scaling(r: dict) -> str:
    """The table as Markdown (README's Speed section)."""
    lines = [f"`rouser bench --scaling` ({r['threads']} threads; 2312-width-width-10 on nmnist-sim, two timed batches each; "
             f"load average {r['load_average'][0]:.1f} before, {r['load_average'][1]:.1f} after)", "",
             "| T | batch | width | Rouser samples/s | Rouser training MB | B/neuron-step | snntorch samples/s "
             "| snntorch training MB | speed-up | memory ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        ours, peer = row["rouser"], row.get("snntorch")
        cells = [row["time_steps"], row["batch_size"], row["hidden"], f"{ours['samples_per_s']:.1f}",
                 f"{ours['training_mb']:.0f}", f"{ours['bytes_per_neuron_step']:.3f}"]
        if peer:
            cells += [f"{peer['samples_per_s']:.1f}", f"{peer['training_mb']:.0f}",
                      f"{ours['samples_per_s'] / peer['samples_per_s']:.1f}x",
                      f"{ours['training_mb'] / peer['training_mb']:.2f}x"]
        else:
            cells += [row.get("snntorch_skipped", "not run"), "", "", ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines + r["notes"])
