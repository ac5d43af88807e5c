"""The "Rousing map" tab: measured heat maps of where learned thresholds rouse neurons that fixed ones leave dead.

It opens on the maps shipped with the package (``rouser_app/maps/``, written by ``rouser reproduce report``), so
there is nothing to train before looking; maps a user computed with ``rouser reproduce rousing-map --out DIR``
under the server's runs folder are listed too (the page names them by folder, never by server path). Hovering a
cell shows its numbers; clicking it loads its settings into the run controls, ready to press Run.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import pandas as pd
import panel as pn
import param

from engine.style import run_label

from .controls import RunControls

__all__ = ["MAPS_DIR", "RousingMapView", "available_maps", "classroom_presets", "load_map", "map_frame"]

MAPS_DIR = Path(__file__).with_name("maps")
METRICS = {"output layer active at the end (%)": "output_active_end", "final test accuracy (%)": "test_accuracy",
           "batches until the output layer is fully active": "batches_to_full_output"}
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
    """Cells where the baseline's output stays silent or never fully active and Rouser's is fully active in every
    seed (contrast ``rouses``), fastest first; each with its settings and measured numbers."""
    rousing = [c for c in data.get("cells", []) if c["contrast"] == "rouses" and "config" in c]
    rousing.sort(key=lambda c: c["rouser"]["batches_to_full_output"]["mean"] or math.inf)
    return rousing[:limit]


def apply_cell(controls: RunControls, cell: dict) -> None:
    """Load a map cell's Rouser settings into the run controls (its baseline is the compare run)."""
    config = cell["config"]
    values = {k: config[k] for k in _APPLIED if k in config}
    if values.get("dataset") not in controls.param.dataset.objects:
        values.pop("dataset", None)
    controls.param.update(compare=True, **values)


def cell_label(cell: dict) -> str:
    return f"{cell['regime']}, Th_init {cell['th_init']:g}, weight scale {cell['weight_scale']:g}"


class RousingMapView(pn.viewable.Viewer):
    """Heat maps of one measured map (Rouser, fixed, difference) per regime; a click loads a cell's settings."""

    map_name = param.Selector(default=None, objects=[], label="map")
    regime = param.Selector(default=None, objects=[], label="regime")
    metric = param.Selector(default=list(METRICS)[0], objects=list(METRICS), label="measure")
    selected = param.String("Click a cell to load its settings into the run controls.")

    def __init__(self, controls: RunControls, runs_dir: Path | None = None, **params):
        super().__init__(**params)
        self.controls = controls
        self.maps = available_maps(runs_dir)
        self.param.map_name.objects = list(self.maps)
        if self.maps:
            self.map_name = next(iter(self.maps))
        self.taps = [hv.streams.Tap(x=None, y=None) for _ in range(3)]
        for tap in self.taps:
            tap.param.watch(lambda e, tap=tap: self._tapped(tap.x, tap.y), ["x", "y"])

    @property
    def data(self) -> dict:
        return load_map(self.maps[self.map_name]) if self.map_name else {"cells": [], "grid": {"regimes": []}}

    @param.depends("map_name", watch=True, on_init=True)
    def _regimes(self) -> None:
        regimes = list(self.data["grid"]["regimes"])
        self.param.regime.objects = regimes
        self.regime = regimes[0] if regimes else None

    def _tapped(self, x, y) -> None:
        if x is None or y is None:
            return
        grid = self.data["grid"]
        th = _nearest(y, grid["th_inits"])
        ws = _nearest(x, grid["weight_scales"])
        cell = next((c for c in self.data["cells"] if c["regime"] == self.regime and c["th_init"] == th
                     and c["weight_scale"] == ws), None)
        if cell is None or "config" not in cell:
            return
        apply_cell(self.controls, cell)
        self.selected = (f"Loaded {cell_label(cell)}. Rouser: {cell['rouser']['text']}; fixed threshold: "
                         f"{cell['fixed']['text']}. Press Run to train it.")

    @param.depends("map_name", "regime", "metric")
    def _heatmaps(self):
        if not self.regime:
            return pn.pane.Markdown("No rousing map is available: run `rouser reproduce rousing-map`.")
        frame = map_frame(self.data, self.regime, METRICS[self.metric])
        hover = [("Th_init", "@th_init"), ("weight scale", "@weight_scale"), ("Rouser", "@rouser_text"),
                 ("fixed", "@fixed_text"), ("contrast", "@contrast")]
        vdims = ["rouser_text", "fixed_text", "contrast"]
        plots = []
        for tap, column, title, cmap in zip(self.taps, ("rouser", "fixed", "difference"),
                                            (run_label("rouser"), run_label("fixed"), "Rouser - fixed"),
                                            ("Viridis", "Viridis", "RdBu")):
            heat = hv.HeatMap(frame, kdims=["weight_scale", "th_init"], vdims=[column, *vdims]).opts(
                title=title, cmap=cmap, colorbar=True, tools=["hover", "tap"], hover_tooltips=hover,
                xlabel="initial weight scale", ylabel="Th_init", responsive=True, min_height=260, min_width=200,
                clim=(-100, 100) if column == "difference" else (None, None))
            tap.source = heat
            labels = hv.Labels(frame.assign(label=frame[column].map(lambda v: "-" if math.isnan(v) else f"{v:.0f}")),
                               kdims=["weight_scale", "th_init"], vdims="label").opts(text_font_size="9pt")
            plots.append(pn.pane.HoloViews(heat * labels, sizing_mode="stretch_width", min_height=280))
        return pn.Row(*plots, sizing_mode="stretch_width")

    @param.depends("map_name", "regime")
    def _about(self):
        data = self.data
        regime = data.get("regimes", {}).get(self.regime, {})
        seeds = len(data.get("seeds", []))
        budget = data.get("budget", {})
        return pn.pane.Markdown(
            f"**{self.regime}**: {regime.get('description', '')}. Dataset `{data.get('dataset', '?')}`, budget "
            f"`{budget.get('name', '?')}` ({budget.get('description', '')}), {seeds} seeds per cell. "
            f"{data.get('definition', '')}.", sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.map_name, width=260),
                   pn.widgets.Select.from_param(self.param.regime, width=200),
                   pn.widgets.Select.from_param(self.param.metric, width=320)),
            self._about, self._heatmaps,
            pn.pane.Str(self.param.selected, css_classes=["rouser-map-selected"], sizing_mode="stretch_width",
                        styles={"white-space": "normal"}, stylesheets=["pre { white-space: pre-wrap; }"]),
            sizing_mode="stretch_width")


def _nearest(value, options: list[float]) -> float:
    """The option a tap at ``value`` (a category name, or a position on the axis) points at."""
    try:
        return min(options, key=lambda o: abs(o - float(value)))
    except (TypeError, ValueError):
        return options[0]
