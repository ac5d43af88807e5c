"""Real dataset formats (N-MNIST .bin, DVS Gesture .npy, SHD .h5): tiny files written here, read through
tonic and our binning, checked against spikes worked out by hand; missing/corrupt files; no downloads."""

from __future__ import annotations

import urllib.request

import h5py
import numpy as np
import pytest
import tonic.dataset
import tonic.download_utils

from engine.data import DatasetError, list_datasets, load_dataset
from engine.data import real, tonic_sources


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Any download attempt fails the test; caches go to tmp."""
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("ROUSER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ROUSER_DATA", raising=False)


def spikes(split, k):
    t, c = split.sample(k)
    return sorted(zip(t.tolist(), c.tolist()))


# ---------------------------------------------------------------- N-MNIST

def nmnist_bytes(events) -> bytes:
    """N-MNIST's 5-byte events: x, y, then p in bit 7 and 23 bits of t (us), big-endian."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def write_nmnist(root):
    files = {
        ("Train", 3, "00001.bin"): [(0, 0, 0, 0), (5, 2, 1, 999), (5, 2, 1, 1000), (5, 2, 1, 1500),
                                    (33, 33, 1, 299_999), (1, 1, 0, 300_000)],
        ("Train", 7, "00002.bin"): [(10, 20, 0, 150_250)],
        ("Test", 0, "00003.bin"): [(2, 1, 1, 42_000), (2, 1, 0, 42_001)],
    }
    for (split, digit, name), events in files.items():
        folder = root / "NMNIST" / split / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(nmnist_bytes(events))


def test_nmnist_bins_exactly(tmp_path):
    write_nmnist(tmp_path)
    data = load_dataset("nmnist", data_root=tmp_path)
    assert data.input_shape == (34, 34, 2) and data.num_channels == 2312 and data.time_steps == 300
    assert data.train.labels.tolist() == [3, 7] and data.test.labels.tolist() == [0]
    on = 34 * 34  # channel = p * 34 * 34 + y * 34 + x
    # t=999 and t=1000 straddle the first bin edge; t=1500 duplicates bin 1; t=300000 is past the window
    assert spikes(data.train, 0) == [(0, 0), (0, on + 2 * 34 + 5), (1, on + 2 * 34 + 5), (299, on + 33 * 34 + 33)]
    assert spikes(data.train, 1) == [(150, 20 * 34 + 10)]
    assert spikes(data.test, 0) == [(42, 1 * 34 + 2), (42, on + 1 * 34 + 2)]


def test_nmnist_events_arrive_in_chunks(tmp_path, monkeypatch):
    write_nmnist(tmp_path)
    chunks = list(tonic_sources.read_events(tonic_sources.SOURCES["nmnist"], tmp_path, True, chunk=1))
    assert [c.labels.tolist() for c in chunks] == [[3], [7]] and chunks[1].sample.tolist() == [0]
    assert chunks[0].t_us.tolist() == [0, 999, 1000, 1500, 299_999, 300_000]
    whole = load_dataset("nmnist", data_root=tmp_path).train
    monkeypatch.setattr(real, "read_events", lambda *a: tonic_sources.read_events(*a, chunk=1))
    chunked = real.load_nmnist(tmp_path, cache_dir=tmp_path / "other-cache").train
    assert np.array_equal(whole.offsets, chunked.offsets) and np.array_equal(whole.channels, chunked.channels)


def test_nmnist_custom_grid_and_rebin(tmp_path):
    write_nmnist(tmp_path)
    data = real.load_nmnist(tmp_path, time_steps=100, bin_ms=2.0)
    assert spikes(data.train, 0) == [(0, 0), (0, 1156 + 73)]  # 200 ms window: the 299.999 ms event is dropped
    coarse = load_dataset("nmnist", data_root=tmp_path, time_steps=150)
    assert spikes(coarse.train, 0) == [(0, 0), (0, 1156 + 73), (149, 2311)]


def test_nmnist_second_load_uses_cache(tmp_path, monkeypatch):
    write_nmnist(tmp_path)
    first = load_dataset("nmnist", data_root=tmp_path)
    monkeypatch.setattr(real, "read_events", lambda *a, **k: pytest.fail("events re-read"))
    second = load_dataset("nmnist", data_root=tmp_path)
    assert np.array_equal(first.train.channels, second.train.channels)
    (tmp_path / "NMNIST" / "Test" / "0" / "00004.bin").write_bytes(nmnist_bytes([(1, 1, 1, 10)]))
    with pytest.raises(pytest.fail.Exception):  # the source changed: the cache key changes
        load_dataset("nmnist", data_root=tmp_path)


def test_nmnist_corrupt_file_is_named(tmp_path):
    write_nmnist(tmp_path)
    bad = tmp_path / "NMNIST" / "Train" / "7" / "00002.bin"
    bad.write_bytes(bad.read_bytes()[:3])
    with pytest.raises(DatasetError) as err:
        load_dataset("nmnist", data_root=tmp_path)
    message = str(err.value)
    assert str(bad) in message and "\n" not in message and "corrupt" in message


# ---------------------------------------------------------------- DVS128 Gesture

