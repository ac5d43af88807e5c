"""Training: seeds, baseline pairing, resume, cancellation, NaN handling and the rousing of a silent output layer."""

import dataclasses

import numpy as np
import pytest
import torch

import engine.train as train_module
from engine.checkpoint import load_checkpoint
from engine.config import ConfigError, TrainConfig
from engine.data import load_dataset
from engine.records import BatchRecord, read_history
from engine.train import Trainer, compare

TINY = TrainConfig(dataset="patterns", preset="quick", time_steps=40, batch_size=16, epochs=2)


def _run(trainer):
    return [e for e in trainer.events()]


def test_rouser_and_baseline_share_initial_weights_and_batch_order():
    trainers, events = compare(TINY.with_(epochs=1, max_batches=1))
    rouser, fixed = trainers
    for a, b in zip(rouser.model.weights(), fixed.model.weights()):
        assert torch.equal(a, b)
    assert np.array_equal(rouser.batch_order(0), fixed.batch_order(0))
    assert not np.array_equal(rouser.batch_order(0), rouser.batch_order(1))
    first = {}
    for e in events:
        if e.kind == "batch":
            first.setdefault(e.run, e.record.loss)
    assert first["rouser"] == first["fixed"]  # same weights, same first batch
    assert not fixed.model.layers[0].threshold.requires_grad
    assert torch.all(fixed.model.layers[-1].threshold == TINY.th_init)


def test_same_seed_same_run_different_seed_different_weights():
    a, b, c = Trainer(TINY), Trainer(TINY), Trainer(TINY.with_(seed=1))
    assert torch.equal(a.model.layers[0].weight, b.model.layers[0].weight)
    assert not torch.equal(a.model.layers[0].weight, c.model.layers[0].weight)
    la = [e.record.loss for e in _run(a) if e.kind == "batch"]
    lb = [e.record.loss for e in _run(b) if e.kind == "batch"]
    assert la == lb


def test_resume_reaches_the_same_result_as_an_uninterrupted_run(tmp_path):
    full = Trainer(TINY, out=tmp_path / "full")
    _run(full)
    half = Trainer(TINY.with_(epochs=1), out=tmp_path / "half")
    _run(half)
    resumed = Trainer(TINY, resume=tmp_path / "half")
    assert resumed.epoch == 1
    _run(resumed)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    def strip(history):  # the records without their timing
        return [dataclasses.replace(r, samples_per_s=0.0) if isinstance(r, BatchRecord) else r for r in history]
    assert strip(full.history) == strip(resumed.history)
    assert strip(read_history(tmp_path / "half" / "history.jsonl")) == strip(full.history)
    assert load_checkpoint(tmp_path / "half")["epoch"] == 2


def test_cancel_stops_before_the_next_batch():
    trainer = Trainer(TINY)
    seen = []
    for e in trainer.events():
        seen.append(e)
        if e.kind == "batch" and e.record.batch == 2:
            trainer.cancel()
    assert seen[-1].kind == "end" and seen[-1].record.status == "cancelled"
    assert sum(e.kind == "batch" for e in seen) == 2


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train_module.van_rossum_loss

    def flaky(*args):
        calls["n"] += 1
        value = real(*args)
        return value * float("nan") if calls["n"] > 14 else value  # epoch 1 (8 train + 2 eval calls) is fine

    monkeypatch.setattr(train_module, "van_rossum_loss", flaky)
    trainer = Trainer(TINY, out=tmp_path)
    events = _run(trainer)
    assert events[-1].kind == "error"
    message = events[-1].record.message
    assert "NaN" in message and "epoch 2" in message and str(tmp_path) in message and "\n" not in message
    assert "lower --lr/--lr-th" in message and "--reset-grad detach" in message
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_the_nan_message_names_the_reset_bound_when_thresholds_cross_it():
    """Th * s / tau >= 1 + a_v under reset_grad full: the message names that cause and its three remedies."""
    message = train_module._nan_message(Trainer(TINY.with_(th_init=8.0)), 0, 0)
    assert "Th * s / tau >= 1 + a_v" in message and "(Th up to 8" in message
    assert "lower s" in message and "raise tau" in message and "--reset-grad detach" in message
    assert "1 + a_v" not in train_module._nan_message(Trainer(TINY.with_(th_init=8.0, reset_grad="detach")), 0, 0)


