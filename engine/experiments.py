"""Reproductions of the paper's experiments (section 4): sweeps of training runs, their tables and figures.

Every experiment is a set of runs (one `RunSpec` each: Th_init, tau, s, threshold learning rate, weight
normalisation, seed) trained under a `Budget`, then read back from the runs' histories. Runs live in
``OUT/<dataset>-<budget>/runs/<run name>/`` with ``summary.json`` as their done-marker, so experiments share
runs (the Rouser-vs-fixed runs of ``suboptimal`` also feed ``dead-neurons``, ``spike-rate``, ``weight-change``,
``thresholds`` and ``ablation``) and an interrupted sweep resumes without redoing finished runs (a run cut off
mid-way continues from its last epoch checkpoint). Each experiment writes CSV and JSON numbers and PNG
figures to ``OUT/<dataset>-<budget>/<experiment>/``.

Nothing here is tuned to the result: the settings are the paper's (Table 2) and the numbers are what the
engine measured.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from .checkpoint import CHECKPOINT_NAME
from .config import TrainConfig
from .errors import RouserError

__all__ = ["BUDGETS", "Budget", "EXPERIMENTS", "PAPER", "RunSpec", "SETTINGS", "THRESHOLDS", "Runner",
           "run_experiment", "run_all"]

# Th_init values of the threshold sweep (paper Fig. 3)
THRESHOLDS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
# the two sub-optimal settings (Th_init, tau, s) of paper Table 2 and Figs. 4, 5, 11
SETTINGS = {"A": (1.25, 3.75, 1.5), "B": (0.25, 3.0, 3.0)}
ROUSER_LR_TH = 0.01  # the paper's working threshold learning rate (section 4.2)
ABLATION_LR_TH = (0.0, 0.001, 0.01)
FIG8_THRESHOLDS = (0.0, 0.5, 1.0)  # Rouser started from these Th_init (paper Fig. 8)
METHODS = ("rouser", "fixed", "fixed+wn")

# numbers the paper reports, set beside ours in the JSON outputs and docs/results.md
PAPER = {
    "table1_accuracy": {"nmnist": {"SLAYER": 98.89, "Rouser": 99.21}, "dvs128": {"SLAYER 2.0": 84.72, "Rouser": 86.46},
                        "shd": {"Sparse BP": 77.5, "Rouser": 78.14}},
    "table3_dead_percent": {"fixed": [45.6, 61.8, 76.4], "rouser": [37.1, 15.4, 0.0]},
    "fig3": {"nmnist": {"best_threshold": 1.0, "accuracy_at_best": 96.0, "accuracy_at_0.25": 41.0, "epochs": 10},
             "dvs128": {"best_threshold": 0.75, "accuracy_at_best": 86.0, "accuracy_at_0": 68.0}},
}

# the paper's network for each dataset (used by the `full` budget)
PAPER_PRESET = {"nmnist-sim": "nmnist", "nmnist": "nmnist", "gestures-sim": "dvs128", "dvs128": "dvs128",
                "randman": "shd", "shd": "shd", "patterns": "quick"}

TEST_SUBSET_SEED = 20240  # the fixed test subset of budgets that evaluate on part of the test split


@dataclass(frozen=True)
class Budget:
    """How long each run of an experiment trains. ``preset`` None: the paper's network for the dataset."""

    name: str
    preset: str | None
    epochs: int
    max_batches: int | None  # batches per epoch (None: the whole training split)
    test_samples: int | None  # evaluate on a fixed subset of this many test samples (None: all)
    time_steps: int | None = None  # None: the preset's
    batch_size: int = 32
    weight_scale: float = 1.0  # multiplies the Kaiming std (paper: 1)
    description: str = ""


