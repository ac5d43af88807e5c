"""What `rouser datasets` shows: every dataset, whether it is usable here, and what it looks like."""

from __future__ import annotations

from pathlib import Path

from .errors import DatasetError
from .paths import resolve_data_root
from .registry import DATASET_INFO
from .tonic_sources import count_samples, source_files

__all__ = ["list_datasets", "format_datasets"]


def _row(info, root: Path) -> dict:
    row = {"name": info.name, "status": "embedded", "path": None, "hint": None, "train": info.train,
           "test": info.test, "input_shape": list(info.input_shape), "classes": info.classes,
           "time_steps": info.time_steps, "bin_ms": info.bin_ms, "description": info.description}
    source = info.source
    if source is None:
        return row
    row.update(path=str(source.folder(root)), train=None, test=None)
    if not (source_files(source, root, True) and source_files(source, root, False)):
        row.update(status="missing", hint=source.hint(root))
        return row
    row["status"] = "found"
    try:
        row.update(train=count_samples(source, root, True), test=count_samples(source, root, False))
    except DatasetError as err:
        row["hint"] = str(err)
    return row


def list_datasets(data_root: str | Path | None = None) -> list[dict]:
    """One dict per dataset: name, status (embedded/found/missing), path, hint, train, test, input_shape,
    classes, time_steps, bin_ms, description. Real datasets are looked up under the data root."""
    root = resolve_data_root(data_root)
    return [_row(info, root) for info in DATASET_INFO.values()]


def format_datasets(rows: list[dict]) -> str:
    """A plain-text table of `list_datasets` rows, with the hints of missing datasets below it."""
    def shape(row):
        return "x".join(str(s) for s in row["input_shape"])

    def grid(row):
        return f"{row['time_steps']} x {row['bin_ms']:g} ms" if row["bin_ms"] else f"{row['time_steps']} steps"

    def count(value):
        return "-" if value is None else f"{value:,}"

    header = ("name", "status", "train", "test", "input", "classes", "bins", "description")
    table = [header] + [(r["name"], r["status"], count(r["train"]), count(r["test"]), shape(r), str(r["classes"]),
                         grid(r), r["description"]) for r in rows]
    widths = [max(len(line[k]) for line in table) for k in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1] for line in table]
    notes = [f"{r['name']}: {r['hint']}" for r in rows if r["hint"]]
    return "\n".join(lines + ([""] + notes if notes else []))
