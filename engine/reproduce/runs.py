"""One finished run of a sweep as typed records, and its folder's one reader and writer.

A run folder holds ``history.jsonl`` (written by the Trainer) and ``summary.json``: the run's `RunSummary`
with the `RunSpec` that made it under ``spec``. ``summary.json`` is written last, so it marks a finished run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..records import BatchRecord, EpochRecord, HistoryRecord, RunSummary, read_history
from .specs import RunSpec

__all__ = ["RunResult", "is_finished", "load_run", "save_summary", "saved_config"]

SUMMARY = "summary.json"
HISTORY = "history.jsonl"


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    summary: RunSummary
    history: tuple[HistoryRecord, ...]
    trained: bool  # False when read back from a finished run folder

    @property
    def epochs(self) -> list[EpochRecord]:
        return [r for r in self.history if isinstance(r, EpochRecord)]

    @property
    def batches(self) -> list[BatchRecord]:
        return [r for r in self.history if isinstance(r, BatchRecord)]

    @property
    def failed(self) -> bool:
        return self.summary.status == "error"

    @property
    def layers(self) -> int:
        """Spiking layers of the run's network (hidden and output)."""
        return max(0, len(self.summary.sizes) - 1)


def is_finished(folder: Path) -> bool:
    return (folder / SUMMARY).exists()


def load_run(folder: Path, spec: RunSpec) -> RunResult:
    """The finished run in ``folder``, read back."""
    summary = RunSummary.from_json(json.loads((folder / SUMMARY).read_text()))
    history = read_history(folder / HISTORY) if (folder / HISTORY).exists() else []
    return RunResult(spec, summary, tuple(history), trained=False)


def saved_config(folder: Path) -> dict:
    """The TrainConfig (as a dict) of the finished run in ``folder``."""
    return dict(json.loads((folder / SUMMARY).read_text()).get("config") or {})


def save_summary(folder: Path, spec: RunSpec, summary: RunSummary) -> None:
    """Mark the run in ``folder`` finished: its summary with the spec that made it."""
    (folder / SUMMARY).write_text(json.dumps(summary.to_json() | {"spec": asdict(spec)}, indent=2))