BUDGETS = {
    "tiny": Budget("tiny", "quick", epochs=2, max_batches=4, test_samples=64, time_steps=40, batch_size=16,
                   description="smoke runs for the tests: 2 epochs x 4 batches of 16, 40 steps"),
    "quick": Budget("quick", "quick", epochs=3, max_batches=40, test_samples=500,
                    description="2 CPU cores: `quick` network (one hidden layer of 64), 60 steps, "
                                "3 epochs x 40 batches of 32, 500 test samples"),
    "full": Budget("full", None, epochs=10, max_batches=None, test_samples=None,
                   description="the paper's network for the dataset (NMNIST 2312-500-500-10, 300 steps), "
                               "10 epochs over the whole training split, whole test split"),
}


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep."""

    th_init: float
    tau: float
    scale: float
    lr_th: float
    weight_norm: bool
    seed: int

    @property
    def method(self) -> str:
        if self.lr_th > 0:
            return "rouser"
        return "fixed+wn" if self.weight_norm else "fixed"

    @property
    def name(self) -> str:
        wn = "_wn" if self.weight_norm else ""
        return f"th{self.th_init:g}_tau{self.tau:g}_s{self.scale:g}_lrth{self.lr_th:g}{wn}_seed{self.seed}"


def setting_spec(setting: str, method: str, seed: int, lr_th: float | None = None) -> RunSpec:
    th, tau, s = SETTINGS[setting]
    if lr_th is None:
        lr_th = ROUSER_LR_TH if method == "rouser" else 0.0
    return RunSpec(th, tau, s, lr_th, method == "fixed+wn", seed)


def sweep_spec(th: float, method: str, seed: int) -> RunSpec:
    _, tau, s = SETTINGS["A"]  # Fig. 3 varies Th only; tau and s as in Table 2's first setting
    return RunSpec(th, tau, s, ROUSER_LR_TH if method == "rouser" else 0.0, False, seed)


# ---------------------------------------------------------------------------------------------- running
@dataclass
class RunResult:
    spec: RunSpec
    summary: dict
    history: list[dict]
    trained: bool  # False when read back from a finished run folder

    @property
    def epochs(self) -> list[dict]:
        return [r for r in self.history if r["kind"] == "epoch"]

    @property
    def batches(self) -> list[dict]:
        return [r for r in self.history if r["kind"] == "batch"]

    @property
    def failed(self) -> bool:
        return self.summary.get("status") == "error"


class Runner:
    """Trains (or reads back) the runs of one dataset under one budget, each in its own folder."""

    def __init__(self, dataset: str, budget: Budget, out: str | Path, data_root: str | None = None,
                 quiet: bool = False, log: Callable[[str], None] | None = None, jobs: int = 1):
        self.jobs = max(1, int(jobs))
        self.out = Path(out)
        self.dataset_name = dataset
        self.budget = budget
        self.root = Path(out) / f"{dataset}-{budget.name}"
        self.runs_dir = self.root / "runs"
        self.data_root = data_root
        self.quiet = quiet
        self.log = log or (lambda m: None if quiet else print(m, file=sys.stderr, flush=True))
        self._dataset = None
        self.trained = 0
        self.skipped = 0
        self.used: set[RunSpec] = set()  # runs an experiment asked for (reset by run_experiment)
        self.seconds: dict[RunSpec, float] = {}  # training time of each run, from its summary

    def config(self, spec: RunSpec) -> TrainConfig:
        b = self.budget
        return TrainConfig(
            dataset=self.dataset_name, data_root=self.data_root, preset=b.preset or PAPER_PRESET.get(self.dataset_name, "quick"),
            th_init=spec.th_init, tau=spec.tau, scale=spec.scale, lr_th=spec.lr_th, weight_norm=spec.weight_norm,
            seed=spec.seed, epochs=b.epochs, max_batches=b.max_batches, time_steps=b.time_steps,
            batch_size=b.batch_size, weight_scale=b.weight_scale, device="auto",
        ).validate()

    def dataset(self, config: TrainConfig):
        """The dataset, loaded once, on the run grid, with the budget's fixed test subset."""
        if self._dataset is None:
            from .data.base import SpikeDataset
            from .train import prepare_dataset

            ds = prepare_dataset(config)
            n = self.budget.test_samples
            if n is not None and n < len(ds.test):
                keep = np.sort(np.random.default_rng(TEST_SUBSET_SEED).permutation(len(ds.test))[:n])
                ds = SpikeDataset(ds.name, ds.train, ds.test.subset(keep), ds.num_classes, ds.input_shape, ds.bin_ms,
                                  ds.class_names)
            self._dataset = ds
        return self._dataset

    def is_done(self, spec: RunSpec) -> bool:
        return (self.runs_dir / spec.name / "summary.json").exists()

    def run(self, spec: RunSpec, label: str = "") -> RunResult:
        """Train the run, or read it back when its folder holds a finished one."""
        folder = self.runs_dir / spec.name
        config = self.config(spec)
        expected = _comparable(config.to_dict())
        if (folder / "summary.json").exists():
            summary = json.loads((folder / "summary.json").read_text())
            if _comparable(summary.get("config", {})) != expected:
                raise RouserError(f"{folder} holds a finished run with other settings; use another --out or delete it")
            self.skipped += 1
            self.seconds[spec] = float(summary.get("seconds") or 0.0)
            return RunResult(spec, summary, _read_history(folder), trained=False)
        from .train import Trainer

        resume = folder if (folder / CHECKPOINT_NAME).exists() else None
        if resume is not None:
            from .checkpoint import load_checkpoint

            if _comparable(load_checkpoint(folder)["config"]) != expected:
                raise RouserError(f"{folder} holds a partial run with other settings; use another --out or delete it")
        trainer = Trainer(config, dataset=self.dataset(config), out=folder, resume=resume, name=spec.method)
        summary, error = None, None
        bar = _bar(label or spec.name, self.quiet)
        try:
            for event in trainer.events():
                if event.kind == "start":
                    bar.reset(total=(config.epochs - event.data["epoch"]) * event.data["num_batches"])
                elif event.kind == "batch":
                    bar.set_postfix_str(f"epoch {event.data['epoch']} acc {event.data['train_accuracy']:.2f}", refresh=False)
                    bar.update(1)
                elif event.kind == "end":
                    summary = event.data
                elif event.kind == "error":
                    error = event.data["message"]
        finally:
            bar.close()
        if error is not None:  # a diverged run is an outcome to report, not to retry
            summary = trainer.summary("error", 0.0) | {"message": error}
            self.log(f"  {spec.name}: {error}")
        elif summary is None or summary.get("status") != "finished":
            raise RouserError(f"run {spec.name} stopped before the end; run the command again to resume it")
        summary["spec"] = asdict(spec)
        self.seconds[spec] = float(summary.get("seconds") or 0.0)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2))
        self.trained += 1
        return RunResult(spec, summary, list(trainer.history), trained=True)

    def train_in_parallel(self, specs: list[RunSpec]) -> None:
        """Train the unfinished runs among ``specs`` in ``jobs`` worker processes, dividing the CPU threads."""
        pending = [spec for spec in specs if not self.is_done(spec)]
        if self.jobs < 2 or len(pending) < 2:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, torch.get_num_threads() // self.jobs)
        args = [(self.dataset_name, self.budget, str(self.out), self.data_root, spec, threads) for spec in pending]
        self.log(f"training {len(pending)} runs in {self.jobs} processes")
        with ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_train_one, args))

    def run_all(self, specs: Iterable[tuple[RunSpec, str]], title: str) -> dict[RunSpec, RunResult]:
        """Run every spec (skipping finished ones), printing one progress line per run."""
        specs = list(dict.fromkeys(specs))
        unique = list(dict.fromkeys(s for s, _ in specs))
        results: dict[RunSpec, RunResult] = {}
        self.used.update(unique)
        self.train_in_parallel(unique)
        for k, spec in enumerate(unique, 1):
            done = self.is_done(spec)
            self.log(f"[{title} {k}/{len(unique)}] {self.dataset_name} {spec.method:<8} {spec.name}"
                     + (" (done, skipped)" if done else ""))
            results[spec] = self.run(spec, f"{k}/{len(unique)} {spec.method}")
        return results


