"""What a run emits, as typed records: the lines of ``history.jsonl``, ``summary.json`` and the event stream.

Each record has one ``to_json`` (a JSON-ready dict in the README's "Output files" format) and one ``from_json``.
Readers ignore keys they do not know and give optional fields their defaults, so older and newer files read.
`RunState` folds a stream of `Event`s into histories, progress, summaries and the dead-neuron table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Iterable, Union

__all__ = ["LayerStats", "ThresholdStats", "LayerRaster", "BatchRecord", "EpochRecord", "HistoryRecord",
           "Provenance", "RunStart", "RunSummary", "RunError", "JobSummary", "EventKind", "Event", "JOB",
           "Progress", "RASTER_FILE", "RunState", "history_record", "read_history", "read_raster", "write_history",
           "write_raster"]

JOB = "job"  # the run name of events about a dashboard job as a whole rather than one of its runs


def _json(value):
    """``value`` as JSON-ready data: records by their ``to_json``, tuples as lists."""
    if isinstance(value, _Record):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _many(cls):
    return lambda items: tuple(cls.from_json(x) for x in items)


class _Record:
    """The one JSON writer and reader of every record: fields by name, the ``kind`` first when a class has one.

    Writing leaves out the ``_optional`` fields while they are None; reading ignores unknown keys, gives missing
    fields their defaults, turns lists into tuples and the ``_read`` fields into their records.
    """

    _read: ClassVar[dict] = {}
    _optional: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict:
        data = {"kind": self.kind} if hasattr(self, "kind") else {}
        data.update({f.name: _json(getattr(self, f.name)) for f in fields(self)
                     if not (f.name in self._optional and getattr(self, f.name) is None)})
        return data

    @classmethod
    def from_json(cls, data: dict):
        names = {f.name for f in fields(cls)}
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        known.update({k: read(data[k]) for k, read in cls._read.items() if data.get(k) is not None})
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class LayerStats(_Record):
    """One layer's measures on one batch (first hidden layer first, output last)."""

    active_fraction: float  # neurons with >= 1 spike on the batch (Fig. 10)
    probe_active_fraction: float | None = None  # the same on the fixed probe sample
    dead_percent: float  # neurons with no spike so far in the epoch (Table 3)
    spike_percent: float  # spikes as % of T x batch x neurons (Fig. 9)
    threshold_mean: float
    threshold_min: float
    threshold_max: float
    threshold_sample: tuple[float, ...] = ()  # thresholds of fixed, evenly spaced neurons (Figs. 7-8)
    weight_change: float | None = None  # ||W - W0|| / ||W0|| (Fig. 6)

    _optional: ClassVar = ("probe_active_fraction", "weight_change")


@dataclass(frozen=True, kw_only=True)
class ThresholdStats(_Record):
    """Mean, min and max of one layer's thresholds."""

    mean: float
    min: float
    max: float


@dataclass(frozen=True, kw_only=True)
class LayerRaster(_Record):
    """The probe sample's spikes of one layer: (time step, neuron) pairs. Sent in events; the dashboard keeps a
    run's latest in ``probe_raster.json`` beside its history (`write_raster`, `read_raster`)."""

    t: tuple[int, ...] = ()
    neuron: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BatchRecord(_Record):
    """One training batch: a ``"kind": "batch"`` line of history.jsonl."""

    kind: ClassVar[str] = "batch"
    epoch: int  # 1-based
    batch: int  # 1-based, within the epoch
    num_batches: int
    step: int  # batches trained since the run began
    loss: float
    train_accuracy: float
    samples_per_s: float
    layers: tuple[LayerStats, ...]

    _read: ClassVar = {"layers": _many(LayerStats)}


