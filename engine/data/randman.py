"""`randman`: the random-manifold spike-timing benchmark of Zenke & Vogels (2021), shaped like SHD.

Each class is a smooth random manifold of dimension ``manifold_dim`` embedded in the space of
spike times of ``num_units * spikes_per_unit`` (unit, spike) slots. Coordinate j of the
manifold is a product over manifold dimensions of random 1-D functions, each a sum of sines
whose amplitudes fall off as 1 / f**alpha (larger ``alpha`` = smoother = easier). A sample
draws a point uniformly in [0, 1]**manifold_dim; each slot's coordinate, rescaled to [0, 1] per
class, is the time of that spike as a fraction of the window. Every unit fires exactly
``spikes_per_unit`` times per sample; class information lies only in the spike timing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SpikeDataset, SpikeSplit
from .cache import cached_dataset

__all__ = ["DEFAULTS", "random_manifold", "make_randman", "load_randman"]

DEFAULTS = dict(  # SHD-shaped: 700 units, 20 classes; 3,200 train and 800 test samples
    num_classes=20, num_units=700, time_steps=100, manifold_dim=1, alpha=2.0, spikes_per_unit=1,
    train_per_class=160, test_per_class=40, seed=0)


def random_manifold(num_slots: int, manifold_dim: int, alpha: float, rng: np.random.Generator,
                    precision: float = 1e-3, max_frequencies: int = 1000):
    """A function mapping points (n, manifold_dim) in [0, 1] to (n, num_slots) smooth coordinates."""
    frequencies = int(min(np.ceil(precision ** (-1.0 / alpha)), max_frequencies))
    spectrum = 1.0 / np.arange(1, frequencies + 1) ** alpha
    amplitude = rng.random((num_slots, manifold_dim, frequencies)) * spectrum
    scale = rng.random((num_slots, manifold_dim, frequencies))
    phase = rng.random((num_slots, manifold_dim, frequencies))
    harmonic = np.arange(frequencies)

    def embed(points: np.ndarray) -> np.ndarray:
        out = np.ones((len(points), num_slots))
        for d in range(manifold_dim):
            # (points, slots, frequencies): sum_f a * sin(2 pi (f * x * scale + phase))
            angle = 2 * np.pi * (points[:, d, None, None] * harmonic * scale[None, :, d] + phase[None, :, d])
            out *= np.einsum("psf,sf->ps", np.sin(angle), amplitude[:, d])
        return out

    return embed


def make_randman(num_classes: int = 20, num_units: int = 700, time_steps: int = 100, manifold_dim: int = 1,
                 alpha: float = 2.0, spikes_per_unit: int = 1, train_per_class: int = 160, test_per_class: int = 40,
                 seed: int = 0) -> SpikeDataset:
    """Generate the dataset (no cache); harder with larger manifold_dim, smaller alpha, more classes."""
    rng = np.random.default_rng(seed)
    per_class = train_per_class + test_per_class
    slots = num_units * spikes_per_unit
    times, labels = [], []
    for c in range(num_classes):
        coords = random_manifold(slots, manifold_dim, alpha, rng)(rng.random((per_class, manifold_dim)))
        low, high = coords.min(axis=0), coords.max(axis=0)
        fraction = (coords - low) / np.where(high > low, high - low, 1.0)
        times.append(np.minimum((fraction * time_steps).astype(np.int64), time_steps - 1))
        labels.append(np.full(per_class, c))
    times, labels = np.concatenate(times), np.concatenate(labels)
    channel_of_slot = np.repeat(np.arange(num_units), spikes_per_unit)
    order = [rng.permutation(np.flatnonzero(np.arange(len(labels)) % per_class < train_per_class)),
             rng.permutation(np.flatnonzero(np.arange(len(labels)) % per_class >= train_per_class))]
    splits = []
    for idx in order:
        samples = [(times[k], channel_of_slot) for k in idx]
        splits.append(SpikeSplit.from_samples(samples, labels[idx], time_steps, num_units))
    return SpikeDataset("randman", *splits, num_classes, (num_units,), bin_ms=None,
                        class_names=[f"manifold {c}" for c in range(num_classes)])


def load_randman(cache_dir: str | Path | None = None, **settings) -> SpikeDataset:
    """The cached `make_randman` dataset; ``settings`` override `DEFAULTS`."""
    params = {**DEFAULTS, **settings}
    return cached_dataset("randman", params, lambda: make_randman(**params), cache_dir)
