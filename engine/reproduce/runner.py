"""Trains the runs of a sweep, each in its own folder, in one process or a pool of them, resuming what was cut off.

Runs live in ``OUT/<dataset>-<budget>/runs/<run name>/``; a finished one (``summary.json``) is read back, not
trained again, and one cut off mid-way continues from its last epoch checkpoint. Every call that trained
run appends a line to ``OUT/<dataset>-<budget>/wall_time.jsonl``: together, the budget's measured wall time.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ..allocator import keep_freed_memory
from ..checkpoint import CHECKPOINT_NAME
from ..config import TrainConfig
from ..errors import RouserError
from ..records import EventKind, RunState
from .runs import RunResult, is_finished, load_run, save_summary, saved_config
from .specs import PAPER_PRESET, Budget, RunSpec

__all__ = ["NotTrained", "Runner", "WALL_TIME", "read_wall_time"]

TEST_SUBSET_SEED = 20240  # the fixed test subset of budgets that evaluate on part of the test split
WALL_TIME = "wall_time.jsonl"


class NotTrained(RouserError):
    """A read-only runner was asked for a run that has not finished."""


class Runner:
    """Trains (or reads back) the runs of one dataset under one budget. ``train=False``: read back only."""

    def __init__(self, dataset: str, budget: Budget, out: str | Path, data_root: str | None = None,
                 quiet: bool = False, log: Callable[[str], None] | None = None, jobs: int = 1, train: bool = True):
        self.jobs = max(1, int(jobs))
        self.out = Path(out)
        self.dataset_name = dataset
        self.budget = budget
        self.root = self.out / f"{dataset}-{budget.name}"
        self.runs_dir = self.root / "runs"
        self.data_root = data_root
        self.quiet = quiet
        self.train = train
        self.log = log or (lambda m: None if quiet else print(m, file=sys.stderr, flush=True))
        self._dataset = None
        self.trained = 0
        self.skipped = 0
        self.used: set[RunSpec] = set()  # runs an experiment asked for (reset by run_experiment)
        self.seconds: dict[RunSpec, float] = {}  # training time of each run, from its summary
        self._mark = time.perf_counter()  # when the last wall_time.jsonl line was written

    @property
    def preset(self) -> str:
        return self.budget.preset or PAPER_PRESET.get(self.dataset_name, "quick")

    def _base(self) -> dict:
        """The settings every run of this runner shares; None values are left to TrainConfig's defaults."""
        b = self.budget
        shared = dict(dataset=self.dataset_name, preset=self.preset, max_batches=b.max_batches, batch_size=b.batch_size)
        optional = dict(data_root=self.data_root, time_steps=b.time_steps, weight_scale=b.weight_scale, init=b.init)
        return shared | {k: v for k, v in optional.items() if v is not None}

    def epochs(self) -> int:
        if self.budget.epochs is not None:
            return self.budget.epochs
        return self.budget.epochs_for(-(-len(self.dataset().train) // self.budget.batch_size))

    def config(self, spec: RunSpec) -> TrainConfig:
        """The run's TrainConfig: the spec's and the budget's settings, TrainConfig's defaults for the rest."""
        return TrainConfig(**(self._base() | spec.overrides()), th_init=spec.th_init, tau=spec.tau, scale=spec.scale,
                           lr_th=spec.lr_th, weight_norm=spec.weight_norm, seed=spec.seed, epochs=self.epochs()).validate()

    def dataset(self, config: TrainConfig | None = None):
        """The dataset, loaded once, on the run grid, with the budget's fixed test subset."""
        if self._dataset is None:
            from ..data.base import SpikeDataset
            from ..train import prepare_dataset

            ds = prepare_dataset(config or TrainConfig(**self._base()))
            n = self.budget.test_samples
            if n is not None and n < len(ds.test):
                keep = np.sort(np.random.default_rng(TEST_SUBSET_SEED).permutation(len(ds.test))[:n])
                ds = SpikeDataset(ds.name, ds.train, ds.test.subset(keep), ds.num_classes, ds.input_shape, ds.bin_ms,
                                  ds.class_names)
            self._dataset = ds
        return self._dataset

    def is_done(self, spec: RunSpec) -> bool:
        return is_finished(self.runs_dir / spec.name)

    def run(self, spec: RunSpec, label: str = "") -> RunResult:
        """Train the run, or read it back when its folder holds a finished one."""
        folder = self.runs_dir / spec.name
        config = self.config(spec)
        expected = _comparable(config.to_dict())
        if is_finished(folder):
            if _comparable(saved_config(folder)) != expected:
                raise RouserError(f"{folder} holds a finished run with other settings; use another --out or delete it")
            result = load_run(folder, spec)
            self.skipped += 1
            self.seconds[spec] = float(result.summary.seconds or 0.0)
            return result
        if not self.train:
            raise NotTrained(f"run {spec.name} of {self.root} has not finished")
        from ..train import Trainer

        resume = folder if (folder / CHECKPOINT_NAME).exists() else None
        if resume is not None:
            from ..checkpoint import load_checkpoint

            if _comparable(load_checkpoint(folder)["config"]) != expected:
                raise RouserError(f"{folder} holds a partial run with other settings; use another --out or delete it")
        trainer = Trainer(config, dataset=self.dataset(config), out=folder, resume=resume, name=spec.method)
        state, error = RunState(runs=(spec.method,)), None
        bar = _bar(label or spec.name, self.quiet)
        try:
            for event in trainer.events():
                state.apply(event)
                if event.kind == EventKind.START:
                    bar.reset(total=(event.record.epochs - event.record.epoch) * event.record.num_batches)
                elif event.kind == EventKind.BATCH:
                    bar.set_postfix_str(f"epoch {event.record.epoch} acc {event.record.train_accuracy:.2f}", refresh=False)
                    bar.update(1)
                elif event.kind == EventKind.ERROR:
                    error = event.record.message
        finally:
            bar.close()
        summary = state.summaries.get(spec.method)
        if error is not None:  # a diverged run is an outcome to report, not to retry
            summary = replace(trainer.summary("error", 0.0), message=error)
            self.log(f"  {spec.name}: {error}")
        elif summary is None or summary.status != "finished":
            raise RouserError(f"run {spec.name} stopped before the end; run the command again to resume it")
        self.seconds[spec] = float(summary.seconds or 0.0)
        save_summary(folder, spec, summary)
        self.trained += 1
        return RunResult(spec, summary, tuple(trainer.history), trained=True)

    def train_in_parallel(self, specs: list[RunSpec], title: str = "") -> int:
        """Train the unfinished runs among ``specs`` in ``jobs`` worker processes, dividing the CPU threads.

        Returns how many runs the workers trained (they are read back afterwards)."""
        pending = [spec for spec in specs if not self.is_done(spec)]
        if not self.train or self.jobs < 2 or len(pending) < 2:
            return 0
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, torch.get_num_threads() // self.jobs)
        self.log(f"training {len(pending)} runs in {self.jobs} processes")
        with ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_train_one, (self.dataset_name, self.budget, str(self.out), self.data_root, spec,
                                                threads)): spec for spec in pending}
            for future in as_completed(futures):
                future.result()
                self._log_wall_time(title, futures[future])
        return len(pending)

    def run_all(self, specs: Iterable[tuple[RunSpec, str]], title: str) -> dict[RunSpec, RunResult]:
        """Run every spec (skipping finished ones), printing one progress line per run."""
        unique = list(dict.fromkeys(s for s, _ in specs))
        missing = [spec for spec in unique if not self.is_done(spec)]
        if missing and not self.train:
            raise NotTrained(f"{len(missing)} of the {len(unique)} runs of {title} under {self.root} have not finished")
        results: dict[RunSpec, RunResult] = {}
        self.used.update(unique)
        self._mark = time.perf_counter()
        self.train_in_parallel(unique, title)
        for k, spec in enumerate(unique, 1):
            done, trained = self.is_done(spec), self.trained
            self.log(f"[{title} {k}/{len(unique)}] {self.dataset_name} {spec.method:<8} {spec.name}"
                     + (" (done, skipped)" if done else ""))
            results[spec] = self.run(spec, f"{k}/{len(unique)} {spec.method}")
            if self.trained > trained:
                self._log_wall_time(title, spec)
        return results

    def _log_wall_time(self, title: str, spec: RunSpec) -> None:
        """One line per trained run: the wall seconds since the previous line (or since this sweep began), so the
        lines add up to the wall time of all training, also when a command is interrupted."""
        now = time.perf_counter()
        line = dict(experiment=title, run=spec.name, seconds=round(now - self._mark, 3), jobs=self.jobs,
                    threads=torch.get_num_threads(), finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self._mark = now
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / WALL_TIME, "a") as f:
            f.write(json.dumps(line) + "\n")