def test_exploding_weights_are_reported_not_trained_on():
    events = _run(Trainer(TINY.with_(lr=1e37, epochs=1, init="he-normal")))
    assert events[-1].kind == "error" and "NaN or infinite" in events[-1].record.message


@pytest.mark.parametrize("change, word", [
    (dict(current_decay=1.5), "current_decay"), (dict(voltage_decay=0.0), "voltage_decay"), (dict(tau=-1.0), "tau"),
    (dict(scale=-0.5), "scale"), (dict(batch_size=0), "batch_size"), (dict(epochs=0), "epochs"), (dict(lr=-1e-3), "lr"),
    (dict(th_init=float("nan")), "th_init"), (dict(device="tpu"), "device"),
])
def test_out_of_range_settings_name_the_parameter(change, word):
    with pytest.raises(ConfigError, match=word):
        TINY.with_(**change).validate()


def test_silent_output_threshold_goes_down_where_the_target_wants_spikes():
    """Eq 10 with eq 5: a silent neuron whose target has spikes gets dL/dTh > 0, so Th decreases."""
    trainer = Trainer(TINY.with_(weight_scale=0.1, lr_th=0.01, max_batches=1, epochs=1))
    order = trainer.batch_order(0)[:16]
    labels = set(trainer.dataset.train.labels[order].tolist())
    events = _run(trainer)
    assert events[1].record.layers[-1].active_fraction == 0.0  # the output layer was silent
    th = trainer.model.layers[-1].threshold.detach()
    for k in range(4):
        if k in labels:
            assert th[k] < TINY.th_init
        else:
            assert th[k] == TINY.th_init  # no error, no gradient
    assert labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rouser_rouses_a_silent_output_layer_faster_than_the_fixed_threshold(seed):
    """Paper settings (Th, tau, s) = (1.25, 3.75, 1.5), small weights (0.1 x He-normal): the output layer starts silent."""
    config = TINY.with_(weight_scale=0.1, init="he-normal", lr_th=0.05, th_init=1.25, tau=3.75, scale=1.5, seed=seed,
                        epochs=2, max_batches=5)
    _, events = compare(config)
    batches = {"rouser": [], "fixed": []}
    for e in events:
        if e.kind == "batch":
            batches[e.run].append(e.record)
    for run in batches.values():
        assert run[0].layers[-1].active_fraction == 0.0
    rouser, fixed = batches["rouser"][-1], batches["fixed"][-1]
    assert rouser.layers[-1].active_fraction > fixed.layers[-1].active_fraction
    assert rouser.loss < fixed.loss


def test_events_carry_every_metric_and_a_raster_when_asked():
    events = _run(Trainer(TINY.with_(raster_every=2, epochs=1)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and "epoch" in kinds
    batch = [e for e in events if e.kind == "batch"]
    assert batch[0].raster is not None and batch[1].raster is None
    layer = batch[0].record.layers[0]
    assert layer.probe_active_fraction is not None and layer.weight_change is not None and layer.threshold_sample
    epoch = [e for e in events if e.kind == "epoch"][0].record
    assert 0.0 <= epoch.test_accuracy <= 1.0 and len(epoch.dead_percent) == 2


def test_learns_the_patterns_dataset():
    trainer = Trainer(TINY.with_(epochs=6, th_init=1.0, lr=3e-3))
    _run(trainer)
    assert trainer.history[-1].test_accuracy >= 0.6  # 4 classes: chance is 0.25


def test_dataset_is_rebinned_to_the_run_grid():
    trainer = Trainer(TINY.with_(time_steps=20))
    assert trainer.dataset.time_steps == 20 and load_dataset("patterns").time_steps == 40


def test_frozen_weights_train_only_the_thresholds():
    """lr 0: the weights stay exactly as initialised while the thresholds learn (tuning after deployment)."""
    trainer = Trainer(TINY.with_(lr=0.0, lr_th=0.05, epochs=1))
    start = [w.detach().clone() for w in trainer.model.weights()]
    th0 = [t.detach().clone() for t in trainer.model.thresholds()]
    _run(trainer)
    assert all(torch.equal(a, b) for a, b in zip(start, trainer.model.weights()))
    assert any(not torch.equal(a, b) for a, b in zip(th0, trainer.model.thresholds()))
