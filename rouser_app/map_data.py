"""Measured rousing maps as data: where they are, how to read them, and the settings and presets they give.

Maps ship with the package (``rouser_app/maps/``, written by ``rouser reproduce report``); maps a user computed with
``rouser reproduce rousing-map --out DIR`` under the server's runs folder are found too and named by folder, never
by server path.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = ["MAPS_DIR", "available_maps", "cell_label", "cell_settings", "classroom_presets", "load_map", "map_frame",
           "shipped_presets"]

MAPS_DIR = Path(__file__).with_name("maps")
_APPLIED = ("dataset", "preset", "time_steps", "th_init", "tau", "scale", "reset_grad", "weight_scale", "init",
            "weight_quant", "lr", "lr_th", "epochs", "batch_size", "max_batches")


def available_maps(runs_dir: Path | None = None) -> dict[str, Path]:
    """Shipped maps by file name, then maps under the server's runs folder (``DIR/<dataset>-<budget>/rousing-map``)."""
    maps = {f"shipped: {p.stem}": p for p in sorted(MAPS_DIR.glob("*.json"))}
    if runs_dir is not None and runs_dir.is_dir():
        for pattern in ("*/rousing-map/rousing_map.json", "*/*/rousing-map/rousing_map.json"):
            for p in sorted(runs_dir.glob(pattern)):
                maps[f"runs: {p.parent.parent.relative_to(runs_dir)}"] = p
    return maps


@lru_cache(maxsize=8)
def _read(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def load_map(path: Path) -> dict:
    """A map's JSON (as ``rouser reproduce rousing-map`` writes it), cached until the file changes."""
    return _read(str(path), path.stat().st_mtime)


def _value(stat: dict, percent: bool) -> float:
    mean = stat.get("mean")
    return math.nan if mean is None else (100 * mean if percent else mean)


def map_frame(data: dict, regime: str, metric: str) -> pd.DataFrame:
    """One row per cell of ``regime``: Rouser's, the baseline's and their difference of ``metric``, and hover text."""
    percent = metric != "batches_to_full_output"
    rows = []
    for c in data["cells"]:
        if c["regime"] != regime:
            continue
        r, f = _value(c["rouser"][metric], percent), _value(c["fixed"][metric], percent)
        rows.append(dict(weight_scale=f"{c['weight_scale']:g}", th_init=f"{c['th_init']:g}", rouser=r, fixed=f,
                         difference=r - f, rouser_text=c["rouser"]["text"], fixed_text=c["fixed"]["text"],
                         contrast=c["contrast"]))
    return pd.DataFrame(rows)


def classroom_presets(data: dict, limit: int = 3) -> list[dict]:
    """Cells for a classroom demo, fastest rousing first: those where Rouser's output is fully active in every seed
    and the baseline's in none (contrast ``rouses``); when the map has none, its strongest contrasts (``partial``:
    Rouser fully active in more seeds than the baseline). Each cell carries its settings and measured numbers."""
    cells = [c for c in data.get("cells", []) if "config" in c]
    for kind in ("rouses", "partial"):
        chosen = [c for c in cells if c["contrast"] == kind]
        if chosen:
            gap = lambda c: c["fixed"]["full_output_reached"] - c["rouser"]["full_output_reached"]  # noqa: E731
            speed = lambda c: c["rouser"]["batches_to_full_output"]["mean"] or math.inf  # noqa: E731
            return sorted(chosen, key=lambda c: (gap(c), speed(c)))[:limit]
    return []


def cell_settings(cell: dict, datasets: list[str]) -> dict:
    """A map cell's Rouser settings as run-control values (its baseline is the compare run); the dataset only
    when this server offers it."""
    config = cell["config"]
    values = {k: config[k] for k in _APPLIED if k in config}
    if values.get("dataset") not in datasets:
        values.pop("dataset", None)
    return dict(compare=True, **values)


def cell_label(cell: dict) -> str:
    return f"{cell['regime']}, Th_init {cell['th_init']:g}, weight scale {cell['weight_scale']:g}"


def shipped_presets(limit: int = 3) -> list[dict]:
    """The classroom presets of the first shipped map (none when no map ships)."""
    maps = sorted(MAPS_DIR.glob("*.json"))
    return classroom_presets(load_map(maps[0]), limit) if maps else []