@dataclass(frozen=True, kw_only=True)
class EpochRecord(_Record):
    """The end of an epoch: a ``"kind": "epoch"`` line of history.jsonl."""

    kind: ClassVar[str] = "epoch"
    epoch: int  # epochs completed
    train_accuracy: float
    test_accuracy: float
    test_loss: float
    dead_percent: tuple[float, ...]  # per layer, over the whole epoch (Table 3)
    thresholds: tuple[ThresholdStats, ...]

    _read: ClassVar = {"thresholds": _many(ThresholdStats)}


HistoryRecord = Union[BatchRecord, EpochRecord]


def history_record(data: dict) -> HistoryRecord:
    """The record of one history.jsonl line (already parsed)."""
    kinds = {BatchRecord.kind: BatchRecord, EpochRecord.kind: EpochRecord}
    if data.get("kind") not in kinds:
        raise ValueError(f"unknown history record kind {data.get('kind')!r}")
    return kinds[data["kind"]].from_json(data)


def read_history(path: str | Path) -> list[HistoryRecord]:
    """The records of a history.jsonl file; a line cut short by a crash is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(history_record(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records


def write_history(path: str | Path, records: Iterable[HistoryRecord], append: bool = False) -> None:
    """Write (or with ``append`` add) records to a history.jsonl file, one JSON object per line."""
    with open(path, "a" if append else "w") as f:
        f.writelines(json.dumps(r.to_json()) + "\n" for r in records)


RASTER_FILE = "probe_raster.json"  # a run's latest probe raster, beside its history.jsonl


def write_raster(folder: str | Path, step: int | None, raster: Iterable[LayerRaster]) -> None:
    """Replace the run's saved probe raster (one `LayerRaster` per layer) by this one, atomically."""
    path = Path(folder) / RASTER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(step=step, layers=[layer.to_json() for layer in raster])))
    tmp.replace(path)


