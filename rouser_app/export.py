"""Export a run (history as CSV or JSON, plots as PNG) and list or reload the runs in the server's runs folder.

The page only ever sees folder names inside the runs folder; every name it sends back is checked against
that folder's listing before anything is read.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import param

from .plots import RUN_COLORS, RUN_LABELS, layer_label
from .settings import Settings

__all__ = ["ExportPanel", "history_frame", "history_csv", "history_json", "history_png", "list_run_folders",
           "folder_listing", "load_run", "folder_zip"]

LAYER_KEYS = ("active_fraction", "probe_active_fraction", "dead_percent", "spike_percent", "threshold_mean",
              "threshold_min", "threshold_max", "weight_change")


# ---------------------------------------------------------------------- history files
def history_frame(histories: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per batch or epoch record of every run; per-layer values as ``L<k>_<name>`` columns."""
    rows = []
    for run, records in histories.items():
        for r in records:
            row = {"run": run, **{k: v for k, v in r.items() if not isinstance(v, (list, dict))}}
            for k, lay in enumerate(r.get("layers", [])):
                row.update({f"L{k + 1}_{key}": lay.get(key) for key in LAYER_KEYS})
                row.update({f"L{k + 1}_threshold_sample_{j}": v for j, v in enumerate(lay.get("threshold_sample", []))})
            for k, dead in enumerate(r.get("dead_percent", []) if r.get("kind") == "epoch" else []):
                row[f"L{k + 1}_dead_percent"] = dead
            for k, th in enumerate(r.get("thresholds", [])):
                row.update({f"L{k + 1}_threshold_{key}": value for key, value in th.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def history_csv(histories: dict[str, list[dict]]) -> str:
    return history_frame(histories).to_csv(index=False)


def history_json(histories: dict[str, list[dict]]) -> str:
    """``{"runs": {name: [records as in history.jsonl]}}``."""
    return json.dumps({"runs": histories}, indent=1)


def history_png(histories: dict[str, list[dict]], title: str = "") -> bytes:
    """The run's plots as one PNG: thresholds, active fraction and spikes per layer, loss and accuracy."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    batches = {run: [r for r in recs if r.get("kind") == "batch"] for run, recs in histories.items()}
    batches = {run: recs for run, recs in batches.items() if recs}
    layers = max((len(recs[0]["layers"]) for recs in batches.values()), default=1)
    cols = max(layers, 2)
    fig = Figure(figsize=(4 * cols, 11), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(4, cols, squeeze=False)
    for ax in grid.flat:
        ax.set_visible(False)
    for run, recs in batches.items():
        color, label = RUN_COLORS.get(run, "black"), RUN_LABELS.get(run, run)
        step = np.array([r["step"] for r in recs])
        for k in range(layers):
            lay = [r["layers"][k] for r in recs]
            name = layer_label(k, layers)
            ax = grid[0, k]
            ax.fill_between(step, [x["threshold_min"] for x in lay], [x["threshold_max"] for x in lay], color=color,
                            alpha=0.15)
            ax.plot(step, [x["threshold_mean"] for x in lay], color=color, label=f"{label} mean")
            ax.set(title=f"thresholds · {name}", xlabel="batch step", ylabel="threshold")
            for row, key, ylabel in ((1, "active_fraction", "active fraction"), (2, "spike_percent", "spikes, % of max")):
                grid[row, k].plot(step, [x[key] for x in lay], color=color, label=label)
                grid[row, k].set(title=f"{ylabel} · {name}", xlabel="batch step", ylabel=ylabel)
        grid[3, 0].plot(step, [r["loss"] for r in recs], color=color, label=label)
        grid[3, 0].set(title="loss", xlabel="batch step", ylabel="van Rossum loss")
        grid[3, 1].plot(step, [r["train_accuracy"] for r in recs], color=color, label=label)
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
def _histories_in(folder: Path) -> dict[str, Path]:
    """run name -> history.jsonl of a run folder (``rouser/``/``fixed/`` of a comparison, or the folder itself)."""
    found = {sub.name: sub / "history.jsonl" for sub in sorted(folder.iterdir())
             if sub.is_dir() and (sub / "history.jsonl").is_file()} if folder.is_dir() else {}
    if not found and (folder / "history.jsonl").is_file():
        summary = _read_summary(folder)
        names = list(summary.get("runs", {})) if summary else []
        found = {names[0] if len(names) == 1 else "rouser": folder / "history.jsonl"}
    return found


def _read_summary(folder: Path) -> dict:
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


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


def load_run(runs_dir: str | Path, name: str) -> tuple[dict[str, list[dict]], list[int] | None, int]:
    """Histories of run folder ``name`` (run -> records), its layer sizes and time steps (from summary.json)."""
    folder = _folder(runs_dir, name)
    histories = {}
    for run, path in _histories_in(folder).items():
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
        histories[run] = records
    summaries = _read_summary(folder).get("runs", {}) or {r: _read_summary(folder / r) for r in histories}
    first = next((s for s in summaries.values() if isinstance(s, dict) and s.get("sizes")), {})
    return histories, first.get("sizes"), int(first.get("time_steps") or 100)


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
            histories, sizes, steps = load_run(self.settings.runs_path, self.folder)
        except (OSError, ValueError) as exc:
            self.message = f"cannot load {self.folder}: {exc}"
            return
        self.run_panel.show_history(histories, sizes, self.folder, steps)
        self.message = f"loaded {self.folder} into the Training tab"

    def _name(self) -> str:
        return self.run_panel.run_folder or "rouser-run"

    def _download(self, kind: str):
        def make():
            histories = self.run_panel.histories
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
