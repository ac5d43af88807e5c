"""Run records: JSON round trips, the README's file formats, old files, and RunState on a real run (no Panel)."""

import json

import pytest

from engine.config import TrainConfig
from engine.records import (JOB, BatchRecord, EpochRecord, Event, EventKind, JobSummary, LayerRaster, LayerStats,
                            Progress, Provenance, RunError, RunStart, RunState, RunSummary, ThresholdStats,
                            history_record, read_history)
from engine.train import Trainer, compare

TINY = TrainConfig(dataset="patterns", preset="quick", time_steps=20, batch_size=32, epochs=2, raster_every=3)

LAYER = LayerStats(active_fraction=0.5, probe_active_fraction=0.25, dead_percent=12.5, spike_percent=3.0,
                   threshold_mean=1.2, threshold_min=1.0, threshold_max=1.4, threshold_sample=(1.0, 1.4),
                   weight_change=0.01)
BATCH = BatchRecord(epoch=1, batch=2, num_batches=4, step=2, loss=0.9, train_accuracy=0.5, samples_per_s=100.0,
                    layers=(LAYER, LAYER))
EPOCH = EpochRecord(epoch=1, train_accuracy=0.5, test_accuracy=0.25, test_loss=1.1, dead_percent=(12.5, 0.0),
                    thresholds=(ThresholdStats(mean=1.2, min=1.0, max=1.4),) * 2)
PROVENANCE = Provenance(dataset_fingerprint="0123456789abcdef", device="cpu", torch_threads=2, world_size=1,
                        torch_version="2.13.0", rouser_version="0.1.0")
START = RunStart(config=TINY.to_dict(), dataset="patterns", sizes=(32, 64, 4), time_steps=20, num_batches=4,
                 batch_size=32, epoch=0, epochs=2, device="cpu", threshold_sample_indices=((0, 63), (0, 3)))
SUMMARY = RunSummary(run="rouser", status="finished", epochs_completed=1, seconds=1.5, sizes=(32, 64, 4),
                     dataset="patterns", time_steps=20, test_accuracy=0.25, train_accuracy=0.5, final_loss=0.9,
                     dead_percent=(12.5, 0.0), active_fraction=(0.5, 0.5), thresholds=EPOCH.thresholds,
                     config=TINY.to_dict(), provenance=PROVENANCE)
RECORDS = [LAYER, EPOCH.thresholds[0], LayerRaster(t=(0, 3), neuron=(5, 1)), BATCH, EPOCH, PROVENANCE, START, SUMMARY,
           RunSummary(run="fixed", status="cancelled"), RunError(message="boom"),
           JobSummary(runs={"rouser": SUMMARY}, errors=("fixed: boom",), seconds=2.0)]
EVENTS = [Event(EventKind.START, "rouser", START), Event(EventKind.BATCH, "rouser", BATCH),
          Event(EventKind.BATCH, "rouser", BATCH, raster=(LayerRaster(t=(1,), neuron=(2,)), LayerRaster())),
          Event(EventKind.EPOCH, "rouser", EPOCH), Event(EventKind.END, "rouser", SUMMARY),
          Event.error("fixed", "boom"), Event.error(JOB, "no data"), Event.done()]


def _through_json(data: dict) -> dict:
    return json.loads(json.dumps(data))


@pytest.mark.parametrize("record", RECORDS + EVENTS, ids=lambda r: type(r).__name__)
def test_every_record_and_event_round_trips_through_json(record):
    assert type(record).from_json(_through_json(record.to_json())) == record


def test_history_lines_and_summary_have_the_readme_keys():
    line = _through_json(BATCH.to_json())
    assert set(line) == {"kind", "epoch", "batch", "num_batches", "step", "loss", "train_accuracy", "samples_per_s",
                         "layers"} and line["kind"] == "batch"
    assert set(line["layers"][0]) == {"active_fraction", "probe_active_fraction", "dead_percent", "spike_percent",
                                      "threshold_mean", "threshold_min", "threshold_max", "threshold_sample",
                                      "weight_change"}
    assert set(EPOCH.to_json()) == {"kind", "epoch", "train_accuracy", "test_accuracy", "test_loss", "dead_percent",
                                    "thresholds"}
    summary = _through_json(JobSummary(runs={"rouser": SUMMARY}).to_json())
    assert set(summary) == {"runs", "errors", "seconds"}
    assert set(summary["runs"]["rouser"]) == {
        "run", "status", "epochs_completed", "seconds", "sizes", "dataset", "time_steps", "test_accuracy",
        "train_accuracy", "final_loss", "dead_percent", "active_fraction", "thresholds", "config", "provenance"}
    assert set(summary["runs"]["rouser"]["provenance"]) == {"dataset_fingerprint", "device", "torch_threads",
                                                            "world_size", "torch_version", "rouser_version"}