def _train_one(args) -> None:
    """A worker process's part of `Runner.train_in_parallel`: train one run into its folder."""
    dataset, budget, out, data_root, spec, threads = args
    torch.set_num_threads(threads)
    Runner(dataset, budget, out, data_root, quiet=True).run(spec)


def _comparable(config: dict) -> dict:
    """The settings that decide a run's outcome (not where the data lives or which device ran it)."""
    return {k: v for k, v in config.items() if k not in ("data_root", "device", "raster_every")}


def _read_history(folder: Path) -> list[dict]:
    path = folder / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _NoBar:
    def reset(self, total=None): ...
    def set_postfix_str(self, *a, **k): ...
    def update(self, n=1): ...
    def close(self): ...


def _bar(desc: str, quiet: bool):
    if quiet:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=0, desc=desc, unit="batch", leave=False, file=sys.stderr)


# ---------------------------------------------------------------------------------------------- statistics
def _stats(values: Iterable[float]) -> dict:
    """mean, std, min, max and n of the finite values (None when there are none)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return dict(mean=None, std=None, min=None, max=None, n=0)
    return dict(mean=float(v.mean()), std=float(v.std()), min=float(v.min()), max=float(v.max()), n=int(v.size))


def _band(series: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, mean, min, max over seeds of equally indexed series (cut to the shortest)."""
    n = min((len(s) for s in series), default=0)
    a = np.array([s[:n] for s in series], dtype=float).reshape(len(series), n)
    x = np.arange(1, n + 1)
    if a.size == 0:
        return x, np.zeros(0), np.zeros(0), np.zeros(0)
    return x, np.nanmean(a, 0), np.nanmin(a, 0), np.nanmax(a, 0)


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        acc = acc[-window:]
        out.append(sum(acc) / len(acc))
    return out


