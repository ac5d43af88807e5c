"""Live plots of one dashboard run: Buffers and Pipes feeding DynamicMaps, one builder function per plot kind.

Every plot is built by the same function for the Rouser and the fixed-threshold run; plots of the two runs
share their dimensions, so HoloViews links their axes. A raster is one ``hv.Points`` per layer and run.
"""

from __future__ import annotations

from functools import partial

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import numpy as np
import pandas as pd
import panel as pn

from engine.records import BatchRecord, HistoryRecord, LayerRaster, RunState
from engine.style import RUN_COLORS, RUN_LABELS, RUN_SHORT, layer_label  # one naming and colouring for dashboard and figures

__all__ = ["LivePlots", "RUN_COLORS", "RUN_LABELS", "layer_label", "batch_rows", "dead_frame", "history_shape"]

BUFFER_LENGTH = 1_000_000  # rows kept per run: every batch of any run the dashboard allows
PLOT = dict(width=262, height=185, toolbar="above", tools=["hover"], default_tools=["pan", "wheel_zoom", "reset"],
            fontsize={"title": "10pt"})


RUN_IDS = {"rouser": 0, "fixed": 1}


def _columns(layers: int, samples: list[int]) -> list[str]:
    cols = ["run", "step", "epoch", "loss", "accuracy"]
    for k in range(layers):
        cols += [f"active_{k}", f"probe_active_{k}", f"dead_{k}", f"spike_{k}", f"th_mean_{k}", f"th_min_{k}",
                 f"th_max_{k}"]
        cols += [f"th_s{j}_{k}" for j in range(samples[k])]
    return cols


def batch_rows(records: list[BatchRecord], layers: int, samples: list[int], run: str = "rouser") -> pd.DataFrame:
    """One row per batch record of the engine, in the buffer's columns."""
    rows = []
    for r in records:
        row = dict(run=RUN_IDS.get(run, 0), step=r.step, epoch=r.epoch, loss=r.loss, accuracy=r.train_accuracy)
        for k, lay in enumerate(r.layers[:layers]):
            probe = np.nan if lay.probe_active_fraction is None else lay.probe_active_fraction
            row.update({f"active_{k}": lay.active_fraction, f"probe_active_{k}": probe,
                        f"dead_{k}": lay.dead_percent, f"spike_{k}": lay.spike_percent,
                        f"th_mean_{k}": lay.threshold_mean, f"th_min_{k}": lay.threshold_min,
                        f"th_max_{k}": lay.threshold_max})
            sample = list(lay.threshold_sample)[:samples[k]]
            sample += [np.nan] * (samples[k] - len(sample))
            row.update({f"th_s{j}_{k}": v for j, v in enumerate(sample)})
        rows.append(row)
    return pd.DataFrame(rows, columns=_columns(layers, samples), dtype=float)


