"""Run, Stop and Reset one dashboard run, a status line and progress bar, and the live plots it feeds.

The worker thread (`RunJob`) only queues events; a periodic callback on the page's event loop applies them to
a `RunState` and pushes what is new to the plots' Buffers and Pipes, the status line and the dead-neuron table.
"""

from __future__ import annotations

import contextlib
import time

import pandas as pd
import panel as pn
import param

from engine.config import ConfigError
from engine.metrics import threshold_sample_indices
from engine.network import get_preset
from engine.records import BatchRecord, LayerRaster, RunStart, RunState
from engine.train import run_name, run_time_steps

from .controls import RunControls, dataset_classes
from .export import SavedRun, new_run_folder
from .plots import RUN_LABELS, LivePlots, dead_frame, history_shape
from .serving import browser_gone
from .settings import Settings
from .worker import DATASETS, LIMITER, RunJob, RunLimiter

__all__ = ["RunPanel"]


@contextlib.contextmanager
def _batched_document_updates():
    """Update many plots as one change: Bokeh re-indexes the page's models once (not once per plot, which
    costs ~0.2 s each on a full page) and Panel sends one message."""
    doc = pn.state.curdoc
    if doc is None:
        yield
        return
    with doc.models.freeze(), pn.io.hold(doc):
        yield


def running_status(state: RunState, dataset: str, seconds: float) -> str:
    """The status line while training: the slowest run's epoch and batch, and samples/s over ``seconds``."""
    p = state.slowest
    if p is None:
        return f"running · preparing {dataset}"
    rate = state.samples / max(seconds, 1e-6)
    return f"running · epoch {p.epoch}/{p.epochs} · batch {p.batch}/{p.num_batches} · {rate:.0f} samples/s"


def waiting_status(job: RunJob, max_runs: int, state: RunState) -> str | None:
    """The status line before the first batch: the job's place in the server's queue, or loading its data."""
    if job.queue_position:
        return f"queued · the server trains {max_runs} run(s) at once; yours is number {job.queue_position} in line"
    if job.state == "running" and state.slowest is None:
        return f"running · loading {job.config.dataset}"
    return None


def final_status(state: RunState, stopped: bool) -> str:
    """The status line once the job is done: its first error, stopped, or each run's test accuracy."""
    if state.errors:
        return f"error: {state.errors[0]}"
    if state.cancelled or stopped:
        return "stopped"
    accs = [f"{RUN_LABELS.get(r, r)} {100 * s.test_accuracy:.1f}%" for r, s in state.summaries.items()
            if s.test_accuracy is not None]
    return "finished" + (f" · test accuracy {', '.join(accs)}" if accs else "")


def plot_shape(start: RunStart) -> tuple[list[int], list[int], int]:
    """(neurons, threshold samples, time steps) per spiking layer of a starting run."""
    return list(start.sizes[1:]), [len(ix) for ix in start.threshold_sample_indices], start.time_steps


def planned_plots(controls: RunControls) -> tuple | None:
    """(runs, neurons, samples, time steps) of a run with the controls' settings; None when they are invalid."""
    try:
        config = controls.config()
        classes = dataset_classes(config.dataset, config.data_root)
        sizes = [*get_preset(config.preset).hidden, int(classes)]
    except Exception:  # invalid settings or an unlisted dataset: the plots are built when the run starts
        return None
    runs = ["rouser", "fixed"] if controls.compare else [run_name(config)]
    return (runs, sizes, [len(threshold_sample_indices(n)) for n in sizes], run_time_steps(config)) if classes else None