def _first_reaching(values: list[float], target: float) -> int | None:
    """1-based index of the first value >= target, or None."""
    return next((k for k, v in enumerate(values, 1) if v is not None and v >= target), None)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def _write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def _layers(result: RunResult) -> int:
    return len(result.summary.get("sizes", [0, 0])) - 1


def _epoch_series(result: RunResult, key: str) -> list[float]:
    return [r[key] for r in result.epochs]


def _batch_series(result: RunResult, key: str, layer: int | None = None) -> list[float]:
    if layer is None:
        return [r[key] for r in result.batches]
    return [r["layers"][layer][key] for r in result.batches]


def _layer_names(n: int) -> list[str]:
    return [f"layer {k + 1}" + (" (output)" if k == n - 1 else "") for k in range(n)]


# ---------------------------------------------------------------------------------------------- experiments
@dataclass
class Context:
    runner: Runner
    seeds: tuple[int, ...]
    folder: Path  # this experiment's output folder
    figures: list[str]
    files: list[str]
    thresholds: tuple[float, ...] = THRESHOLDS  # Th_init values of the sweep

    @property
    def fig8_starts(self) -> tuple[float, ...]:
        """Th_init values of Fig. 8 (0, 0.5, 1), or the sweep's first three when the sweep leaves them out."""
        return tuple(th for th in FIG8_THRESHOLDS if th in self.thresholds) or self.thresholds[:3]

    @property
    def dataset(self) -> str:
        return self.runner.dataset_name

    def csv(self, name: str, rows: list[dict]) -> None:
        self.files.append(str(_write_csv(self.folder / name, rows)))

    def figure(self, name: str, draw: Callable[[Path], None]) -> None:
        path = self.folder / name
        draw(path)
        self.figures.append(str(path))


def _setting_runs(ctx: Context, methods: tuple[str, ...], title: str) -> dict[tuple[str, str], list[RunResult]]:
    """Runs of each (setting, method) over the seeds."""
    specs = [(setting_spec(st, m, seed), m) for st in SETTINGS for m in methods for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, title)
    return {(st, m): [results[setting_spec(st, m, seed)] for seed in ctx.seeds] for st in SETTINGS for m in methods}


def _setting_label(setting: str) -> str:
    th, tau, s = SETTINGS[setting]
    return f"(Th_init, tau, s) = ({th:g}, {tau:g}, {s:g})"


