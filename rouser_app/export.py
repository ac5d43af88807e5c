"""Export a run (history as CSV or JSON, plots as PNG) and list or reload the runs in the server's runs folder.

The page only ever sees folder names inside the runs folder; every name it sends back is checked against
that folder's listing before anything is read.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import panel as pn
import param

from engine.records import BatchRecord, HistoryRecord, JobSummary, RunSummary, read_history, read_raster

from .plots import RUN_COLORS, RUN_LABELS, layer_label
from .settings import Settings

__all__ = ["ExportPanel", "history_frame", "history_csv", "history_json", "history_png", "list_run_folders",
           "folder_listing", "load_run", "folder_zip", "new_run_folder", "SavedRun"]

Histories = dict[str, list[HistoryRecord]]  # run name -> its records, as in history.jsonl

LAYER_KEYS = ("active_fraction", "probe_active_fraction", "dead_percent", "spike_percent", "threshold_mean",
              "threshold_min", "threshold_max", "weight_change")


# ---------------------------------------------------------------------- history files
def _row(run: str, r: HistoryRecord) -> dict:
    """One record's columns: its numbers, and per layer ``L<k>_<name>``."""
    row = {"run": run, "kind": r.kind}
    row.update({f.name: getattr(r, f.name) for f in fields(r) if not isinstance(getattr(r, f.name), tuple)})
    if isinstance(r, BatchRecord):
        for k, lay in enumerate(r.layers):
            row.update({f"L{k + 1}_{key}": getattr(lay, key) for key in LAYER_KEYS})
            row.update({f"L{k + 1}_threshold_sample_{j}": v for j, v in enumerate(lay.threshold_sample)})
        return row
    for k, dead in enumerate(r.dead_percent):
        row[f"L{k + 1}_dead_percent"] = dead
    for k, th in enumerate(r.thresholds):
        row.update({f"L{k + 1}_threshold_mean": th.mean, f"L{k + 1}_threshold_min": th.min,
                    f"L{k + 1}_threshold_max": th.max})
    return row


def history_frame(histories: Histories) -> pd.DataFrame:
    """One row per batch or epoch record of every run; per-layer values as ``L<k>_<name>`` columns."""
    return pd.DataFrame([_row(run, r) for run, records in histories.items() for r in records])


def history_csv(histories: Histories) -> str:
    return history_frame(histories).to_csv(index=False)


def history_json(histories: Histories) -> str:
    """``{"runs": {name: [records as in history.jsonl]}}``."""
    return json.dumps({"runs": {run: [r.to_json() for r in records] for run, records in histories.items()}}, indent=1)


def history_png(histories: Histories, title: str = "") -> bytes:
    """The run's plots as one PNG: thresholds, active fraction and spikes per layer, loss and accuracy."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    batches = {run: [r for r in recs if isinstance(r, BatchRecord)] for run, recs in histories.items()}
    batches = {run: recs for run, recs in batches.items() if recs}
    layers = max((len(recs[0].layers) for recs in batches.values()), default=1)
    cols = max(layers, 2)
    fig = Figure(figsize=(4 * cols, 11), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(4, cols, squeeze=False)
    for ax in grid.flat:
        ax.set_visible(False)
    for run, recs in batches.items():
        color, label = RUN_COLORS.get(run, "black"), RUN_LABELS.get(run, run)
        step = np.array([r.step for r in recs])
        for k in range(layers):
            lay = [r.layers[k] for r in recs]
            name = layer_label(k, layers)
            ax = grid[0, k]
            ax.fill_between(step, [x.threshold_min for x in lay], [x.threshold_max for x in lay], color=color,
                            alpha=0.15)
            ax.plot(step, [x.threshold_mean for x in lay], color=color, label=f"{label} mean")
            ax.set(title=f"thresholds · {name}", xlabel="batch step", ylabel="threshold")
            for row, key, ylabel in ((1, "active_fraction", "active fraction"), (2, "spike_percent", "spikes, % of max")):
                grid[row, k].plot(step, [getattr(x, key) for x in lay], color=color, label=label)
                grid[row, k].set(title=f"{ylabel} · {name}", xlabel="batch step", ylabel=ylabel)
        grid[3, 0].plot(step, [r.loss for r in recs], color=color, label=label)
        grid[3, 0].set(title="loss", xlabel="batch step", ylabel="van Rossum loss")
        grid[3, 1].plot(step, [r.train_accuracy for r in recs], color=color, label=label)
        grid[3, 1].set(title="batch accuracy", xlabel="batch step", ylabel="train accuracy")
    for ax in grid.flat:
        if ax.lines:
            ax.set_visible(True)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ---------------------------------------------------------------------- the runs folder
def new_run_folder(runs_dir: Path, dataset: str) -> Path:
    """A fresh folder under the server's runs folder: ``<date>-<time>-<dataset>-<random>``."""
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{uuid.uuid4().hex[:6]}"
    return Path(runs_dir) / name


