"""The "Rousing map" tab: measured heat maps of where learned thresholds rouse neurons that fixed ones leave dead.

It opens on the maps shipped with the package, so there is nothing to train before looking (see ``map_data``).
Hovering a cell shows its numbers; clicking it loads its settings into the run controls, ready to press Run.
"""

from __future__ import annotations

import math
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import panel as pn
import param

from engine.style import run_label

from .controls import RunControls
from .map_data import available_maps, cell_label, cell_settings, load_map, map_frame

__all__ = ["METRICS", "RousingMapView"]

METRICS = {"output layer active at the end (%)": "output_active_end", "final test accuracy (%)": "test_accuracy",
           "batches until the output layer is fully active": "batches_to_full_output"}


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
            tap.param.watch(lambda *_events, tap=tap: self._tapped(tap.x, tap.y), ["x", "y"])

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
        self.controls.param.update(**cell_settings(cell, self.controls.param.dataset.objects))
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
            f"`{budget.get('name', '?')}` ({budget.get('description', '')}), {seeds} seed{'s' * (seeds != 1)} per "
            f"cell. Definitions: {data.get('definition', '')}.", sizing_mode="stretch_width")

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