def exp_threshold_sweep(ctx: Context) -> dict:
    """Fig. 3: final test accuracy for a range of fixed thresholds, and Rouser started from each."""
    specs = [(sweep_spec(th, m, seed), m) for th in ctx.thresholds for m in ("fixed", "rouser") for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, "threshold-sweep")
    rows, table = [], {}
    for m in ("fixed", "rouser"):
        for th in ctx.thresholds:
            accs = []
            for seed in ctx.seeds:
                r = results[sweep_spec(th, m, seed)]
                acc = r.summary.get("test_accuracy")
                accs.append(acc)
                dead = (r.epochs[-1]["dead_percent"] if r.epochs else [None])
                rows.append(dict(method=m, th_init=th, seed=seed, status=r.summary.get("status"),
                                 epochs=len(r.epochs), test_accuracy=acc,
                                 train_accuracy=r.summary.get("train_accuracy"),
                                 output_dead_percent_last_epoch=dead[-1],
                                 output_threshold_mean=(r.summary.get("thresholds") or [{}])[-1].get("mean")))
            table.setdefault(m, {})[f"{th:g}"] = _stats(accs)
    ctx.csv("threshold_sweep.csv", rows)
    best = {}
    for m in table:
        means = {th: s["mean"] for th, s in table[m].items() if s["mean"] is not None}
        if means:
            th = max(means, key=means.get)
            best[m] = dict(th_init=float(th), test_accuracy=means[th])

    def draw(path):
        from .figures import plot_threshold_sweep

        plot_threshold_sweep(path, ctx.thresholds, table, ctx.dataset, len(ctx.seeds))

    ctx.figure("threshold_sweep.png", draw)
    return dict(accuracy=table, best=best, tau=SETTINGS["A"][1], scale=SETTINGS["A"][2], paper=PAPER["fig3"])


def exp_suboptimal(ctx: Context) -> dict:
    """Figs. 4-5: Rouser vs fixed threshold vs fixed threshold with weight normalisation at the two settings."""
    runs = _setting_runs(ctx, METHODS, "suboptimal")
    epoch_rows, batch_rows, summary = [], [], {}
    window = 10
    for (st, m), group in runs.items():
        for r in group:
            for e in r.epochs:
                epoch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, epoch=e["epoch"],
                                       test_accuracy=e["test_accuracy"], train_accuracy=e["train_accuracy"],
                                       test_loss=e["test_loss"]))
            smooth = _smooth(_batch_series(r, "train_accuracy"), window)
            for b, s in zip(r.batches, smooth):
                batch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, step=b["step"], loss=b["loss"],
                                       train_accuracy=b["train_accuracy"], train_accuracy_smoothed=s))
    for st in SETTINGS:
        finals = {m: _stats(r.summary.get("test_accuracy") for r in runs[(st, m)]) for m in METHODS}
        best = max((f["mean"] for f in finals.values() if f["mean"] is not None), default=None)
        target = None if best is None else 0.9 * best
        methods = {}
        for m in METHODS:
            group = runs[(st, m)]
            ep = [_first_reaching(_epoch_series(r, "test_accuracy"), target) if target is not None else None for r in group]
            bt = [_first_reaching(_smooth(_batch_series(r, "train_accuracy"), window), target) if target is not None
                  else None for r in group]
            methods[m] = dict(final_test_accuracy=finals[m],
                              epochs_to_target=dict(per_seed=ep, reached=sum(x is not None for x in ep), stats=_stats(ep)),
                              batches_to_target=dict(per_seed=bt, reached=sum(x is not None for x in bt), stats=_stats(bt)))
        summary[st] = dict(settings=dict(zip(("th_init", "tau", "scale"), SETTINGS[st])), target_accuracy=target,
                           methods=methods)
    ctx.csv("suboptimal_epochs.csv", epoch_rows)
    ctx.csv("suboptimal_batches.csv", batch_rows)

    def draw(path):
        from .figures import plot_suboptimal

        plot_suboptimal(path, runs, SETTINGS, METHODS, window, ctx.dataset, len(ctx.seeds))

    ctx.figure("suboptimal.png", draw)
    return dict(settings=summary, target_rule="target = 0.9 x the best method's mean final test accuracy at that "
                "setting; batches counted on the train accuracy smoothed over 10 batches", smoothing_window=window)


