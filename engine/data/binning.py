"""Events to binned spikes on a fixed time grid starting at t = 0, straight into sparse form.

Bin k holds events with ``k * bin_us <= t < (k + 1) * bin_us``; events at or past
``time_steps * bin_us`` (or before 0) are dropped, and several events of one channel in one bin
count once. Nothing is ever made dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import SpikeSplit, unique_spikes

__all__ = ["TimeGrid", "bin_events", "pixel_channels"]


@dataclass(frozen=True)
class TimeGrid:
    """``time_steps`` bins of ``bin_ms`` milliseconds from t = 0."""

    time_steps: int
    bin_ms: float

    def __post_init__(self):
        if self.time_steps < 1 or self.bin_ms <= 0:
            raise ValueError(f"need time_steps >= 1 and bin_ms > 0, got {self.time_steps}, {self.bin_ms}")

    @property
    def bin_us(self) -> float:
        return self.bin_ms * 1000.0

    def bin_index(self, t_us: np.ndarray) -> np.ndarray:
        """Bin of each time in microseconds (may fall outside 0..time_steps-1)."""
        t_us = np.asarray(t_us)
        if np.issubdtype(t_us.dtype, np.integer) and float(self.bin_us).is_integer():
            return np.floor_divide(t_us.astype(np.int64), int(self.bin_us))
        return np.floor(t_us.astype(np.float64) / self.bin_us).astype(np.int64)


def pixel_channels(x, y, p, width: int, height: int, downsample: int = 1) -> np.ndarray:
    """Channel of each camera event: ``p * W * H + y * W + x`` on the (optionally downsampled) sensor.

    ``downsample`` merges ``downsample x downsample`` pixel blocks; W and H are the sizes after it.
    """
    w, h = -(-width // downsample), -(-height // downsample)
    xs = np.asarray(x, dtype=np.int64) // downsample
    ys = np.asarray(y, dtype=np.int64) // downsample
    ps = (np.asarray(p) > 0).astype(np.int64)
    return ps * (w * h) + ys * w + xs


def bin_events(sample: np.ndarray, t_us: np.ndarray, channels: np.ndarray, labels, grid: TimeGrid,
               num_channels: int) -> SpikeSplit:
    """A `SpikeSplit` from flat event arrays; ``sample[i]`` says which sample event i belongs to."""
    labels = np.asarray(labels)
    sample = np.asarray(sample, dtype=np.int64)
    channels = np.asarray(channels, dtype=np.int64)
    times = grid.bin_index(t_us)
    keep = (times >= 0) & (times < grid.time_steps) & (channels >= 0) & (channels < num_channels)
    sample, times, channels = unique_spikes(sample[keep], times[keep], channels[keep], num_channels, grid.time_steps)
    offsets = np.searchsorted(sample, np.arange(len(labels) + 1))
    return SpikeSplit(times, channels, offsets, labels, grid.time_steps, num_channels)