class RunPanel(pn.viewable.Viewer):
    """One browser session's runs: starts a `RunJob` from the controls and shows it live."""

    controls = param.ClassSelector(class_=RunControls)
    settings = param.ClassSelector(class_=Settings, default=Settings())
    limiter = param.ClassSelector(class_=RunLimiter, default=None, allow_None=True,
                                  doc="server-wide cap on concurrent runs (None: the module's LIMITER)")
    status = param.String("ready", doc="what is happening, in one line")
    progress = param.Number(0.0, bounds=(0, 1), doc="fraction of the run's batches done")
    running = param.Boolean(False, doc="a run is training or waiting for a slot")
    poll_ms = param.Integer(250, bounds=(20, 5000), doc="how often the page drains the worker's events (ms)")
    plot_interval = param.Number(0.5, bounds=(0, None), doc="least seconds between plot updates; more when an "
                                 "update is slow (3x its cost), so plotting never takes more than a third of a core")
    run_folder = param.String(None, allow_None=True, doc="name (inside the runs folder) of the current run's folder")
    dead_table = param.DataFrame(default=pd.DataFrame(), doc="dead neurons per layer and run, % (Table 3)")

    def __init__(self, **params):
        if "controls" not in params:
            params["controls"] = RunControls(settings=params.get("settings", Settings()))
        super().__init__(**params)
        if self.limiter is None:
            self.limiter = LIMITER
        self.job: RunJob | None = None
        self.state = RunState()  # what the shown run's events have said so far
        self.live: LivePlots | None = None  # kept between runs to be reused by the next run of the same shape
        self._shown: LivePlots | None = None  # the plots of the run shown now
        self.timings: dict[str, float] = {}
        self._callback = None
        self._pushed: dict[str, int] = {}  # history records of each run already sent to the plots
        self._rasters: dict[str, tuple[tuple[LayerRaster, ...], int]] = {}  # latest unsent raster and its step
        self._next_plot_at = 0.0
        self._plots_area = pn.Column(pn.pane.Markdown("Press **Run** to train; the plots fill in while it trains.",
                                                      css_classes=["rouser-plots-placeholder"]),
                                     sizing_mode="stretch_width")
        self._view = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> bool:
        """Start a run from the controls; False (and a status message) when a value is invalid or one runs."""
        if self.running:
            return False
        try:
            config = self.controls.config()
        except ConfigError as exc:
            self.status = f"invalid setting: {exc}"
            return False
        self.reset()
        folder = new_run_folder(self.settings.runs_path, config.dataset)
        self.run_folder = folder.name
        self.job = RunJob(config, compare=self.controls.compare, out=folder, limiter=self.limiter, cache=DATASETS)
        self.state = RunState(runs=tuple(self.job.runs))
        self.timings = {"run": time.perf_counter()}
        self.running = True
        self.job.start()
        self._update_waiting_status()
        self._stop_polling()  # a callback left by a run whose end was drained by hand
        self._callback = pn.state.add_periodic_callback(self._poll, period=self.poll_ms)
        return True

    def stop(self) -> None:
        """Ask the run to stop before its next batch (a queued run is withdrawn at once)."""
        if self.job is not None and not self.job.done:
            self.job.stop()
            self.status = "stopping…"

    def reset(self) -> None:
        """Clear the plots, the table and the status (only when nothing is running)."""
        if self.running:
            return
        self.job, self._shown, self.state = None, None, RunState()
        self._pushed, self._rasters, self._next_plot_at = {}, {}, 0.0
        self.progress, self.run_folder, self.dead_table, self.status = 0.0, None, pd.DataFrame(), "ready"
        if self.live is not None:  # keep the rendered plots (rendering costs seconds), just empty them
            self.live.clear()

    def close(self) -> None:
        """The browser session ended: stop its run and its polling."""
        if self.job is not None:
            self.job.stop()
        self._stop_polling()

    def prepare_plots(self) -> bool:
        """Render empty plots for the current settings once the page has loaded (rendering takes seconds), so the
        first run's plots fill in from its first batch. A run of another shape builds its own plots."""
        plan = None if self.running or self.live is not None else planned_plots(self.controls)
        if plan is None:
            return False
        self.live = LivePlots(*plan)
        self._plots_area.objects = [self.live.__panel__()]
        return True

    # ------------------------------------------------------------------ events
    def _poll(self) -> None:
        if browser_gone():  # the tab closed: stop its run now, send it nothing more (the server frees it later)
            self.close()
            return
        self.drain()
        if not self.running:
            self._stop_polling()

    def _stop_polling(self) -> None:
        if self._callback is not None:
            with contextlib.suppress(Exception):  # already stopped with its session
                self._callback.stop()
            self._callback = None

    def drain(self, limit: int = 5000, flush: bool = False) -> int:
        """Apply the worker's waiting events to the state and status; returns how many were taken.

        Plots are updated at most every ``plot_interval`` seconds (or 3x the last update's cost) and always at
        the end of a run or with ``flush``; the status line follows every call.
        """
        if self.job is None:
            return 0
        events = self.job.drain(limit)
        for event in events:
            self.state.apply(event)
            if isinstance(event.record, RunStart) and self._shown is None:
                self._show_plots(self.job.runs, *plot_shape(event.record))
                self.timings.setdefault("start", time.perf_counter())
            elif isinstance(event.record, BatchRecord):
                self.timings.setdefault("first_batch", time.perf_counter())
                if event.raster is not None:
                    self._rasters[event.run] = (event.raster, event.record.step)
        if self.state.done or flush or time.perf_counter() >= self._next_plot_at:
            self._update_plots()
        if self.state.done:
            self._finish()
        elif events:
            self._update_running_status()
        elif self.job.state == "queued":
            self._update_waiting_status()
        return len(events)

    def _show_plots(self, runs, sizes, samples, time_steps) -> None:
        """Plots for a run of this shape: the last ones cleared when they fit (fast), else new ones."""
        if self.live is not None and self.live.matches(runs, sizes, samples, time_steps):
            self.live.clear()
        else:
            self.live = LivePlots(runs, sizes, samples, time_steps)
            self._plots_area.objects = [self.live.__panel__()]
        self._shown = self.live

    def _update_plots(self) -> None:
        """Send the batches not yet shown and the latest rasters to the plots (one send per stream), and the table."""
        histories = self.state.histories
        new = {run: [r for r in recs[self._pushed.get(run, 0):] if isinstance(r, BatchRecord)]
               for run, recs in histories.items()}
        if not (any(new.values()) or self._rasters):
            return
        began = time.perf_counter()
        with _batched_document_updates():
            if self._shown is not None:
                self._shown.push_batches(new)
                for run, (raster, step) in self._rasters.items():
                    self._shown.push_raster(run, raster, step)
                self.timings.setdefault("first_plot", time.perf_counter())
            self.dead_table = dead_frame(self.state)
        self._pushed, self._rasters = {run: len(recs) for run, recs in histories.items()}, {}
        now = time.perf_counter()
        self._next_plot_at = now + max(self.plot_interval, 3 * (now - began))

    # ------------------------------------------------------------------ status line
    def _update_running_status(self) -> None:
        if self.job is not None and not self.job.stopping:
            self.progress = self.state.fraction_done
            self.status = running_status(self.state, self.job.config.dataset, time.perf_counter() - self.timings["run"])

    def _update_waiting_status(self) -> None:
        if self.job is not None:
            self.status = waiting_status(self.job, self.limiter.max_runs, self.state) or self.status

    def _finish(self) -> None:
        self.running = False
        self.status = final_status(self.state, self.job.stopping)
        if self.status.startswith("finished"):
            self.progress = 1.0

    def show_history(self, saved: SavedRun, name: str) -> None:
        """Show a finished run read back from its folder, with its latest probe rasters when they were saved."""
        if self.running:
            return
        self.reset()
        shape = history_shape(saved.histories, saved.sizes)
        if shape is None:
            self.status = f"loaded {name}: no batches recorded"
            return
        runs, neurons, samples = shape
        self.state = RunState(runs=tuple(runs), histories={run: list(saved.histories[run]) for run in runs})
        self._show_plots(runs, neurons, samples, saved.time_steps)
        self._rasters = {run: raster for run, raster in saved.rasters.items() if run in runs}
        self._update_plots()
        self.run_folder, self.progress, self.status = name, 1.0, f"loaded {name}"

    def __panel__(self):
        if self._view is None:
            self._view = layout(self)
        return self._view