def exp_dead_neurons(ctx: Context) -> dict:
    """Table 3 and Fig. 10: dead neurons per layer per epoch, and active neurons per batch."""
    runs = _setting_runs(ctx, METHODS, "dead-neurons")
    epoch_rows, batch_rows, table = [], [], {}
    for (st, m), group in runs.items():
        n = _layers(group[0])
        for r in group:
            for e in r.epochs:
                for k, d in enumerate(e["dead_percent"]):
                    epoch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, epoch=e["epoch"], layer=k + 1,
                                           dead_percent=d))
            for b in r.batches:
                for k, lay in enumerate(b["layers"]):
                    batch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, step=b["step"], epoch=b["epoch"],
                                           layer=k + 1, active_percent=100 * lay["active_fraction"],
                                           probe_active_percent=100 * lay.get("probe_active_fraction", float("nan")),
                                           dead_percent_so_far=lay["dead_percent"]))
        per_layer = []
        for k in range(n):
            during = [float(np.mean([e["dead_percent"][k] for e in r.epochs])) for r in group if r.epochs]
            first = [r.epochs[0]["dead_percent"][k] for r in group if r.epochs]
            last = [r.epochs[-1]["dead_percent"][k] for r in group if r.epochs]
            silent_batches = [100 * float(np.mean([b["layers"][k]["active_fraction"] == 0 for b in r.batches]))
                              for r in group if r.batches]
            per_layer.append(dict(layer=k + 1, dead_percent_mean_over_epochs=_stats(during),
                                  dead_percent_first_epoch=_stats(first), dead_percent_last_epoch=_stats(last),
                                  percent_of_batches_layer_silent=_stats(silent_batches)))
        table.setdefault(st, {})[m] = per_layer
    ctx.csv("dead_neurons_epochs.csv", epoch_rows)
    ctx.csv("active_neurons_batches.csv", batch_rows)

    def draw(path):
        from .figures import plot_active

        plot_active(path, runs, SETTINGS, METHODS, ctx.dataset, len(ctx.seeds))

    ctx.figure("active_neurons.png", draw)
    return dict(dead_percent=table, definition="dead: no spike on any training sample of the epoch (Table 3); "
                "active: at least one spike on the batch (Fig. 10)", paper=PAPER["table3_dead_percent"])


def _per_layer_batch_metric(ctx: Context, key: str, csv_name: str, title: str, scale: float = 1.0,
                            methods: tuple[str, ...] = ("rouser", "fixed")) -> tuple[dict, dict]:
    runs = _setting_runs(ctx, methods, title)
    rows, table = [], {}
    for (st, m), group in runs.items():
        n = _layers(group[0])
        for r in group:
            for b in r.batches:
                for k, lay in enumerate(b["layers"]):
                    rows.append(dict(setting=st, method=m, seed=r.spec.seed, step=b["step"], epoch=b["epoch"],
                                     layer=k + 1, **{key: scale * lay[key]}))
        table.setdefault(st, {})[m] = [
            dict(layer=k + 1,
                 first_batch=_stats(scale * r.batches[0]["layers"][k][key] for r in group if r.batches),
                 max=_stats(scale * max(_batch_series(r, key, k)) for r in group if r.batches),
                 last_batch=_stats(scale * r.batches[-1]["layers"][k][key] for r in group if r.batches))
            for k in range(n)]
    ctx.csv(csv_name, rows)
    return runs, table


def exp_spike_rate(ctx: Context) -> dict:
    """Fig. 9: spikes per layer as % of the maximum (T x batch x neurons), over training."""
    runs, table = _per_layer_batch_metric(ctx, "spike_percent", "spike_rate.csv", "spike-rate")

    def draw(path):
        from .figures import plot_per_layer

        plot_per_layer(path, runs, SETTINGS, "spike_percent", 1.0, "spikes (% of max)", ctx.dataset, len(ctx.seeds))

    ctx.figure("spike_rate.png", draw)
    return dict(spike_percent=table, note="measured on the training batches (the paper's Fig. 9 is at inference)")


def exp_weight_change(ctx: Context) -> dict:
    """Fig. 6a: ||W - W0|| / ||W0|| per layer over training."""
    runs, table = _per_layer_batch_metric(ctx, "weight_change", "weight_change.csv", "weight-change")

    def draw(path):
        from .figures import plot_per_layer

        plot_per_layer(path, runs, SETTINGS, "weight_change", 1.0, "||W - W0|| / ||W0||", ctx.dataset, len(ctx.seeds))

    ctx.figure("weight_change.png", draw)
    return dict(weight_change=table, note="Fig. 6a only: the engine logs the distance to the initial weights, "
                "not to the settled (final) weights of Fig. 6b")


