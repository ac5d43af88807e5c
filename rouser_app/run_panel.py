"""Run, Stop and Reset one dashboard run, a status line and progress bar, and the live plots it feeds.

The worker thread (`RunJob`) only queues events; a periodic callback on the page's event loop drains them
into the plots' Buffers and Pipes, the status line and the dead-neuron table.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

import pandas as pd
import panel as pn
import param

from engine.config import ConfigError
from engine.metrics import threshold_sample_indices
from engine.network import get_preset
from engine.train import run_name

from .controls import RunControls, dataset_classes
from .plots import RUN_LABELS, LivePlots, layer_label
from .settings import Settings
from .worker import DATASETS, LIMITER, RunJob, RunLimiter

__all__ = ["RunPanel", "new_run_folder"]


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


def new_run_folder(runs_dir: Path, dataset: str) -> Path:
    """A fresh folder under the server's runs folder: ``<date>-<time>-<dataset>-<random>``."""
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{uuid.uuid4().hex[:6]}"
    return Path(runs_dir) / name


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
        self.live: LivePlots | None = None  # kept between runs to be reused by the next run of the same shape
        self._shown: LivePlots | None = None  # the plots of the run shown now
        self.histories: dict[str, list[dict]] = {}
        self.summaries: dict[str, dict] = {}
        self.errors: list[str] = []
        self.timings: dict[str, float] = {}
        self._callback = None
        self._progress: dict[str, tuple[int, int]] = {}
        self._epochs = 1
        self._start_epoch: dict[str, int] = {}
        self._samples = 0
        self._first_batch_at: float | None = None
        self._pending: dict[str, list[dict]] = {}
        self._pending_rasters: dict[str, tuple[list, int]] = {}
        self._next_plot_at = 0.0
        self._plots_area = pn.Column(self._placeholder(), sizing_mode="stretch_width")
        self._view = None

    @staticmethod
    def _placeholder():
        return pn.pane.Markdown("Press **Run** to train; the plots fill in while it trains.",
                                css_classes=["rouser-plots-placeholder"])

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
        self._epochs = config.epochs
        self.timings = {"run": time.perf_counter()}
        self.running = True
        self.job.start()
        self._update_waiting_status()
        self._start_polling()
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
        self.job = None
        self._shown = None
        self._pending, self._pending_rasters, self._next_plot_at = {}, {}, 0.0
        self.histories, self.summaries, self.errors = {}, {}, []
        self._progress, self._start_epoch = {}, {}
        self._samples, self._first_batch_at = 0, None
        self.progress = 0.0
        self.run_folder = None
        self.dead_table = pd.DataFrame()
        self.status = "ready"
        if self.live is not None:  # keep the rendered plots (rendering costs seconds), just empty them
            self.live.clear()

    def close(self) -> None:
        """The browser session ended: stop its run and its polling."""
        if self.job is not None:
            self.job.stop()
        self._stop_polling()

    def prepare_plots(self) -> bool:
        """Render empty plots for a run with the current settings ahead of time (done once the page has loaded).

        Rendering a dozen plots takes seconds; done while the visitor reads the page, the first run's plots
        fill in as soon as its first batch is trained. A run of another shape builds its own plots.
        """
        if self.running or self.live is not None:
            return False
        try:
            config = self.controls.config()
            classes = dataset_classes(config.dataset, config.data_root)
            preset = get_preset(config.preset)
        except Exception:  # invalid settings or an unlisted dataset: the plots are built when the run starts
            return False
        if not classes:
            return False
        sizes = [*preset.hidden, int(classes)]
        samples = [len(threshold_sample_indices(n)) for n in sizes]
        runs = ["rouser", "fixed"] if self.controls.compare else [run_name(config)]
        self.live = LivePlots(runs, sizes, samples, config.time_steps or preset.time_steps)
        self._plots_area.objects = [self.live.__panel__()]
        return True

    # ------------------------------------------------------------------ polling
    def _start_polling(self) -> None:
        self._stop_polling()
        self._callback = pn.state.add_periodic_callback(self._poll, period=self.poll_ms)

    def _stop_polling(self) -> None:
        if self._callback is not None:
            try:
                self._callback.stop()
            except Exception:  # already stopped with its session
                pass
            self._callback = None

    def _poll(self) -> None:
        self.drain()
        if not self.running:
            self._stop_polling()

    def drain(self, limit: int = 5000, flush: bool = False) -> int:
        """Move the worker's waiting events into the plots, table and status; returns how many were taken.

        Plots are updated at most every ``plot_interval`` seconds (or 3x the last update's cost) and always at
        the end of a run or with ``flush``; the status line follows every call.
        """
        if self.job is None:
            return 0
        events = self.job.drain(limit)
        done = False
        for event in events:
            kind, run, data = event.kind, event.run, event.data
            if kind == "start":
                self._on_start(run, data)
            elif kind == "batch":
                record = {k: v for k, v in data.items() if k != "probe_raster"}
                self.histories.setdefault(run, []).append(record)
                self._pending.setdefault(run, []).append(record)
                if "probe_raster" in data:
                    self._pending_rasters[run] = (data["probe_raster"], data.get("step"))
                self._progress[run] = (data["epoch"], data["batch"], data["num_batches"])
                self._samples += self.job.config.batch_size
                if self._first_batch_at is None:
                    self._first_batch_at = time.perf_counter()
                    self.timings.setdefault("first_batch", self._first_batch_at)
            elif kind == "epoch":
                self.histories.setdefault(run, []).append(dict(data))
            elif kind == "end":
                self.summaries[run] = data
            elif kind == "error":
                self.errors.append(data.get("message", "unknown error") if run == "job" else f"{run}: {data.get('message')}")
            elif kind == "done":
                done = True
        if done or flush or time.perf_counter() >= self._next_plot_at:
            self._update_plots()
        if done:
            self._finish()
        elif events:
            self._update_running_status()
        elif self.job.state == "queued":
            self._update_waiting_status()
        return len(events)

    def _update_plots(self) -> None:
        """Send the pending batches and the latest rasters to the plots (one send per stream) and the table."""
        if not (self._pending or self._pending_rasters):
            return
        began = time.perf_counter()
        with _batched_document_updates():
            if self._shown is not None:
                self._shown.push_batches(self._pending)
                for run, (raster, step) in self._pending_rasters.items():
                    self._shown.push_raster(run, raster, step)
                self.timings.setdefault("first_plot", time.perf_counter())
            self._update_table()
        self._pending, self._pending_rasters = {}, {}
        now = time.perf_counter()
        self._next_plot_at = now + max(self.plot_interval, 3 * (now - began))

    # ------------------------------------------------------------------ event handling
    def _on_start(self, run: str, data: dict) -> None:
        self._start_epoch[run] = data.get("epoch", 0)
        if self._shown is None:
            sizes = data["sizes"][1:]
            samples = [len(ix) for ix in data["threshold_sample_indices"]]
            self._show_plots(self.job.runs, sizes, samples, data["time_steps"])
            self.timings.setdefault("start", time.perf_counter())

    def _show_plots(self, runs, sizes, samples, time_steps) -> None:
        """Plots for a run of this shape: the last ones cleared when they fit (fast), else new ones."""
        if self.live is not None and self.live.matches(runs, sizes, samples, time_steps):
            self.live.clear()
        else:
            self.live = LivePlots(runs, sizes, samples, time_steps)
            self._plots_area.objects = [self.live.__panel__()]
        self._shown = self.live

    def _fraction_done(self) -> float:
        if self.job is None or not self._progress:
            return 0.0
        fractions = []
        for run in self.job.runs:  # the slowest run sets the pace; one without a batch yet is at 0
            epoch, batch, nb = self._progress.get(run, (1, 0, 1))
            first = self._start_epoch.get(run, 0)
            fractions.append(((epoch - 1 - first) * nb + batch) / max(1, (self._epochs - first) * nb))
        return float(min(1.0, max(0.0, min(fractions))))

    def _update_running_status(self) -> None:
        if self.job is None or self.job.stopping:
            return
        self.progress = self._fraction_done()
        if not self._progress:
            self.status = f"running · preparing {self.job.config.dataset}"
            return
        epoch, batch, nb = min(self._progress.values(), key=lambda p: (p[0], p[1]))
        rate = ""
        if self._first_batch_at is not None:
            elapsed = time.perf_counter() - self.timings["run"]
            rate = f" · {self._samples / max(elapsed, 1e-6):.0f} samples/s"
        self.status = f"running · epoch {epoch}/{self._epochs} · batch {batch}/{nb}{rate}"

    def _update_waiting_status(self) -> None:
        if self.job is None:
            return
        position = self.job.queue_position
        if position:
            self.status = (f"queued · the server trains {self.limiter.max_runs} run(s) at once; "
                           f"yours is number {position} in line")
        elif self.job.state == "running" and not self._progress:
            self.status = f"running · loading {self.job.config.dataset}"

    def _update_table(self) -> None:
        rows = {}
        for run in (self.job.runs if self.job else self.histories):
            records = [r for r in self.histories.get(run, []) if r.get("kind") == "batch"]
            if records:
                last = records[-1]
                layers = last["layers"]
                rows[f"{RUN_LABELS.get(run, run)} (epoch {last['epoch']})"] = {
                    layer_label(k, len(layers)): round(lay["dead_percent"], 1) for k, lay in enumerate(layers)}
        self.dead_table = pd.DataFrame.from_dict(rows, orient="index")

    def _finish(self) -> None:
        self.running = False
        if self.errors:
            self.status = f"error: {self.errors[0]}"
        elif any(s.get("status") == "cancelled" for s in self.summaries.values()) or (self.job and self.job.stopping):
            self.status = "stopped"
        else:
            self.progress = 1.0
            accs = [f"{RUN_LABELS.get(r, r)} {100 * s['test_accuracy']:.1f}%" for r, s in self.summaries.items()
                    if s.get("test_accuracy") is not None]
            self.status = "finished" + (f" · test accuracy {', '.join(accs)}" if accs else "")
        self._write_summary()

    def _write_summary(self) -> None:
        """summary.json in the run folder, the same shape as ``rouser train --out``'s."""
        if self.job is None or self.job.out is None or not self.job.out.exists():
            return
        seconds = time.perf_counter() - self.timings.get("run", time.perf_counter())
        result = {"runs": self.summaries, "errors": self.errors, "seconds": round(seconds, 3)}
        try:
            (self.job.out / "summary.json").write_text(json.dumps(result, indent=2))
        except OSError as exc:
            self.errors.append(f"could not write summary.json: {exc.strerror}")

    # ------------------------------------------------------------------ showing a saved run
    def show_history(self, histories: dict[str, list[dict]], sizes: list[int] | None, name: str,
                     time_steps: int = 100) -> None:
        """Show a finished run read back from its folder (no rasters: those are not saved)."""
        if self.running:
            return
        self.reset()
        self.histories = {run: list(records) for run, records in histories.items()}
        batches = {run: [r for r in records if r.get("kind") == "batch"] for run, records in self.histories.items()}
        first = next((b[0] for b in batches.values() if b), None)
        if first is None:
            self.status = f"loaded {name}: no batches recorded"
            return
        layers = first["layers"]
        neurons = sizes[1:] if sizes else [max(1, len(lay.get("threshold_sample", []))) for lay in layers]
        samples = [len(lay.get("threshold_sample", [])) for lay in layers]
        runs = [run for run in ("rouser", "fixed") if run in batches] + [r for r in batches if r not in ("rouser", "fixed")]
        self._show_plots(runs, neurons, samples, time_steps)
        self.live.push_batches({run: batches[run] for run in runs})
        self._update_table()
        self.run_folder = name
        self.progress = 1.0
        self.status = f"loaded {name}"

    # ------------------------------------------------------------------ view
    def __panel__(self):
        if self._view is None:
            run = pn.widgets.Button(label="▶ Run", color="primary", width=100, css_classes=["rouser-run"],
                                    disabled=pn.bind(lambda running, valid: running or not valid,
                                                     self.param.running, self.controls.param.valid))
            stop = pn.widgets.Button(label="■ Stop", color="danger", width=100, css_classes=["rouser-stop"],
                                     disabled=pn.bind(lambda running: not running, self.param.running))
            reset = pn.widgets.Button(label="Reset", width=100, css_classes=["rouser-reset"],
                                      disabled=self.param.running)
            run.on_click(lambda _e: self.start())
            stop.on_click(lambda _e: self.stop())
            reset.on_click(lambda _e: self.reset())
            status = pn.pane.Str(self.param.status, css_classes=["rouser-status"],
                                 styles={"font-size": "15px", "font-family": "monospace"}, sizing_mode="stretch_width")
            progress = pn.indicators.Progress(value=pn.bind(lambda p: int(round(1000 * p)), self.param.progress),
                                              max=1000, sizing_mode="stretch_width", height=14,
                                              css_classes=["rouser-progress"])
            table = pn.pane.DataFrame(self.param.dead_table, css_classes=["rouser-dead-table"], sizing_mode="fixed",
                                      float_format=lambda v: f"{v:.1f}%")
            self._view = pn.Column(
                pn.Row(run, stop, reset, status, sizing_mode="stretch_width"),
                progress,
                pn.Row(pn.Column(pn.pane.HTML("Dead neurons, % of each layer: no spike so far this epoch (Table 3)",
                                              styles={"font-weight": "600", "font-size": "14px"}), table)),
                self._plots_area,
                sizing_mode="stretch_width",
            )
        return self._view
