"""The real datasets (N-MNIST, DVS128 Gesture, SHD) read through tonic 1.7, strictly offline.

Files live where tonic puts them under the data root::

    NMNIST/Train/<digit>/*.bin, NMNIST/Test/<digit>/*.bin
    DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy, DVSGesture/ibmGestureTest/...
    SHD/shd_train.h5, SHD/shd_test.h5

tonic downloads whenever its own existence check fails and has no switch to turn that off, so
we check the files ourselves, hand tonic a subclass whose existence check passes and whose
``download`` raises `DatasetError`, and turn every read failure into a `DatasetError` naming
the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import DatasetError, one_line

__all__ = ["RealSource", "SOURCES", "EventArrays", "source_files", "check_source", "count_samples",
           "fingerprint", "offline_tonic_dataset", "read_events"]


@dataclass(frozen=True)
class RealSource:
    """Where one real dataset's files sit under the data root and where to get them."""

    name: str
    title: str
    tonic_class: str  # tonic reads <data root>/<tonic_class>/...
    split_folders: tuple[str, str]  # train, test: sub-folder (or file) names inside the tonic folder
    pattern: str  # glob of the files inside each split folder
    url: str
    layout: str

    def folder(self, root: Path) -> Path:
        return Path(root) / self.tonic_class

    def hint(self, root: Path) -> str:
        return f"place {self.layout} in {self.folder(root)}; get them from {self.url}"


SOURCES = {
    "nmnist": RealSource("nmnist", "N-MNIST", "NMNIST", ("Train", "Test"), "[0-9]/*.bin",
                         "https://www.garrickorchard.com/datasets/n-mnist",
                         "the extracted Train/ and Test/ folders (digit folders 0-9 of .bin files)"),
    "dvs128": RealSource("dvs128", "DVS128 Gesture", "DVSGesture", ("ibmGestureTrain", "ibmGestureTest"),
                         "user*_*/*.npy", "tonic's preprocessed ibmGestureTrain.tar.gz and ibmGestureTest.tar.gz at "
                         "https://figshare.com/ndownloader/files/38022171 and https://figshare.com/ndownloader/files/38020584",
                         "the extracted ibmGestureTrain/ and ibmGestureTest/ folders (user*_<lighting>/<label>.npy)"),
    "shd": RealSource("shd", "SHD", "SHD", ("shd_train.h5", "shd_test.h5"), "",
                      "https://zenkelab.org/datasets/ (shd_train.h5.zip and shd_test.h5.zip, unzipped)",
                      "shd_train.h5 and shd_test.h5"),
}


@dataclass
class EventArrays:
    """Events of all samples of a split, flat: event i belongs to sample[i]; t in microseconds."""

    sample: np.ndarray
    t_us: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    labels: np.ndarray


def source_files(source: RealSource, root: Path, train: bool) -> list[Path]:
    """The data files of one split (sorted); empty when absent."""
    target = source.folder(root) / source.split_folders[0 if train else 1]
    if not source.pattern:
        return [target] if target.is_file() else []
    return sorted(target.glob(source.pattern)) if target.is_dir() else []


def check_source(source: RealSource, root: Path) -> None:
    """Raise `DatasetError` (one line, naming folder, files and source) unless both splits are there."""
    missing = [split for split, train in zip(source.split_folders, (True, False)) if not source_files(source, root, train)]
    if missing:
        raise DatasetError(f"{source.title} not found: {', '.join(missing)} missing in {source.folder(root)}; "
                           f"{source.hint(root)}; or point --data-root / ROUSER_DATA at the folder holding "
                           f"{source.tonic_class}/")


def count_samples(source: RealSource, root: Path, train: bool) -> int:
    """Number of samples of a split, without reading events."""
    files = source_files(source, root, train)
    if source.name != "shd":
        return len(files)
    import h5py

    try:
        with h5py.File(files[0], "r") as f:
            return len(f["labels"])
    except (OSError, KeyError) as err:
        raise _corrupt(source, files[0], err) from None


