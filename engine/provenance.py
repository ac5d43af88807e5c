"""Where a run trained and on what data: the `Provenance` recorded in each run summary."""

from __future__ import annotations

import hashlib
from importlib import metadata

import numpy as np
import torch

from .data import SpikeDataset
from .records import Provenance

__all__ = ["dataset_fingerprint", "rouser_version", "run_provenance"]

_SPIKE_SAMPLE = 1 << 20  # at most this many spikes per split enter the hash (every k-th one)


def dataset_fingerprint(dataset: SpikeDataset) -> str:
    """A short hash of the binned data: name, grid, classes, labels, spikes per sample and a strided spike sample.

    Two runs with the same fingerprint trained on the same samples on the same time grid.
    """
    h = hashlib.sha256(repr((dataset.name, dataset.time_steps, dataset.num_channels, dataset.num_classes)).encode())
    for split in (dataset.train, dataset.test):
        stride = max(1, len(split.times) // _SPIKE_SAMPLE)
        for array in (split.labels, split.offsets, split.times[::stride], split.channels[::stride]):
            h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def rouser_version() -> str:
    """The installed ``rouser`` distribution's version, or "unknown" when it is not installed."""
    try:
        return metadata.version("rouser")
    except metadata.PackageNotFoundError:
        return "unknown"


def run_provenance(dataset: SpikeDataset, device: torch.device, world_size: int) -> Provenance:
    return Provenance(dataset_fingerprint=dataset_fingerprint(dataset), device=str(device),
                      torch_threads=torch.get_num_threads(), world_size=world_size,
                      torch_version=torch.__version__, rouser_version=rouser_version())
