"""Statistics over seeds, series helpers, and the CSV and JSON files the experiments write."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["first_reaching", "smooth", "stats", "write_csv", "write_json"]


def stats(values: Iterable[float | None]) -> dict:
    """mean, std, min, max and n of the finite values (None when there are none), and ``values``: every value
    in seed order, None where a run gave none (so two methods' values pair up seed by seed)."""
    every = [None if x is None or not math.isfinite(x) else float(x) for x in values]
    v = np.array([x for x in every if x is not None], dtype=float)
    if v.size == 0:
        return dict(mean=None, std=None, min=None, max=None, n=0, values=every)
    return dict(mean=float(v.mean()), std=float(v.std()), min=float(v.min()), max=float(v.max()), n=int(v.size),
                values=every)


def smooth(values: list[float], window: int) -> list[float]:
    """Running mean over the last ``window`` values."""
    out, acc = [], []
    for v in values:
        acc.append(v)
        acc = acc[-window:]
        out.append(sum(acc) / len(acc))
    return out


def first_reaching(values: list[float], target: float) -> int | None:
    """1-based index of the first value >= target, or None."""
    return next((k for k, v in enumerate(values, 1) if v is not None and v >= target), None)


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path