def fingerprint(source: RealSource, root: Path) -> dict:
    """Count, total size and newest modification time of the files: changes whenever the data does."""
    files = source_files(source, root, True) + source_files(source, root, False)
    stats = [os.stat(f) for f in files]
    return {"files": len(files), "bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0), "root": str(Path(root).resolve())}


def _corrupt(source: RealSource, path, err: BaseException) -> DatasetError:
    return DatasetError(one_line(f"{source.title} file {path} cannot be read ({type(err).__name__}: {err}); "
                                 f"it looks truncated or corrupt: replace it with a fresh copy from {source.url}"))


def offline_tonic_dataset(source: RealSource, root: Path, train: bool):
    """The tonic dataset object of one split, built so that it can never download."""
    import tonic

    base = getattr(tonic.datasets, source.tonic_class)

    def refuse_download(self):
        raise DatasetError(f"{source.title} files are incomplete in {source.folder(root)}; {source.hint(root)}")

    # same class name: tonic looks under <save_to>/<class name>/
    offline = type(source.tonic_class, (base,), {"_check_exists": lambda self: True, "download": refuse_download})
    check_source(source, root)
    if source.name == "shd":
        _check_shd_file(source, source_files(source, root, train)[0])
    try:
        return offline(str(root), train=train)
    except DatasetError:
        raise
    except Exception as err:  # tonic's folder walk or file opening failed on an odd file
        raise DatasetError(one_line(f"{source.title} files in {source.folder(root)} are not in the expected layout "
                                    f"({type(err).__name__}: {err}); {source.hint(root)}")) from None


def _check_shd_file(source: RealSource, path: Path) -> None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker"):
                f[key]
            if len(f["spikes/times"]) != len(f["labels"]) or len(f["spikes/units"]) != len(f["labels"]):
                raise ValueError("spikes/times, spikes/units and labels differ in length")
    except (OSError, KeyError, ValueError) as err:
        raise _corrupt(source, path, err) from None


def _check_nmnist_file(source: RealSource, path: str) -> None:
    size = os.path.getsize(path)
    if size % 5:
        raise _corrupt(source, path, ValueError(f"{size} bytes is not a whole number of 5-byte events"))


def read_events(source: RealSource, root: Path, train: bool, chunk: int = 2000) -> Iterator[EventArrays]:
    """All events of one split through tonic, ``chunk`` samples at a time, as flat arrays (t in microseconds;
    samples numbered from 0 within each chunk) so that a large split never sits in memory as raw events."""
    dataset = offline_tonic_dataset(source, root, train)
    for lo in range(0, len(dataset), chunk):
        parts, labels = [], []
        for index in range(lo, min(lo + chunk, len(dataset))):
            path = dataset.data[index] if source.name != "shd" else source_files(source, root, train)[0]
            if source.name == "nmnist":
                _check_nmnist_file(source, path)
            try:
                events, label = dataset[index]
                parts.append(_fields(source, events))
            except DatasetError:
                raise
            except Exception as err:
                raise _corrupt(source, path, err) from None
            labels.append(int(label))
        columns = [np.concatenate([f[k] for f in parts]) for k in range(4)]
        sample = np.repeat(np.arange(len(parts)), [len(f[0]) for f in parts])
        yield EventArrays(sample, *columns, np.asarray(labels, dtype=np.int64))


def _fields(source: RealSource, events: np.ndarray):
    """(t_us, x, y, p) of one sample's structured tonic events; SHD units become x."""
    t = np.asarray(events["t"], dtype=np.int64)
    if source.name == "shd":
        return t, np.asarray(events["x"], np.int64), np.zeros_like(t), np.zeros_like(t)
    return t, np.asarray(events["x"], np.int64), np.asarray(events["y"], np.int64), np.asarray(events["p"], np.int64)