def write_dvs(root, dtype=np.int64):
    files = {
        ("ibmGestureTrain", "user01_fluorescent", 0): [(127, 0, 1, 0), (4, 9, 0, 4), (6, 11, 0, 5), (5, 10, 0, 7),
                                                       (0, 127, 1, 1499), (3, 3, 1, 1500)],
        ("ibmGestureTrain", "user01_fluorescent", 4): [(64, 64, 1, 750)],
        ("ibmGestureTest", "user24_led", 10): [(8, 0, 0, 12)],
    }
    for (split, user, label), events in files.items():
        folder = root / "DVSGesture" / split / user
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{label}.npy", np.array(events, dtype=dtype))  # columns x, y, p, t (ms)


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_dvs128_bins_exactly(tmp_path, dtype):
    write_dvs(tmp_path, dtype)
    data = load_dataset("dvs128", data_root=tmp_path)
    assert data.input_shape == (32, 32, 2) and data.num_channels == 2048 and data.bin_ms == 5.0
    by_label = {int(data.train.labels[k]): spikes(data.train, k) for k in range(len(data.train))}
    on = 32 * 32  # channel = p * 32 * 32 + (y // 4) * 32 + x // 4, 5 ms bins
    assert by_label[0] == [(0, 2 * 32 + 1), (0, on + 31), (1, 2 * 32 + 1), (299, on + 31 * 32)]
    assert by_label[4] == [(150, on + 16 * 32 + 16)]
    assert data.test.labels.tolist() == [10] and spikes(data.test, 0) == [(2, 2)]


def test_dvs128_full_resolution(tmp_path):
    write_dvs(tmp_path)
    data = real.load_dvs128(tmp_path, downsample=1)
    assert data.num_channels == 2 * 128 * 128 and data.input_shape == (128, 128, 2)
    assert spikes(data.test, 0) == [(2, 8)]


def test_dvs128_corrupt_file_is_named(tmp_path):
    write_dvs(tmp_path)
    bad = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led" / "10.npy"
    bad.write_bytes(bad.read_bytes()[:70])
    with pytest.raises(DatasetError) as err:
        load_dataset("dvs128", data_root=tmp_path)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- SHD

def write_shd(path, samples, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float16))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for k, (t, u) in enumerate(samples):
            times[k] = np.array(t, dtype=np.float16)
            units[k] = np.array(u, dtype=np.uint16)
        f["labels"] = np.array(labels, dtype=np.uint16)
        f["extra/keys"] = np.array([b"zero", b"one"])
        f["extra/speaker"] = np.zeros(len(samples), dtype=np.uint16)


def write_shd_pair(root):
    # float16-exact times in s: 2**-8 s = 3906.25 us (bin 0 of 4 ms), 2**-7 s = 7812.5 us (bin 1),
    # 1 - 2**-11 s = 999511.7 us (bin 249), 1.0 s is past the 1 s window
    train = [([0.0, 2 ** -8, 2 ** -7, 0.5, 1 - 2 ** -11, 1.0], [5, 5, 5, 699, 0, 3]), ([0.25], [10])]
    write_shd(root / "SHD" / "shd_train.h5", train, [19, 2])
    write_shd(root / "SHD" / "shd_test.h5", [([0.1], [1])], [11])


def test_shd_bins_exactly(tmp_path):
    write_shd_pair(tmp_path)
    data = load_dataset("shd", data_root=tmp_path)
    assert data.num_channels == 700 and data.time_steps == 250 and data.num_classes == 20
    assert data.train.labels.tolist() == [19, 2]
    assert spikes(data.train, 0) == [(0, 5), (1, 5), (125, 699), (249, 0)]
    assert spikes(data.train, 1) == [(62, 10)]
    t01 = float(np.float16(0.1)) * 1e6  # 99975.6 us
    assert spikes(data.test, 0) == [(int(t01 // 4000), 1)]


def test_shd_corrupt_file_is_named(tmp_path):
    write_shd_pair(tmp_path)
    bad = tmp_path / "SHD" / "shd_test.h5"
    bad.write_bytes(bad.read_bytes()[:500])
    with pytest.raises(DatasetError) as err:
        load_dataset("shd", data_root=tmp_path)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- missing data, listing, data root

@pytest.mark.parametrize("name, folder, expected", [
    ("nmnist", "NMNIST", "Train"), ("dvs128", "DVSGesture", "ibmGestureTrain"), ("shd", "SHD", "shd_train.h5")])
def test_missing_dataset_message(tmp_path, name, folder, expected):
    with pytest.raises(DatasetError) as err:
        load_dataset(name, data_root=tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / folder) in message and expected in message
    assert "http" in message


def test_half_present_dataset_is_missing(tmp_path):
    write_shd(tmp_path / "SHD" / "shd_train.h5", [([0.1], [1])], [0])
    with pytest.raises(DatasetError, match="shd_test.h5"):
        load_dataset("shd", data_root=tmp_path)


def test_tonic_download_is_refused(tmp_path):
    write_nmnist(tmp_path)
    dataset = tonic_sources.offline_tonic_dataset(tonic_sources.SOURCES["nmnist"], tmp_path, True)
    assert len(dataset) == 2
    with pytest.raises(DatasetError):
        dataset.download()


def test_data_root_from_environment(tmp_path, monkeypatch):
    write_shd_pair(tmp_path)
    monkeypatch.setenv("ROUSER_DATA", str(tmp_path))
    assert len(load_dataset("shd").train) == 2


def test_listing_counts_found_and_missing(tmp_path):
    write_nmnist(tmp_path)
    write_shd_pair(tmp_path)
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    assert rows["nmnist"]["status"] == "found" and (rows["nmnist"]["train"], rows["nmnist"]["test"]) == (2, 1)
    assert rows["shd"]["status"] == "found" and (rows["shd"]["train"], rows["shd"]["test"]) == (2, 1)
    assert rows["dvs128"]["status"] == "missing" and rows["dvs128"]["train"] is None
    assert "ibmGestureTrain" in rows["dvs128"]["hint"] and rows["dvs128"]["path"] == str(tmp_path / "DVSGesture")