def exp_thresholds(ctx: Context) -> dict:
    """Figs. 7-8: Rouser's thresholds per layer over training, from Th_init 0.25 (Fig. 7) and 0, 0.5, 1 (Fig. 8)."""
    specs = [(setting_spec(st, "rouser", seed), st) for st in SETTINGS for seed in ctx.seeds]
    specs += [(sweep_spec(th, "rouser", seed), f"th{th:g}") for th in ctx.fig8_starts for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, "thresholds")
    groups: dict[str, list[RunResult]] = {}
    for spec, label in specs:
        groups.setdefault(label, []).append(results[spec])
    rows, table = [], {}
    for label, group in groups.items():
        n = _layers(group[0])
        for r in group:
            for b in r.batches:
                for k, lay in enumerate(b["layers"]):
                    row = dict(run=label, th_init=r.spec.th_init, tau=r.spec.tau, scale=r.spec.scale, seed=r.spec.seed,
                               step=b["step"], epoch=b["epoch"], layer=k + 1, mean=lay["threshold_mean"],
                               min=lay["threshold_min"], max=lay["threshold_max"])
                    row.update({f"neuron_{j}": v for j, v in enumerate(lay["threshold_sample"])})
                    rows.append(row)
        table[label] = dict(spec=dict(th_init=group[0].spec.th_init, tau=group[0].spec.tau, scale=group[0].spec.scale),
                            final=[dict(layer=k + 1,
                                        mean=_stats(r.summary["thresholds"][k]["mean"] for r in group),
                                        min=_stats(r.summary["thresholds"][k]["min"] for r in group),
                                        max=_stats(r.summary["thresholds"][k]["max"] for r in group))
                                   for k in range(n)])
    ctx.csv("thresholds.csv", rows)

    def draw7(path):
        from .figures import plot_threshold_traces

        plot_threshold_traces(path, groups["B"], f"Rouser thresholds from {_setting_label('B')}", ctx.dataset)

    def draw8(path):
        from .figures import plot_threshold_starts

        plot_threshold_starts(path, {f"Th_init = {th:g}": groups[f"th{th:g}"] for th in ctx.fig8_starts}, ctx.dataset,
                              len(ctx.seeds))

    ctx.figure("thresholds_fig7.png", draw7)
    ctx.figure("thresholds_fig8.png", draw8)
    return dict(final_thresholds=table)


def exp_ablation(ctx: Context) -> dict:
    """Fig. 11: threshold learning rate 0, 0.001, 0.01 from the same initial weights, no weight normalisation."""
    specs = [(setting_spec(st, "rouser" if lr else "fixed", seed, lr_th=lr), f"{st}") for st in SETTINGS
             for lr in ABLATION_LR_TH for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, "ablation")
    runs = {(st, lr): [results[setting_spec(st, "rouser" if lr else "fixed", seed, lr_th=lr)] for seed in ctx.seeds]
            for st in SETTINGS for lr in ABLATION_LR_TH}
    rows, table = [], {}
    for (st, lr), group in runs.items():
        for r in group:
            for e in r.epochs:
                rows.append(dict(setting=st, lr_th=lr, seed=r.spec.seed, epoch=e["epoch"],
                                 test_accuracy=e["test_accuracy"], train_accuracy=e["train_accuracy"],
                                 output_dead_percent=e["dead_percent"][-1]))
        table.setdefault(st, {})[f"{lr:g}"] = dict(
            final_test_accuracy=_stats(r.summary.get("test_accuracy") for r in group),
            output_dead_percent_first_epoch=_stats(r.epochs[0]["dead_percent"][-1] for r in group if r.epochs),
            output_dead_percent_last_epoch=_stats(r.epochs[-1]["dead_percent"][-1] for r in group if r.epochs),
            output_silent_batches_percent=_stats(
                100 * float(np.mean([b["layers"][-1]["active_fraction"] == 0 for b in r.batches])) for r in group
                if r.batches))
    ctx.csv("ablation.csv", rows)

    def draw(path):
        from .figures import plot_ablation

        plot_ablation(path, runs, SETTINGS, ABLATION_LR_TH, ctx.dataset, len(ctx.seeds))

    ctx.figure("ablation.png", draw)
    return dict(ablation=table)