def _histories_in(folder: Path) -> dict[str, Path]:
    """run name -> history.jsonl of a run folder (``rouser/``/``fixed/`` of a comparison, or the folder itself)."""
    found = {sub.name: sub / "history.jsonl" for sub in sorted(folder.iterdir())
             if sub.is_dir() and (sub / "history.jsonl").is_file()} if folder.is_dir() else {}
    if not found and (folder / "history.jsonl").is_file():
        names = list(_read_summary(folder).runs)
        found = {names[0] if len(names) == 1 else "rouser": folder / "history.jsonl"}
    return found


def _read_summary(folder: Path) -> JobSummary:
    """The folder's summary.json; an empty one when it is missing or unreadable."""
    try:
        return JobSummary.read(folder)
    except (OSError, ValueError, TypeError):
        return JobSummary()


def list_run_folders(runs_dir: str | Path) -> list[str]:
    """Names of the run folders (newest first) in the runs folder that hold a history.jsonl."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and _histories_in(p)]
    return [p.name for p in sorted(folders, key=lambda p: p.stat().st_mtime, reverse=True)]


def _folder(runs_dir: str | Path, name: str) -> Path:
    """The run folder ``name``, only when it is one listed by `list_run_folders` (no paths from the page)."""
    if name not in list_run_folders(runs_dir):
        raise ValueError(f"no run folder named {name!r} in the runs folder")
    return Path(runs_dir) / name


def folder_listing(runs_dir: str | Path, name: str) -> pd.DataFrame:
    """The files of run folder ``name``: path relative to it and size."""
    folder = _folder(runs_dir, name)
    rows = [{"file": str(p.relative_to(folder)), "size": f"{p.stat().st_size / 1024:.1f} KiB"}
            for p in sorted(folder.rglob("*")) if p.is_file()]
    return pd.DataFrame(rows, columns=["file", "size"])


def folder_zip(runs_dir: str | Path, name: str) -> bytes:
    """Run folder ``name`` as a zip (unzip it into a runs folder to load it again)."""
    folder = _folder(runs_dir, name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, Path(name) / p.relative_to(folder))
    return buf.getvalue()


class SavedRun(NamedTuple):
    """A run folder read back: its histories, layer sizes and time steps (from summary.json when there), and each
    run's latest probe raster as (raster, step) when the dashboard saved one."""

    histories: Histories
    sizes: list[int] | None
    time_steps: int
    rasters: dict = {}


def load_run(runs_dir: str | Path, name: str) -> SavedRun:
    """Run folder ``name`` read back (a comparison's runs, or a single run)."""
    folder = _folder(runs_dir, name)
    histories = {run: read_history(path) for run, path in _histories_in(folder).items()}
    summaries: list[RunSummary] = list(_read_summary(folder).runs.values())
    summaries = summaries or [s for run in histories for s in _read_summary(folder / run).runs.values()]
    first = next((s for s in summaries if s.sizes), None)
    rasters = {run: (saved[1], saved[0]) for run, path in _histories_in(folder).items()
               if (saved := read_raster(path.parent)) is not None}
    return SavedRun(histories, list(first.sizes) if first else None, (first and first.time_steps) or 100, rasters)


