"""Loaders of the real datasets: tonic events binned on a fixed grid from t = 0, cached.

Default binning (all configurable through the loader arguments):

* ``nmnist``: 300 bins x 1 ms, 34x34x2 = 2,312 channels, channel = p * 34 * 34 + y * 34 + x.
* ``dvs128``: 300 bins x 5 ms (the first 1.5 s), 128x128 sensor downsampled by 4 to 32x32x2 =
  2,048 channels, channel = p * 32 * 32 + (y // 4) * 32 + x // 4 (``downsample=1`` keeps 128x128).
* ``shd``: 250 bins x 4 ms (the first 1 s), 700 channels, channel = unit.

p = 1 for ON events. Events past the window are dropped; several in one bin count once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SpikeDataset, SpikeSplit
from .binning import TimeGrid, bin_events, pixel_channels
from .cache import cached_dataset
from .errors import DatasetError
from .paths import resolve_data_root
from .tonic_sources import SOURCES, RealSource, check_source, fingerprint, read_events

__all__ = ["load_nmnist", "load_dvs128", "load_shd", "DVS128_CLASSES", "REAL_DEFAULTS"]

DVS128_CLASSES = ["hand clapping", "right hand wave", "left hand wave", "right arm clockwise",
                  "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise", "arm roll",
                  "air drums", "air guitar", "other gestures"]
# name -> (time_steps, bin_ms) by default
REAL_DEFAULTS = {"nmnist": (300, 1.0), "dvs128": (300, 5.0), "shd": (250, 4.0)}


def _load(source: RealSource, data_root, cache_dir, grid: TimeGrid, extra: dict, channels_of, num_channels: int,
          num_classes: int, input_shape, class_names) -> SpikeDataset:
    root = resolve_data_root(data_root)
    check_source(source, root)
    params = {"time_steps": grid.time_steps, "bin_ms": grid.bin_ms, **extra, "source": fingerprint(source, root)}

    def build() -> SpikeDataset:
        splits = []
        for train in (True, False):
            parts = []
            for events in read_events(source, root, train):
                if not ((events.labels >= 0) & (events.labels < num_classes)).all():
                    raise DatasetError(f"{source.title} labels outside 0..{num_classes - 1} in "
                                       f"{source.folder(root)}; {source.hint(root)}")
                parts.append(bin_events(events.sample, events.t_us, channels_of(events), events.labels, grid,
                                        num_channels))
            empty = SpikeSplit(np.zeros(0), np.zeros(0), [0], np.zeros(0), grid.time_steps, num_channels)
            splits.append(SpikeSplit.concatenate(parts) if parts else empty)
        return SpikeDataset(source.name, *splits, num_classes, input_shape, bin_ms=grid.bin_ms,
                            class_names=class_names)

    return cached_dataset(source.name, params, build, cache_dir)


def load_nmnist(data_root: str | Path | None = None, cache_dir: str | Path | None = None, time_steps: int = 300,
                bin_ms: float = 1.0) -> SpikeDataset:
    """N-MNIST from ``<data root>/NMNIST`` (60,000 / 10,000 samples)."""
    return _load(SOURCES["nmnist"], data_root, cache_dir, TimeGrid(time_steps, bin_ms), {},
                 lambda e: pixel_channels(e.x, e.y, e.p, 34, 34), 2 * 34 * 34, 10, (34, 34, 2),
                 [str(d) for d in range(10)])


def load_dvs128(data_root: str | Path | None = None, cache_dir: str | Path | None = None, time_steps: int = 300,
                bin_ms: float = 5.0, downsample: int = 4) -> SpikeDataset:
    """DVS128 Gesture from ``<data root>/DVSGesture`` (tonic's preprocessed files, 11 classes)."""
    side = -(-128 // downsample)
    return _load(SOURCES["dvs128"], data_root, cache_dir, TimeGrid(time_steps, bin_ms), {"downsample": downsample},
                 lambda e: pixel_channels(e.x, e.y, e.p, 128, 128, downsample), 2 * side * side, 11,
                 (side, side, 2), list(DVS128_CLASSES))


def load_shd(data_root: str | Path | None = None, cache_dir: str | Path | None = None, time_steps: int = 250,
             bin_ms: float = 4.0) -> SpikeDataset:
    """Spiking Heidelberg Digits from ``<data root>/SHD`` (8,156 / 2,264 samples, 20 classes)."""
    return _load(SOURCES["shd"], data_root, cache_dir, TimeGrid(time_steps, bin_ms), {},
                 lambda e: np.asarray(e.x, np.int64), 700, 20, (700,), _shd_classes())


def _shd_classes() -> list[str]:
    english = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    german = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
    return [f"{w} (en)" for w in english] + [f"{w} (de)" for w in german]
