"""`patterns`: a tiny in-memory spike-pattern dataset for unit tests and smoke runs.

Each class is a fixed random spatio-temporal template (every channel fires at a few
class-specific times); a sample is its class template with jittered spike times, some
spikes dropped and some noise spikes added. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

from .base import SpikeDataset, SpikeSplit

__all__ = ["make_patterns"]


def _sample(rng, template_t, template_c, time_steps, num_channels, jitter, drop, noise):
    keep = rng.random(len(template_t)) >= drop
    t = template_t[keep] + rng.integers(-jitter, jitter + 1, keep.sum())
    c = template_c[keep]
    n_noise = rng.poisson(noise * time_steps * num_channels)
    t = np.concatenate([t, rng.integers(0, time_steps, n_noise)])
    c = np.concatenate([c, rng.integers(0, num_channels, n_noise)])
    return t, c


def make_patterns(num_classes: int = 4, num_channels: int = 32, time_steps: int = 40, train_per_class: int = 32,
                  test_per_class: int = 8, spikes_per_channel: int = 2, jitter: int = 1, drop: float = 0.1,
                  noise: float = 0.005, seed: int = 0) -> SpikeDataset:
    """Build the dataset; every argument has a default small enough for unit tests."""
    rng = np.random.default_rng(seed)
    templates = []
    for _ in range(num_classes):
        c = np.repeat(np.arange(num_channels), spikes_per_channel)
        t = rng.integers(0, time_steps, len(c))
        templates.append((t, c))

    def split(per_class):
        samples, labels = [], []
        for k in range(per_class * num_classes):
            label = k % num_classes
            samples.append(_sample(rng, *templates[label], time_steps, num_channels, jitter, drop, noise))
            labels.append(label)
        return SpikeSplit.from_samples(samples, labels, time_steps, num_channels)

    train, test = split(train_per_class), split(test_per_class)
    return SpikeDataset("patterns", train, test, num_classes, (num_channels,), bin_ms=None,
                        class_names=[f"pattern {k}" for k in range(num_classes)])