# ---------------------------------------------------------------------- the panel
def _heading(text: str) -> pn.pane.HTML:
    return pn.pane.HTML(text, styles={"font-weight": "600", "font-size": "14px"}, margin=(10, 10, 0, 10))


class ExportPanel(pn.viewable.Viewer):
    """Downloads of the shown run and the run folders saved on the server, to list, download or reload."""

    run_panel = param.Parameter(doc="the RunPanel whose run is exported and into which saved runs are loaded")
    settings = param.ClassSelector(class_=Settings, default=Settings())
    folder = param.Selector(objects=[], allow_None=True, doc="a run folder in the server's runs folder")
    message = param.String("")

    def __init__(self, **params):
        super().__init__(**params)
        self.refresh()
        self._view = None

    def refresh(self) -> None:
        names = list_run_folders(self.settings.runs_path)
        self.param.folder.objects = names
        if self.folder not in names:
            self.folder = names[0] if names else None

    def load(self) -> None:
        """Show the chosen run folder's history in the dashboard's plots."""
        if self.folder is None:
            self.message = "no saved run to load"
            return
        if self.run_panel.running:
            self.message = "stop the current run before loading a saved one"
            return
        try:
            saved = load_run(self.settings.runs_path, self.folder)
        except (OSError, ValueError) as exc:
            self.message = f"cannot load {self.folder}: {exc}"
            return
        self.run_panel.show_history(saved, self.folder)
        self.message = f"loaded {self.folder} into the Training tab"

    def _name(self) -> str:
        return self.run_panel.run_folder or "rouser-run"

    def _download(self, kind: str):
        def make():
            histories = self.run_panel.state.histories
            if kind == "csv":
                return io.StringIO(history_csv(histories))
            if kind == "json":
                return io.StringIO(history_json(histories))
            return io.BytesIO(history_png(histories, self._name()))
        return make

    @param.depends("folder")
    def _listing(self):
        if self.folder is None:
            return pn.pane.Markdown("No saved runs yet: every run started here is saved in the server's runs folder.")
        try:
            return pn.pane.DataFrame(folder_listing(self.settings.runs_path, self.folder), index=False,
                                     css_classes=["rouser-run-files"])
        except (OSError, ValueError) as exc:
            return pn.pane.Str(str(exc))

    def __panel__(self):
        if self._view is None:
            downloads = []
            for kind, suffix, text in (("csv", "history.csv", "history (CSV)"), ("json", "history.json", "history (JSON)"),
                                       ("png", "plots.png", "plots (PNG)")):
                button = pn.widgets.FileDownload(callback=self._download(kind), filename=f"{self._name()}-{suffix}",
                                                 label=f"Download {text}", width=220,
                                                 css_classes=[f"rouser-download-{kind}"])
                # the file is named after the run shown when it is clicked
                self.run_panel.param.watch(lambda e, b=button, suffix=suffix: setattr(
                    b, "filename", f"{e.new or 'rouser-run'}-{suffix}"), "run_folder")
                downloads.append(button)
            refresh = pn.widgets.Button(label="Refresh list", width=120)
            refresh.on_click(lambda _e: self.refresh())
            load = pn.widgets.Button(label="Load into dashboard", color="primary", width=180,
                                     css_classes=["rouser-load"])
            load.on_click(lambda _e: self.load())
            zipped = pn.widgets.FileDownload(
                callback=lambda: io.BytesIO(folder_zip(self.settings.runs_path, self.folder)) if self.folder else None,
                filename="run.zip", label="Download folder (zip)", width=180)
            self.param.watch(lambda e: setattr(zipped, "filename", f"{e.new}.zip"), "folder")
            self._view = pn.Column(
                _heading("Export the run shown"), pn.Row(*downloads),
                _heading("Saved runs on this server (the runs folder of the server)"),
                pn.Row(pn.widgets.Select.from_param(self.param.folder, name="run folder", width=360), refresh, load,
                       zipped),
                pn.pane.Str(self.param.message),
                self._listing,
                sizing_mode="stretch_width",
            )
        return self._view