def test_files_written_before_the_newer_fields_still_read():
    """A history line without the probe, sample and weight-change fields, a summary without provenance, and
    keys this version does not know."""
    old_batch = {"step": 1, "loss": 1.3, "train_accuracy": 0.25, "samples_per_s": 125.4, "kind": "batch", "epoch": 1,
                 "batch": 1, "num_batches": 1, "layers": [{"active_fraction": 0.9375, "spike_percent": 13.6,
                 "threshold_mean": 1.25, "threshold_min": 1.24, "threshold_max": 1.26, "dead_percent": 6.25}]}
    record = history_record(old_batch)
    layer = record.layers[0]
    assert isinstance(record, BatchRecord) and record.loss == 1.3 and layer.active_fraction == 0.9375
    assert layer.probe_active_fraction is None and layer.threshold_sample == () and layer.weight_change is None
    assert "probe_active_fraction" not in layer.to_json()
    old_summary = {k: v for k, v in SUMMARY.to_json().items() if k != "provenance"} | {"spec": {"seed": 0}}
    summary = JobSummary.from_json({"runs": {"rouser": old_summary}, "errors": [], "seconds": 1.0})
    assert summary.runs["rouser"].provenance is None and summary.runs["rouser"].test_accuracy == 0.25
    assert JobSummary.from_json(SUMMARY.to_json()).runs == {"rouser": SUMMARY}  # a single run's summary.json
    with pytest.raises(ValueError):
        history_record({"kind": "start"})


def test_event_kinds_are_closed_and_carry_their_record_type():
    assert Event("batch", "rouser", BATCH).kind is EventKind.BATCH and Event("batch", "rouser", BATCH).kind == "batch"
    with pytest.raises(ValueError):
        Event("progress", "rouser", BATCH)
    with pytest.raises(TypeError):
        Event(EventKind.END, "rouser", BATCH)
    with pytest.raises(TypeError):
        Event(EventKind.DONE, JOB, SUMMARY)
    assert Event.done().run == JOB and Event.done().record is None


def test_progress_counts_from_where_a_resumed_run_started():
    assert Progress(epoch=1, batch=2, num_batches=4, epochs=2).fraction == 0.25
    assert Progress(epoch=2, batch=4, num_batches=4, epochs=2).fraction == 1.0
    assert Progress(epoch=3, batch=2, num_batches=4, epochs=4, first_epoch=2).fraction == 0.25


def test_run_state_of_a_real_comparison(tmp_path):
    trainers, events = compare(TINY, out=tmp_path)
    state = RunState(runs=("rouser", "fixed"))
    fractions = []
    for event in events:
        state.apply(event)
        fractions.append(state.fraction_done)
    rouser, fixed = trainers
    assert state.histories == {"rouser": rouser.history, "fixed": fixed.history}
    assert [b.step for b in state.batches("rouser")] == list(range(1, 9))  # 128 samples / 32 = 4 batches x 2 epochs
    assert [e.epoch for e in state.epochs("fixed")] == [1, 2]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[1] == 0.0  # the slowest run leads
    assert state.slowest == Progress(epoch=2, batch=4, num_batches=4, epochs=2)
    assert state.samples == 2 * 8 * 32 and state.errors == [] and not state.cancelled and not state.done
    assert state.summaries["rouser"] == rouser.summary("finished", state.summaries["rouser"].seconds)
    last = state.batches("fixed")[-1]
    assert state.dead_table()["fixed"] == (2, tuple(lay.dead_percent for lay in last.layers))
    job = state.summary(3.14159)
    assert job.seconds == 3.142 and set(job.runs) == {"rouser", "fixed"}
    job.write(tmp_path)
    assert JobSummary.read(tmp_path) == job
    state.apply(Event.error("fixed", "boom"))
    state.apply(Event.error(JOB, "no data"))
    state.apply(Event.done())
    assert state.errors == ["fixed: boom", "no data"] and state.done


def test_the_trainers_history_file_reads_back_as_its_records(tmp_path):
    trainer = Trainer(TINY, out=tmp_path)
    events = list(trainer.events())
    assert read_history(tmp_path / "history.jsonl") == trainer.history
    assert [e.record for e in events if e.kind in ("batch", "epoch")] == trainer.history
    rasters = [e.raster for e in events if e.kind == "batch"]
    assert rasters[0] is not None and rasters[1] is None and rasters[3] is not None  # raster_every=3
    with open(tmp_path / "history.jsonl", "a") as f:
        f.write('{"kind": "batch", "epo')  # a line cut short by a crash is skipped
    assert read_history(tmp_path / "history.jsonl") == trainer.history


def test_the_summary_records_provenance():
    a, b = Trainer(TINY.with_(epochs=1, max_batches=1)), Trainer(TINY.with_(time_steps=10, epochs=1, max_batches=1))
    list(a.events())
    summary = a.summary("finished", 1.0)
    p = summary.provenance
    assert p.device == str(a.device) and p.world_size == 1 and p.torch_threads >= 1 and p.torch_version and p.rouser_version
    assert len(p.dataset_fingerprint) == 16
    assert p.dataset_fingerprint == Trainer(TINY).provenance.dataset_fingerprint  # same data, same grid
    assert b.provenance.dataset_fingerprint != p.dataset_fingerprint  # another time grid
    assert summary.config == TINY.with_(epochs=1, max_batches=1).to_dict() and summary.dataset == "patterns"