def read_raster(folder: str | Path) -> tuple[int | None, tuple[LayerRaster, ...]] | None:
    """(step, raster) saved by `write_raster` in ``folder``, or None when there is none or it is unreadable."""
    path = Path(folder) / RASTER_FILE
    try:
        data = json.loads(path.read_text())
        return data.get("step"), tuple(LayerRaster.from_json(layer) for layer in data["layers"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


@dataclass(frozen=True, kw_only=True)
class Provenance(_Record):
    """Where and on what a run trained, beside its config: enough to rerun it and compare two runs."""

    dataset_fingerprint: str = "unknown"  # short hash of the binned data (engine.provenance.dataset_fingerprint)
    device: str = "unknown"
    torch_threads: int | None = None
    world_size: int = 1
    torch_version: str = "unknown"
    rouser_version: str = "unknown"


@dataclass(frozen=True, kw_only=True)
class RunStart(_Record):
    """What a run is about to train: shape, grid, batches and where it resumes."""

    config: dict  # TrainConfig.to_dict()
    dataset: str
    sizes: tuple[int, ...]  # input, hidden..., output
    time_steps: int
    num_batches: int  # per epoch
    batch_size: int
    epoch: int  # epochs completed before this start (a resumed run)
    epochs: int  # the epoch the run trains to
    device: str
    threshold_sample_indices: tuple[tuple[int, ...], ...]  # per layer: the neurons of LayerStats.threshold_sample

    _read: ClassVar = {"threshold_sample_indices": lambda v: tuple(tuple(ix) for ix in v)}


@dataclass(frozen=True, kw_only=True)
class RunSummary(_Record):
    """A run's outcome: one entry of summary.json's ``runs``.

    ``status`` is finished, cancelled or error. A run withdrawn before it started has only run and status.
    """

    run: str
    status: str
    epochs_completed: int = 0
    seconds: float = 0.0
    sizes: tuple[int, ...] = ()
    dataset: str | None = None
    time_steps: int | None = None
    test_accuracy: float | None = None
    train_accuracy: float | None = None
    final_loss: float | None = None
    dead_percent: tuple[float, ...] = ()
    active_fraction: tuple[float, ...] = ()
    thresholds: tuple[ThresholdStats, ...] = ()
    config: dict = field(default_factory=dict)  # TrainConfig.to_dict()
    provenance: Provenance | None = None  # absent in files written before it was recorded
    message: str | None = None  # why a run with status error stopped

    _read: ClassVar = {"thresholds": _many(ThresholdStats), "provenance": Provenance.from_json}
    _optional: ClassVar = ("provenance", "message")

    @classmethod
    def from_history(cls, history: list[HistoryRecord], **given) -> "RunSummary":
        """The summary of a run whose records are ``history``: the last epoch's accuracies and dead neurons (the
        last batch's before a first epoch ends), the last batch's loss and active fractions; ``given``: the rest."""
        epochs = [r for r in history if isinstance(r, EpochRecord)]
        batches = [r for r in history if isinstance(r, BatchRecord)]
        layers = batches[-1].layers if batches else ()
        return cls(test_accuracy=epochs[-1].test_accuracy if epochs else None,
                   train_accuracy=epochs[-1].train_accuracy if epochs else None,
                   final_loss=batches[-1].loss if batches else None,
                   dead_percent=epochs[-1].dead_percent if epochs else tuple(lay.dead_percent for lay in layers),
                   active_fraction=tuple(lay.active_fraction for lay in layers), **given)


@dataclass(frozen=True, kw_only=True)
class RunError(_Record):
    """A run (or with run `JOB`, the whole job) stopped on an error; one line for people."""

    message: str


@dataclass(frozen=True, kw_only=True)
class JobSummary(_Record):
    """summary.json: the runs of one ``rouser train`` or dashboard run, the errors and the wall time."""

    runs: dict[str, RunSummary] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    seconds: float = 0.0

    _read: ClassVar = {"runs": lambda runs: {name: RunSummary.from_json({"run": name, **s}) for name, s in runs.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "JobSummary":
        """Also reads a single run's summary (a folder of the reproduction runs) as a job of that one run."""
        if "runs" not in data and "run" in data:
            return cls(runs={data["run"]: RunSummary.from_json(data)})
        return super().from_json(data)

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/summary.json`` (the folder is made when missing)."""
        path = Path(folder) / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path

    @classmethod
    def read(cls, folder: str | Path) -> "JobSummary":
        return cls.from_json(json.loads((Path(folder) / "summary.json").read_text()))


class EventKind(StrEnum):
    """The closed set of event kinds; each carries one record type (see `Event`)."""

    START = "start"
    BATCH = "batch"
    EPOCH = "epoch"
    END = "end"
    ERROR = "error"
    DONE = "done"


_RECORDS = {EventKind.START: RunStart, EventKind.BATCH: BatchRecord, EventKind.EPOCH: EpochRecord,
            EventKind.END: RunSummary, EventKind.ERROR: RunError, EventKind.DONE: type(None)}


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run, with its record.

    start: `RunStart`; batch: `BatchRecord` (``raster``: the probe's `LayerRaster`s when asked for);
    epoch: `EpochRecord`; end: `RunSummary`; error: `RunError`; done: no record. ``run`` names the run
    (rouser, fixed), or is `JOB` for a dashboard job as a whole: its final ``done``, and an ``error``
    raised outside any run (the dataset failed to load).
    """

    kind: EventKind
    run: str
    record: RunStart | BatchRecord | EpochRecord | RunSummary | RunError | None = None
    raster: tuple[LayerRaster, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", EventKind(self.kind))
        if not isinstance(self.record, _RECORDS[self.kind]):
            raise TypeError(f"a {self.kind} event carries a {_RECORDS[self.kind].__name__}, "
                            f"not {type(self.record).__name__}")

    @classmethod
    def error(cls, run: str, message: str) -> "Event":
        return cls(EventKind.ERROR, run, RunError(message=message))

    @classmethod
    def done(cls) -> "Event":
        return cls(EventKind.DONE, JOB)

    def to_json(self) -> dict:
        data = {"kind": str(self.kind), "run": self.run, "record": self.record and self.record.to_json()}
        return data | ({"raster": [r.to_json() for r in self.raster]} if self.raster is not None else {})

    @classmethod
    def from_json(cls, data: dict) -> "Event":
        kind = EventKind(data["kind"])
        record = data.get("record")
        raster = data.get("raster")
        return cls(kind, data["run"], None if record is None else _RECORDS[kind].from_json(record),
                   None if raster is None else _many(LayerRaster)(raster))


@dataclass(frozen=True)
class Progress:
    """Where a run is: batch ``batch`` of ``num_batches`` in epoch ``epoch`` (1-based) of ``epochs``."""

    epoch: int
    batch: int
    num_batches: int
    epochs: int
    first_epoch: int = 0  # epochs completed before this start (a resumed run)

    @property
    def fraction(self) -> float:
        """Share of this start's batches done, in [0, 1]."""
        done = (self.epoch - 1 - self.first_epoch) * self.num_batches + self.batch
        return min(1.0, max(0.0, done / max(1, (self.epochs - self.first_epoch) * self.num_batches)))


@dataclass
class RunState:
    """What is known of a job's runs from its events alone: `apply` each event in order.

    ``runs`` lists the runs expected (the slowest sets `fraction_done`); empty: those that have started.
    """

    runs: tuple[str, ...] = ()
    starts: dict[str, RunStart] = field(default_factory=dict)
    histories: dict[str, list[HistoryRecord]] = field(default_factory=dict)
    progress: dict[str, Progress] = field(default_factory=dict)
    summaries: dict[str, RunSummary] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    samples: int = 0  # training samples seen by all runs together
    done: bool = False

    def apply(self, event: Event) -> None:
        """Update the state with one event."""
        run, record = event.run, event.record
        if isinstance(record, RunStart):
            self.starts[run] = record
        elif isinstance(record, (BatchRecord, EpochRecord)):
            self.histories.setdefault(run, []).append(record)
        if isinstance(record, BatchRecord):
            start = self.starts.get(run)
            self.progress[run] = Progress(record.epoch, record.batch, record.num_batches,
                                          start.epochs if start else record.epoch, start.epoch if start else 0)
            self.samples += start.batch_size if start else 0
        elif isinstance(record, RunSummary):
            self.summaries[run] = record
        elif isinstance(record, RunError):
            self.errors.append(record.message if run == JOB else f"{run}: {record.message}")
        elif event.kind == EventKind.DONE:
            self.done = True

    def batches(self, run: str) -> list[BatchRecord]:
        return [r for r in self.histories.get(run, []) if isinstance(r, BatchRecord)]

    def epochs(self, run: str) -> list[EpochRecord]:
        return [r for r in self.histories.get(run, []) if isinstance(r, EpochRecord)]

    @property
    def fraction_done(self) -> float:
        """Share of the job's batches done: the slowest run's (one without a batch yet is at 0)."""
        runs = self.runs or tuple(self.starts)
        if not self.progress or not runs:
            return 0.0
        return min(self.progress[r].fraction if r in self.progress else 0.0 for r in runs)

    @property
    def slowest(self) -> Progress | None:
        """The progress of the run furthest behind, None before the first batch."""
        return min(self.progress.values(), key=lambda p: (p.epoch, p.batch), default=None)

    @property
    def cancelled(self) -> bool:
        return any(s.status == "cancelled" for s in self.summaries.values())

    def dead_table(self) -> dict[str, tuple[int, tuple[float, ...]]]:
        """Run -> (epoch, dead % per layer) at its latest batch: neurons silent so far in the epoch (Table 3)."""
        latest = {run: self.batches(run)[-1] for run in (self.runs or self.histories) if self.batches(run)}
        return {run: (b.epoch, tuple(lay.dead_percent for lay in b.layers)) for run, b in latest.items()}

    def summary(self, seconds: float) -> JobSummary:
        """The job's summary.json: its run summaries, errors and wall time."""
        return JobSummary(runs=dict(self.summaries), errors=tuple(self.errors), seconds=round(seconds, 3))