def layout(panel: RunPanel) -> pn.Column:
    """Run, Stop and Reset beside the status line, the progress bar, the dead-neuron table and the plots."""
    def button(label, name, action, disabled, **kw):
        widget = pn.widgets.Button(label=label, width=100, css_classes=[f"rouser-{name}"], disabled=disabled, **kw)
        widget.on_click(lambda _e: action())
        return widget
    running = panel.param.running
    run = button("▶ Run", "run", panel.start, pn.bind(lambda r, valid: r or not valid, running,
                                                      panel.controls.param.valid), color="primary")
    stop = button("■ Stop", "stop", panel.stop, pn.bind(lambda r: not r, running), color="danger")
    reset = button("Reset", "reset", panel.reset, running)
    status = pn.pane.Str(panel.param.status, css_classes=["rouser-status"],
                         styles={"font-size": "15px", "font-family": "monospace"}, sizing_mode="stretch_width")
    progress = pn.indicators.Progress(value=pn.bind(lambda p: int(round(1000 * p)), panel.param.progress), max=1000,
                                      sizing_mode="stretch_width", height=14, css_classes=["rouser-progress"])
    table = pn.pane.DataFrame(panel.param.dead_table, css_classes=["rouser-dead-table"], sizing_mode="fixed",
                              float_format=lambda v: f"{v:.1f}%")
    heading = pn.pane.HTML("Dead neurons, % of each layer: no spike so far this epoch (Table 3)",
                           styles={"font-weight": "600", "font-size": "14px"})
    return pn.Column(pn.Row(run, stop, reset, status, sizing_mode="stretch_width"), progress,
                     pn.Row(pn.Column(heading, table)), panel._plots_area, sizing_mode="stretch_width")
