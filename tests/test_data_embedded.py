"""Embedded datasets (nmnist-sim, gestures-sim, randman), the camera model, the cache, listing and bench."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import DATASETS, DatasetError, format_datasets, list_datasets, load_dataset
from engine.data import gestures_sim, nmnist_sim, randman
from engine.data.bench import data_throughput
from engine.data.binning import TimeGrid
from engine.data.camera import EventCamera


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def nmnist(cache_dir):
    return load_dataset("nmnist-sim", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def gestures(cache_dir):
    return load_dataset("gestures-sim", cache_dir=cache_dir)


@pytest.fixture(autouse=True)
def no_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUSER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ROUSER_DATA", str(tmp_path / "data"))


def nearest_centroid_accuracy(data, time_parts: int) -> float:
    """Test accuracy of a nearest-centroid classifier on spike counts per channel and time part."""
    def features(split):
        sample = np.repeat(np.arange(len(split)), np.diff(split.offsets))
        out = np.zeros((len(split), split.num_channels * time_parts))
        np.add.at(out, (sample, split.times * time_parts // split.time_steps * split.num_channels + split.channels), 1)
        return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)

    train, test = features(data.train), features(data.test)
    centroids = np.stack([train[data.train.labels == c].mean(0) for c in range(data.num_classes)])
    return float((np.argmax(test @ centroids.T, axis=1) == data.test.labels).mean())


# ---------------------------------------------------------------- camera

def test_camera_on_off_and_refractory():
    levels = np.ones(10, np.float32)
    levels[3:] = 3.0  # brighter at step 3 -> ON
    levels[7:] = 0.5  # darker at step 7 -> OFF
    render = lambda lo, hi, step: np.full((hi - lo, 1), levels[step])  # noqa: E731
    camera = EventCamera(threshold=0.3, threshold_spread=0.0, noise_rate=0.0)
    [(lo, hi, events)] = list(camera.record(render, 2, 1, 10, np.random.default_rng(0)))
    assert (lo, hi) == (0, 2)
    assert sorted(zip(events.sample.tolist(), events.step.tolist(), events.polarity.tolist())) == \
        [(0, 3, 1), (0, 7, 0), (1, 3, 1), (1, 7, 0)]
    ramp = lambda lo, hi, step: np.full((hi - lo, 1), np.exp(0.5 * step), np.float32)  # noqa: E731
    every = EventCamera(threshold=0.3, threshold_spread=0.0, noise_rate=0.0)
    blind = EventCamera(threshold=0.3, threshold_spread=0.0, noise_rate=0.0, refractory_steps=2)
    counts = [len(next(cam.record(ramp, 1, 1, 10, np.random.default_rng(0)))[2]) for cam in (every, blind)]
    assert counts == [9, 3]


def test_camera_binned_channels():
    frame = np.zeros((1, 6), np.float32)
    frame[0, 4] = 1.0  # pixel (x=1, y=1) of a 3x2 sensor lights up at step 2
    render = lambda lo, hi, step: frame if step >= 2 else np.zeros_like(frame)  # noqa: E731
    camera = EventCamera(threshold_spread=0.0, noise_rate=0.0)
    split = camera.record_binned(render, [5], 3, 2, TimeGrid(4, 1.0), np.random.default_rng(0))
    assert split.sample(0)[0].tolist() == [2] and split.sample(0)[1].tolist() == [6 + 4]
    assert split.num_channels == 12 and split.labels.tolist() == [5]


# ---------------------------------------------------------------- nmnist-sim

def test_nmnist_sim_shape_and_split(nmnist):
    assert (len(nmnist.train), len(nmnist.test)) == (4000, 1000)
    assert nmnist.input_shape == (34, 34, 2) and nmnist.num_channels == 2312
    assert nmnist.time_steps == 300 and nmnist.bin_ms == 1.0 and nmnist.num_classes == 10
    assert np.bincount(nmnist.train.labels).tolist() == [400] * 10
    assert np.bincount(nmnist.test.labels).tolist() == [100] * 10


def test_nmnist_sim_events_look_like_nmnist(nmnist):
    split = nmnist.train
    assert 0.005 < split.density() < 0.03
    counts = np.diff(split.offsets)
    assert counts.min() > 500
    on_share = (split.channels >= 34 * 34).mean()
    assert 0.3 < on_share < 0.7
    per_saccade = np.bincount(split.times // 100, minlength=3)
    assert per_saccade.min() > 0.5 * per_saccade.max()  # all three saccades produce events


def test_nmnist_sim_is_learnable(nmnist):
    assert nearest_centroid_accuracy(nmnist, 1) > 0.4


def test_nmnist_sim_is_deterministic():
    a = nmnist_sim.make_nmnist_sim(limit=40, test_per_class=4)
    b = nmnist_sim.make_nmnist_sim(limit=40, test_per_class=4)
    for x, y in ((a.train, b.train), (a.test, b.test)):
        assert np.array_equal(x.times, y.times) and np.array_equal(x.channels, y.channels)
        assert np.array_equal(x.offsets, y.offsets) and np.array_equal(x.labels, y.labels)
    c = nmnist_sim.make_nmnist_sim(seed=1, limit=40, test_per_class=4)
    assert not np.array_equal(a.train.times, c.train.times)


def test_nmnist_sim_second_load_uses_cache(nmnist, cache_dir, monkeypatch):
    monkeypatch.setattr(nmnist_sim, "make_nmnist_sim", lambda *a, **k: pytest.fail("regenerated"))
    again = load_dataset("nmnist-sim", cache_dir=cache_dir)
    assert np.array_equal(again.train.channels, nmnist.train.channels)
    assert again.class_names == nmnist.class_names and again.input_shape == nmnist.input_shape


def test_nmnist_sim_rebin(nmnist):
    coarse = nmnist.rebin(100)
    assert coarse.time_steps == 100 and coarse.bin_ms == pytest.approx(3.0)


def test_saccades_form_a_closed_triangle():
    offsets = nmnist_sim.saccade_offsets()
    assert offsets.shape == (300, 2) and np.allclose(offsets[0], 0)
    assert np.allclose(offsets[100], [3.5, 7.0]) and np.allclose(offsets[200], [7.0, 0.0])
    assert np.abs(offsets[-1]).max() < 0.1


# ---------------------------------------------------------------- gestures-sim

def test_gestures_sim_shape_and_density(gestures):
    assert (len(gestures.train), len(gestures.test)) == (1100, 275)
    assert gestures.input_shape == (32, 32, 2) and gestures.num_channels == 2048 and gestures.num_classes == 11
    assert gestures.time_steps == 300 and gestures.bin_ms == 5.0 and len(gestures.class_names) == 11
    assert np.bincount(gestures.train.labels).tolist() == [100] * 11
    assert 0.003 < gestures.train.density() < 0.03


def test_gestures_sim_is_learnable(gestures):
    assert nearest_centroid_accuracy(gestures, 4) > 0.3


def test_gestures_sim_deterministic_and_cached(gestures, cache_dir, monkeypatch):
    a = gestures_sim.make_gestures_sim(train_per_class=2, test_per_class=1)
    b = gestures_sim.make_gestures_sim(train_per_class=2, test_per_class=1)
    assert np.array_equal(a.train.channels, b.train.channels) and np.array_equal(a.test.times, b.test.times)
    monkeypatch.setattr(gestures_sim, "make_gestures_sim", lambda *a, **k: pytest.fail("regenerated"))
    assert np.array_equal(load_dataset("gestures-sim", cache_dir=cache_dir).test.times, gestures.test.times)


# ---------------------------------------------------------------- randman

def test_randman_shape_and_one_spike_per_unit(tmp_path):
    data = load_dataset("randman", cache_dir=tmp_path)
    assert (len(data.train), len(data.test)) == (3200, 800)
    assert data.num_channels == 700 and data.num_classes == 20 and data.time_steps == 100
    assert np.all(np.diff(data.train.offsets) == 700)
    t, c = data.train.sample(0)
    assert sorted(c.tolist()) == list(range(700)) and t.min() >= 0 and t.max() < 100


def test_randman_difficulty_and_determinism():
    small = dict(num_classes=3, num_units=20, time_steps=50, train_per_class=30, test_per_class=10)
    a, b = randman.make_randman(**small), randman.make_randman(**small)
    assert np.array_equal(a.train.times, b.train.times) and np.array_equal(a.test.channels, b.test.channels)
    two = randman.make_randman(**small, spikes_per_unit=2, manifold_dim=2)
    assert np.all(np.diff(two.train.offsets) <= 40) and np.diff(two.train.offsets).mean() > 30
    assert nearest_centroid_accuracy(randman.make_randman(**{**small, "time_steps": 10}), 10) > 0.6


def test_randman_cache_key_follows_settings(tmp_path, monkeypatch):
    small = dict(num_classes=2, num_units=10, train_per_class=4, test_per_class=2)
    randman.load_randman(tmp_path, **small)
    monkeypatch.setattr(randman, "make_randman", lambda **k: pytest.fail("regenerated"))
    assert len(randman.load_randman(tmp_path, **small).train) == 8
    with pytest.raises(pytest.fail.Exception):
        randman.load_randman(tmp_path, **small, alpha=1.0)


# ---------------------------------------------------------------- listing, loading every name, bench

def test_listing_has_every_dataset_and_loads(tmp_path, nmnist):
    rows = list_datasets(tmp_path)
    assert [r["name"] for r in rows] == list(DATASETS)
    keys = {"name", "status", "path", "hint", "train", "test", "input_shape", "classes", "time_steps", "bin_ms",
            "description"}
    assert all(set(r) == keys for r in rows)
    status = {r["name"]: r["status"] for r in rows}
    assert status["nmnist-sim"] == "embedded" and status["nmnist"] == "missing"
    table = format_datasets(rows)
    assert all(r["name"] in table for r in rows) and "NMNIST" in table
    for row in rows:
        if row["status"] == "missing":
            with pytest.raises(DatasetError):
                load_dataset(row["name"], data_root=tmp_path)


def test_embedded_listing_matches_data(nmnist, gestures):
    rows = {r["name"]: r for r in list_datasets()}
    for data in (nmnist, gestures):
        row = rows[data.name]
        assert (row["train"], row["test"]) == (len(data.train), len(data.test))
        assert tuple(row["input_shape"]) == data.input_shape and row["time_steps"] == data.time_steps
        assert row["classes"] == data.num_classes and row["bin_ms"] == data.bin_ms


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="nmnist-sim"):
        load_dataset("mnist")


def test_data_throughput_reports_rates():
    result = data_throughput("patterns", batch_size=16)
    assert result["samples"] == 128 and result["samples_per_s"] > 0 and result["reused_dense_samples_per_s"] > 0 and result["dense_samples_per_s"] > 0