def dead_frame(state: RunState) -> pd.DataFrame:
    """The dead-neuron table (Table 3): one row per run at its latest batch, one column per layer, in %."""
    rows = {f"{RUN_LABELS.get(run, run)} (epoch {epoch})": {layer_label(k, len(dead)): round(d, 1)
                                                           for k, d in enumerate(dead)}
            for run, (epoch, dead) in state.dead_table().items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def history_shape(histories: dict[str, list[HistoryRecord]], sizes: list[int] | None):
    """(runs, neurons per layer, threshold samples per layer) of saved histories; None without a batch.

    Rouser and fixed come first; without ``sizes``, each layer gets as many neurons as its sample.
    """
    firsts = {run: next((r for r in recs if isinstance(r, BatchRecord)), None) for run, recs in histories.items()}
    firsts = {run: first for run, first in firsts.items() if first is not None}
    if not firsts:
        return None
    samples = [len(lay.threshold_sample) for lay in next(iter(firsts.values())).layers]
    neurons = list(sizes[1:]) if sizes else [max(1, n) for n in samples]
    return sorted(firsts, key=lambda run: RUN_IDS.get(run, len(RUN_IDS))), neurons, samples


# ---------------------------------------------------------------------- elements (pure functions of data)
def raster_element(data: dict, run: str, k: int, layers: int, neurons: int, steps: int) -> hv.Points:
    """The probe sample's spikes of layer k as (time step, neuron) points: one element for the whole layer."""
    t = np.asarray(data.get("t", []), dtype=float)
    n = np.asarray(data.get("neuron", []), dtype=float)
    step = data.get("step")
    # short enough to fit the plot's width on a narrow screen: "fixed · hidden 1 · batch 120"
    title = f"{RUN_SHORT[run]} · {layer_label(k, layers)}" + (f" · batch {step}" if step else "")
    return hv.Points((t, n), kdims=[hv.Dimension("t", label="time step"),
                                    hv.Dimension(f"neuron_{k}", label=f"neuron ({layer_label(k, layers)})")]).opts(
        color=RUN_COLORS[run], size=2, marker="square", xlim=(-0.5, steps - 0.5), ylim=(-0.5, neurons - 0.5),
        title=title, **PLOT)


def threshold_element(data: pd.DataFrame, run: str, k: int, layers: int, samples: int) -> hv.Overlay:
    """Thresholds of layer k over training (Figs. 7-8): min-max band, mean, and a fixed sample of neurons."""
    data = data[data["run"] == RUN_IDS[run]]
    x = hv.Dimension("step", label="batch step")
    y = hv.Dimension(f"threshold_{k}", label=f"threshold ({layer_label(k, layers)})")
    steps = data["step"].to_numpy()
    band = hv.Area((steps, data[f"th_min_{k}"].to_numpy(), data[f"th_max_{k}"].to_numpy()), kdims=[x],
                   vdims=[y, hv.Dimension(f"threshold_hi_{k}")], label="min-max").opts(
        color=RUN_COLORS[run], alpha=0.2, line_alpha=0)
    # the sample neurons as one line broken by NaNs: one glyph, cheap to update (hv.Path is ~10x slower)
    nan = np.full(1, np.nan)
    xs = np.concatenate([np.concatenate([steps, nan]) for _ in range(samples)]) if samples else steps[:0]
    ys = np.concatenate([np.concatenate([data[f"th_s{j}_{k}"].to_numpy(), nan]) for j in range(samples)]) if samples else steps[:0]
    paths = hv.Curve((xs, ys), x, y, label="sample neurons").opts(color="#555555", alpha=0.6, line_width=1)
    mean = hv.Curve((steps, data[f"th_mean_{k}"].to_numpy()), x, y, label="mean").opts(
        color=RUN_COLORS[run], line_width=2)
    return (band * paths * mean).opts(title=f"{RUN_SHORT[run]} · {layer_label(k, layers)} thresholds",
                                      show_legend=False, framewise=True, **PLOT)


def run_curve(data: pd.DataFrame, run: str, column: str, ylabel: str) -> hv.Curve:
    """One run's ``column`` over training steps, drawn in the run's colour."""
    data = data[data["run"] == RUN_IDS[run]]
    return hv.Curve((data["step"].to_numpy(), data[column].to_numpy()), hv.Dimension("step", label="batch step"),
                    hv.Dimension(column.replace("probe_", ""), label=ylabel), label=RUN_LABELS[run]).opts(
        color=RUN_COLORS[run], line_width=2, framewise=True)


# ---------------------------------------------------------------------- the live view of one run
class LivePlots:
    """Streams and DynamicMaps for one dashboard run (Rouser and, when compared, the fixed-threshold run)."""

    def __init__(self, runs: list[str], sizes: list[int], samples: list[int], time_steps: int):
        self.runs = list(runs)
        self.neurons = list(sizes)  # neurons per layer (input layer excluded)
        self.layers = len(self.neurons)
        self.samples = list(samples)
        self.time_steps = int(time_steps)
        empty = batch_rows([], self.layers, self.samples)
        self.metrics = hv.streams.Buffer(empty, length=BUFFER_LENGTH, index=False)  # every run's rows
        self.rasters = {(run, k): hv.streams.Pipe(data={"t": [], "neuron": [], "step": None})
                        for run in self.runs for k in range(self.layers)}
        self.rows = {run: 0 for run in self.runs}
        self.raster_points = {(run, k): 0 for run in self.runs for k in range(self.layers)}
        self._view = None

    def matches(self, runs: list[str], sizes: list[int], samples: list[int], time_steps: int) -> bool:
        """True when a run of this shape can reuse these plots (building them costs seconds, clearing them little)."""
        return (self.runs, self.neurons, self.samples, self.time_steps) == (list(runs), list(sizes), list(samples),
                                                                           int(time_steps))

    def clear(self) -> None:
        """Empty every stream for the next run of the same shape (nothing to do when nothing was shown)."""
        if not any(self.rows.values()) and not any(self.raster_points.values()):
            return
        self.metrics.clear()
        self.metrics.send(batch_rows([], self.layers, self.samples))
        for pipe in self.rasters.values():
            pipe.send({"t": [], "neuron": [], "step": None})
        self.rows = {run: 0 for run in self.runs}
        self.raster_points = {key: 0 for key in self.raster_points}

    # -------------------------------------------------------------- feeding
    def push_batches(self, batches: dict[str, list[BatchRecord]]) -> None:
        """Append batch records (run -> records): one Buffer send for all of them, so each plot updates once."""
        frames = [batch_rows(records, self.layers, self.samples, run) for run, records in batches.items()
                  if records and run in self.rows]
        if frames:
            self.metrics.send(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
            for run, records in batches.items():
                if run in self.rows:
                    self.rows[run] += len(records)

    def push_raster(self, run: str, raster: tuple[LayerRaster, ...], step: int | None = None) -> None:
        """Replace ``run``'s rasters by the latest probe raster (one `LayerRaster` per layer)."""
        for k, layer in enumerate(raster[:self.layers]):
            if (run, k) in self.rasters:
                self.rasters[(run, k)].send({"t": layer.t, "neuron": layer.neuron, "step": step})
                self.raster_points[(run, k)] = len(layer.t)

    # -------------------------------------------------------------- building
    def raster_plot(self, run: str, k: int) -> hv.DynamicMap:
        fn = partial(raster_element, run=run, k=k, layers=self.layers, neurons=self.neurons[k], steps=self.time_steps)
        return hv.DynamicMap(fn, streams=[self.rasters[(run, k)]])

    def threshold_plot(self, run: str, k: int) -> hv.DynamicMap:
        fn = partial(threshold_element, run=run, k=k, layers=self.layers, samples=self.samples[k])
        return hv.DynamicMap(fn, streams=[self.metrics])

    def comparison_plot(self, column: str, ylabel: str, title: str):
        """``column`` of every run on one axis."""
        def overlay(data):
            return hv.Overlay([run_curve(data, run, column, ylabel) for run in self.runs]).opts(
                title=title, legend_position="bottom_right", **PLOT)
        return hv.DynamicMap(overlay, streams=[self.metrics])

    def _per_run_grid(self, build) -> hv.Layout:
        """Rows of layers, one column per run (Rouser | fixed), axes linked within a layer."""
        return hv.Layout([build(run, k) for k in range(self.layers) for run in self.runs]).cols(len(self.runs))

    def _per_layer(self, column: str, ylabel: str, what: str) -> hv.Layout:
        return hv.Layout([self.comparison_plot(f"{column}_{k}", ylabel, f"{what} · {layer_label(k, self.layers)}")
                          for k in range(self.layers)]).cols(self.layers)

    def __panel__(self):
        if self._view is None:
            pane = partial(pn.pane.HoloViews, linked_axes=False, sizing_mode="fixed")  # links stay inside a Layout
            heading = partial(pn.pane.HTML, sizing_mode="stretch_width", margin=(10, 10, 0, 10),
                              styles={"font-weight": "600", "font-size": "14px"})
            self._view = pn.Column(
                pn.Row(
                    pn.Column(heading("Spike rasters of one fixed test sample"), pane(self._per_run_grid(self.raster_plot))),
                    pn.Column(heading("Thresholds (Figs. 7-8): mean, min-max band, 8 sample neurons (grey)"),
                              pane(self._per_run_grid(self.threshold_plot))),
                ),
                pn.Row(
                    pn.Column(heading("Active neurons per layer (Fig. 10)"),
                              pane(self._per_layer("active", "active fraction", "active"))),
                    pn.Column(heading("Spikes, % of the maximum (Fig. 9)"),
                              pane(self._per_layer("spike", "spikes %", "spikes"))),
                ),
                pn.Row(
                    pn.Column(heading("Loss and accuracy"),
                              pane(hv.Layout([self.comparison_plot("loss", "van Rossum loss", "loss"),
                                              self.comparison_plot("accuracy", "train accuracy", "batch accuracy")]))),
                ),
                css_classes=["rouser-live-plots"],
            )
        return self._view
