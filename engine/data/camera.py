"""A simulated event camera (DVS/ATIS-like), vectorised over many recordings at once.

Each pixel compares its log intensity with the level at its last event; when the difference
reaches the pixel's contrast threshold it emits an ON (brighter) or OFF (darker) event and
takes the current level as its new reference. After an event the pixel is blind for
``refractory_steps`` steps. Thresholds vary a little from pixel to pixel, and a few
background noise events of random polarity are added. Time is discrete: at most one event
per pixel per step, which matches binned spikes with one step per bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .base import SpikeSplit
from .binning import TimeGrid, bin_events, pixel_channels

__all__ = ["EventCamera", "CameraEvents"]


@dataclass
class CameraEvents:
    """Events of many recordings as flat arrays: event i is in recording sample[i] at step[i]."""

    sample: np.ndarray
    step: np.ndarray
    pixel: np.ndarray
    polarity: np.ndarray  # 1 = ON, 0 = OFF

    def __len__(self) -> int:
        return len(self.sample)


@dataclass(frozen=True)
class EventCamera:
    """Sensor settings; `record` turns rendered intensity frames into events."""

    threshold: float = 0.25  # contrast threshold, in natural-log intensity units
    threshold_spread: float = 0.03  # pixel-to-pixel standard deviation of the threshold
    refractory_steps: int = 0  # steps a pixel stays silent after an event
    noise_rate: float = 2e-4  # background events per pixel per step
    log_eps: float = 0.05  # intensity offset inside the log (dark level)

    def record(self, render: Callable[[int, int, int], np.ndarray], num_samples: int, num_pixels: int,
               num_steps: int, rng: np.random.Generator, chunk: int = 250) -> Iterator[tuple[int, int, CameraEvents]]:
        """Record ``num_samples`` scenes of ``num_steps`` steps, ``chunk`` scenes at a time.

        ``render(lo, hi, step)`` returns the linear intensities (>= 0) of scenes lo..hi-1 at
        ``step`` as an array of shape (hi - lo, num_pixels). Yields (lo, hi, events of scenes
        lo..hi-1, numbered from 0 within the chunk).
        """
        thresholds = np.maximum(
            self.threshold + self.threshold_spread * rng.standard_normal(num_pixels), 0.2 * self.threshold
        ).astype(np.float32)
        for lo in range(0, num_samples, chunk):
            hi = min(lo + chunk, num_samples)
            signal = self._record_chunk(render, lo, hi, num_steps, thresholds)
            noise = self._noise(hi - lo, num_pixels, num_steps, rng)
            yield lo, hi, CameraEvents(*(np.concatenate([a, b]) for a, b in zip(signal, noise)))

    def record_binned(self, render, labels, width: int, height: int, grid: TimeGrid,
                      rng: np.random.Generator) -> SpikeSplit:
        """One scene per label, one camera step per bin of ``grid``, as a `SpikeSplit` of 2 * W * H channels.

        ``render`` draws frames of W x H pixels (pixel = y * W + x); channel = p * W * H + y * W + x.
        """
        labels = np.asarray(labels)
        splits = []
        for lo, hi, events in self.record(render, len(labels), width * height, grid.time_steps, rng):
            channels = pixel_channels(events.pixel % width, events.pixel // width, events.polarity, width, height)
            splits.append(bin_events(events.sample, events.step * grid.bin_us, channels, labels[lo:hi], grid,
                                     2 * width * height))
        return SpikeSplit.concatenate(splits)

    def _log_frame(self, render, lo, hi, step) -> np.ndarray:
        frame = np.asarray(render(lo, hi, step), dtype=np.float32) + np.float32(self.log_eps)  # a new array
        return np.log(frame, out=frame)

    def _record_chunk(self, render, lo, hi, num_steps, thresholds):
        reference = self._log_frame(render, lo, hi, 0)
        last_event = np.full(reference.shape, -(self.refractory_steps + 1), dtype=np.int32)
        diff = np.empty_like(reference)
        on, off = np.empty(reference.shape, bool), np.empty(reference.shape, bool)
        out = [tuple(np.zeros(0, np.int64) for _ in range(4))]
        for step in range(1, num_steps):
            level = self._log_frame(render, lo, hi, step)
            np.subtract(level, reference, out=diff)
            np.greater_equal(diff, thresholds, out=on)
            np.less_equal(diff, -thresholds, out=off)
            fired = on | off
            if self.refractory_steps > 0:
                fired &= last_event < step - self.refractory_steps
                last_event[fired] = step
            flat = np.flatnonzero(fired)
            if len(flat) == 0:
                continue
            reference.flat[flat] = level.flat[flat]
            rows, pixels = np.divmod(flat, reference.shape[1])
            out.append((rows, np.full(len(flat), step), pixels, on.flat[flat]))
        return tuple(np.concatenate([o[k] for o in out]).astype(np.int64) for k in range(4))

    def _noise(self, num_samples, num_pixels, num_steps, rng):
        count = rng.poisson(self.noise_rate * num_samples * num_pixels * num_steps)
        return (rng.integers(0, num_samples, count), rng.integers(0, num_steps, count),
                rng.integers(0, num_pixels, count), rng.integers(0, 2, count))
