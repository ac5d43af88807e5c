"""Binned datasets cached on disk, one ``.npz`` per dataset and parameter set, written atomically.

The file name is ``<name>-<hash>.npz`` where the hash covers the build parameters (binning,
generator settings, a fingerprint of the source files and ``CACHE_VERSION``), so any change
of those builds a new file instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .base import SpikeDataset, SpikeSplit
from .paths import resolve_cache_dir

__all__ = ["CACHE_VERSION", "cache_path", "cached_dataset", "save_dataset", "load_saved_dataset"]

CACHE_VERSION = 1
_SPLIT_FIELDS = ("times", "channels", "offsets", "labels")


def cache_path(name: str, params: dict, cache_dir: str | Path | None = None) -> Path:
    """The cache file for dataset ``name`` built with ``params`` (JSON-serialisable)."""
    text = json.dumps({"version": CACHE_VERSION, "name": name, **params}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return resolve_cache_dir(cache_dir) / f"{name}-{digest}.npz"


def save_dataset(dataset: SpikeDataset, path: Path) -> None:
    """Write ``dataset`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"name": dataset.name, "num_classes": dataset.num_classes, "input_shape": list(dataset.input_shape),
            "bin_ms": dataset.bin_ms, "class_names": list(dataset.class_names)}
    arrays = {"meta": np.array(json.dumps(meta))}
    for split_name, split in (("train", dataset.train), ("test", dataset.test)):
        for field in _SPLIT_FIELDS:
            arrays[f"{split_name}_{field}"] = getattr(split, field)
        arrays[f"{split_name}_shape"] = np.array([split.time_steps, split.num_channels])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_saved_dataset(path: Path) -> SpikeDataset:
    """Read a dataset written by `save_dataset`."""
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        splits = []
        for split_name in ("train", "test"):
            time_steps, num_channels = (int(v) for v in f[f"{split_name}_shape"])
            splits.append(SpikeSplit(*(f[f"{split_name}_{field}"] for field in _SPLIT_FIELDS), time_steps, num_channels))
    return SpikeDataset(meta["name"], splits[0], splits[1], meta["num_classes"], tuple(meta["input_shape"]),
                        meta["bin_ms"], meta["class_names"])


def cached_dataset(name: str, params: dict, build: Callable[[], SpikeDataset],
                   cache_dir: str | Path | None = None) -> SpikeDataset:
    """The cached dataset for (name, params) if readable, else ``build()`` it and cache the result."""
    path = cache_path(name, params, cache_dir)
    if path.is_file():
        try:
            return load_saved_dataset(path)
        except (OSError, ValueError, KeyError, EOFError):
            pass  # unreadable cache file: rebuild and overwrite it
    dataset = build()
    try:
        save_dataset(dataset, path)
    except OSError:
        pass  # a read-only cache only costs speed
    return dataset
