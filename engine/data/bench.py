"""How fast the data path feeds the trainer: one epoch of shuffled batches from the cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .registry import load_dataset

__all__ = ["data_throughput"]


def data_throughput(name: str = "nmnist-sim", batch_size: int = 32, cache_dir: str | Path | None = None,
                    data_root: str | Path | None = None, seed: int = 0) -> dict:
    """Time loading ``name`` (cached after the first call) and one epoch of shuffled training batches.

    The input path the network uses by default is ``SpikeSplit.batch`` then ``engine.sparse.batch_to_csr``
    (``samples_per_s``); also timed: the sparse batch alone (``sparse_samples_per_s``) and
    ``SpikeBatch.dense`` with a fresh tensor per batch (``dense_samples_per_s``) or one reused buffer
    (``reused_dense_samples_per_s``). Also returns name, batch_size, samples and load_s.
    """
    start = time.perf_counter()
    dataset = load_dataset(name, data_root=data_root, cache_dir=cache_dir)
    load_s = time.perf_counter() - start
    split = dataset.train
    order = np.random.default_rng(seed).permutation(len(split))
    batches = [order[lo:lo + batch_size] for lo in range(0, len(order), batch_size)]

    def rate(step) -> float:
        start = time.perf_counter()
        for indices in batches:
            step(indices)
        return round(len(split) / max(time.perf_counter() - start, 1e-9), 1)

    buffer = {"out": None}

    def reuse(indices):
        buffer["out"] = split.batch(indices).dense(out=buffer["out"])

    from ..sparse import batch_to_csr  # the trainer's input path (engine/sparse.py)

    return {"name": name, "batch_size": batch_size, "samples": len(split), "load_s": round(load_s, 3),
            "samples_per_s": rate(lambda i: batch_to_csr(split.batch(i))),
            "sparse_samples_per_s": rate(split.batch),
            "dense_samples_per_s": rate(lambda i: split.batch(i).dense()),
            "reused_dense_samples_per_s": rate(reuse)}
