"""`gestures-sim`: 11 classes of moving "hands" seen by the simulated event camera, shaped like
DVS128 Gesture downsampled to 32x32x2 (channel = p * 32 * 32 + y * 32 + x, p = 1 for ON).

A hand is a bright Gaussian blob on a dark background following a class-specific path
(circles, swipes, diagonals, waves, a clap of two blobs). Every sample draws its own centre,
size, amplitude, speed, phase and brightness; the camera of `camera.py` records 300 steps of
5 ms (1.5 s), binned one step per bin like the `dvs128` default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SpikeDataset
from .binning import TimeGrid
from .cache import cached_dataset
from .camera import EventCamera

__all__ = ["GESTURE_CLASSES", "GESTURES_SIM_CAMERA", "gesture_paths", "make_gestures_sim", "load_gestures_sim"]

SIZE = 32
STEPS, BIN_MS = 300, 5.0
GESTURES_SIM_CAMERA = EventCamera(threshold=0.25, threshold_spread=0.03, refractory_steps=0, noise_rate=5e-4)
GESTURE_CLASSES = [
    "circle clockwise", "circle anticlockwise", "swipe right", "swipe left", "swipe up", "swipe down",
    "diagonal down-right", "diagonal up-right", "wave side to side", "wave up and down", "clap",
]


def _sawtooth(u):
    return 2.0 * (u % 1.0) - 1.0


def _fade(u):
    """Visibility of a swipe: fades in at the start and out at the end of each stroke."""
    return np.clip(3.0 * np.sin(np.pi * (u % 1.0)), 0.0, 1.0)


def gesture_paths(label: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-scale paths of two blobs: x, y in [-1, 1] and visibility in [0, 1], each (samples, 2, steps).

    ``u`` (samples, steps) is the phase in cycles; blob 2 is only visible in the clap.
    """
    zero, one = np.zeros_like(u), np.ones_like(u)
    turn = 2 * np.pi * u
    saw, fade = _sawtooth(u), _fade(u)
    apart = 0.25 + 0.6 * (1 + np.cos(turn)) / 2
    table = [  # (x, y, visibility) of blob 1, then x of blob 2 (clap only)
        (np.cos(turn), np.sin(turn), one), (np.cos(turn), -np.sin(turn), one),
        (saw, zero, fade), (-saw, zero, fade), (zero, -saw, fade), (zero, saw, fade),
        (saw, saw, fade), (saw, -saw, fade),
        (np.sin(turn), zero, one), (zero, np.sin(turn), one), (-apart, zero, one),
    ]
    stacked = np.stack([np.stack(row) for row in table])  # (classes, 3, samples, steps)
    rows = stacked[label, :, np.arange(len(label))]  # (samples, 3, steps)
    x = np.stack([rows[:, 0], np.where(label[:, None] == 10, apart, 0.0)], axis=1)
    y = np.stack([rows[:, 1], zero], axis=1)
    visible = np.stack([rows[:, 2], (label[:, None] == 10) * one], axis=1)
    return x, y, visible


def _renderer(labels: np.ndarray, rng: np.random.Generator):
    """render(lo, hi, step) drawing each sample's blobs at that step."""
    n = len(labels)
    t = np.arange(STEPS) * BIN_MS / 1000.0
    period = rng.uniform(0.5, 0.9, n)
    u = t[None, :] / period[:, None] + rng.uniform(0, 1, n)[:, None]
    x, y, visible = gesture_paths(labels, u)
    amplitude = rng.uniform(6.5, 10.0, n)[:, None, None]
    centre = SIZE / 2 - 0.5 + rng.uniform(-2.5, 2.5, (n, 2))
    px = (centre[:, 0, None, None] + amplitude * x).astype(np.float32)
    py = (centre[:, 1, None, None] + amplitude * y).astype(np.float32)
    brightness = (rng.uniform(0.6, 1.0, n)[:, None, None] * visible).astype(np.float32)
    inv_width = (1.0 / (2 * rng.uniform(1.8, 2.8, n) ** 2)).astype(np.float32)[:, None, None]
    grid = np.arange(SIZE, dtype=np.float32)

    def render(lo, hi, step):
        w = inv_width[lo:hi]
        gx = np.exp(-w * (grid - px[lo:hi, :, step, None]) ** 2) * brightness[lo:hi, :, step, None]
        gy = np.exp(-w * (grid - py[lo:hi, :, step, None]) ** 2)
        frame = np.einsum("nky,nkx->nyx", gy, gx) + np.float32(0.02)
        return frame.reshape(hi - lo, SIZE * SIZE)

    return render


def make_gestures_sim(train_per_class: int = 100, test_per_class: int = 25, seed: int = 0,
                      camera: EventCamera = GESTURES_SIM_CAMERA) -> SpikeDataset:
    """Generate the dataset (no cache): labels interleaved, one random scene per sample."""
    rng = np.random.default_rng(seed)
    grid, classes = TimeGrid(STEPS, BIN_MS), len(GESTURE_CLASSES)
    splits = []
    for per_class in (train_per_class, test_per_class):
        labels = rng.permutation(np.repeat(np.arange(classes), per_class))
        splits.append(camera.record_binned(_renderer(labels, rng), labels, SIZE, SIZE, grid, rng))
    return SpikeDataset("gestures-sim", *splits, classes, (SIZE, SIZE, 2), bin_ms=BIN_MS,
                        class_names=list(GESTURE_CLASSES))


def load_gestures_sim(cache_dir: str | Path | None = None, seed: int = 0) -> SpikeDataset:
    """The cached `make_gestures_sim` dataset (generated on first use, a few seconds)."""
    params = {"seed": seed, "camera": repr(GESTURES_SIM_CAMERA), "steps": STEPS, "bin_ms": BIN_MS}
    return cached_dataset("gestures-sim", params, lambda: make_gestures_sim(seed=seed), cache_dir)