EXPERIMENTS: dict[str, Callable[[Context], dict]] = {
    "threshold-sweep": exp_threshold_sweep,
    "suboptimal": exp_suboptimal,
    "dead-neurons": exp_dead_neurons,
    "spike-rate": exp_spike_rate,
    "weight-change": exp_weight_change,
    "thresholds": exp_thresholds,
    "ablation": exp_ablation,
}


def get_budget(budget: str | Budget) -> Budget:
    if isinstance(budget, Budget):
        return budget
    if budget not in BUDGETS:
        raise RouserError(f"unknown budget {budget!r}; choose one of: {', '.join(BUDGETS)}")
    return BUDGETS[budget]


def run_experiment(name: str, dataset: str = "nmnist-sim", budget: str | Budget = "quick", seeds: int = 1,
                   out: str | Path = "runs/reproduce", data_root: str | None = None, quiet: bool = False,
                   runner: Runner | None = None, thresholds: Iterable[float] | None = None, jobs: int = 1) -> dict:
    """Run (or resume) experiment ``name`` and write its CSV, JSON and PNG files; returns the JSON written."""
    if name not in EXPERIMENTS:
        raise RouserError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}, all, report")
    if seeds < 1:
        raise RouserError(f"--seeds must be >= 1, got {seeds}")
    from .data import dataset_names

    if dataset not in dataset_names():
        raise RouserError(f"unknown dataset {dataset!r}; choose one of: {', '.join(dataset_names())}")
    budget = get_budget(budget)
    thresholds = tuple(sorted({float(t) for t in thresholds})) if thresholds is not None else THRESHOLDS
    if not thresholds or not all(math.isfinite(t) for t in thresholds):
        raise RouserError("--thresholds must list at least one finite number, e.g. 0,0.5,1")
    runner = runner or Runner(dataset, budget, out, data_root, quiet, jobs=jobs)
    trained, skipped = runner.trained, runner.skipped
    runner.used = set()
    started = time.perf_counter()
    ctx = Context(runner, tuple(range(seeds)), runner.root / name, [], [], thresholds)
    ctx.folder.mkdir(parents=True, exist_ok=True)
    result = EXPERIMENTS[name](ctx)
    record = dict(experiment=name, dataset=dataset, budget=asdict(budget), seeds=list(ctx.seeds),
                  runs_trained=runner.trained - trained, runs_skipped=runner.skipped - skipped,
                  seconds=round(time.perf_counter() - started, 1),
                  runs=sorted(spec.name for spec in runner.used),
                  train_seconds=round(sum(runner.seconds.get(spec, 0.0) for spec in runner.used), 1), files=ctx.files, figures=ctx.figures, **result)
    json_path = ctx.folder / f"{name.replace('-', '_')}.json"
    record["files"].append(str(json_path))
    _write_json(json_path, record)
    return record


def run_all(dataset: str = "nmnist-sim", budget: str | Budget = "quick", seeds: int = 1, out: str | Path = "runs/reproduce",
            data_root: str | None = None, quiet: bool = False, experiments: Iterable[str] | None = None,
            thresholds: Iterable[float] | None = None, jobs: int = 1) -> dict[str, dict]:
    """Every experiment on one dataset, sharing one runner (and so one loaded dataset)."""
    budget = get_budget(budget)
    runner = Runner(dataset, budget, out, data_root, quiet, jobs=jobs)
    return {name: run_experiment(name, dataset, budget, seeds, out, data_root, quiet, runner, thresholds)
            for name in (experiments or EXPERIMENTS)}


def copy_outputs(record: dict, dest: Path) -> list[Path]:
    """Copy an experiment's figures and tables into ``dest`` (for the results page)."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in record["files"] + record["figures"]:
        target = dest / Path(f).name
        shutil.copyfile(f, target)
        copied.append(target)
    return copied


def budget_with(budget: str | Budget, **changes) -> Budget:
    return replace(get_budget(budget), **changes)
