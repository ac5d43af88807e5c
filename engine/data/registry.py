"""Every dataset name the project knows, and one `load_dataset` to get any of them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import RouserError
from .base import SpikeDataset
from .patterns import make_patterns

__all__ = ["DATASETS", "DatasetError", "dataset_names", "load_dataset"]


class DatasetError(RouserError):
    """A dataset cannot be used: the message says what is missing or broken and how to fix it."""


def _patterns(data_root: Path | None, cache_dir: Path | None) -> SpikeDataset:
    return make_patterns()


# name -> loader(data_root, cache_dir) returning the dataset at its native time resolution
DATASETS: dict[str, Callable[[Path | None, Path | None], SpikeDataset]] = {
    "patterns": _patterns,
}


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