def read_wall_time(path: Path) -> dict:
    """Runs trained, their wall seconds and the ``--jobs`` used, over the lines of a ``wall_time.jsonl``."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    return dict(runs_trained=sum(x.get("runs_trained", 1) for x in lines), seconds=sum(x["seconds"] for x in lines),
                jobs=sorted({x["jobs"] for x in lines}))  # (lines of earlier versions counted several runs each)


_WORKER_RUNNERS: dict[tuple, Runner] = {}  # one per worker process and sweep: the dataset is loaded once


def _train_one(args) -> None:
    """A worker process's part of `Runner.train_in_parallel`: train one run into its folder."""
    dataset, budget, out, data_root, spec, threads = args
    torch.set_num_threads(threads)
    keep_freed_memory()
    key = (dataset, budget, out, data_root)
    if key not in _WORKER_RUNNERS:
        _WORKER_RUNNERS[key] = Runner(dataset, budget, out, data_root, quiet=True)
    _WORKER_RUNNERS[key].run(spec)


def _comparable(config: dict) -> dict:
    """The settings that decide a run's outcome (not where the data lives or which device ran it), read as a stored
    config is read: a setting added since the run was saved takes its legacy value (e.g. He-normal for ``init``)."""
    full = TrainConfig.from_dict(config).to_dict()
    return {k: v for k, v in full.items() if k not in ("data_root", "device", "raster_every")}


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
