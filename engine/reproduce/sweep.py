"""`rouser reproduce EXPERIMENT|all`: run (or resume) experiments on one dataset under one budget.

Each experiment writes CSV and JSON numbers and PNG figures to ``OUT/<dataset>-<budget>/<experiment>/``; its runs
live in ``OUT/<dataset>-<budget>/runs/`` (see `Runner`), so an interrupted sweep resumes without redoing
finished runs.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from ..errors import RouserError
from .experiments import EXPERIMENTS, Context
from .rousing_map import exp_rousing_map
from .runner import Runner
from .specs import Budget, get_budget
from .tables import write_json

__all__ = ["RUNNABLE", "copy_outputs", "run_all", "run_experiment"]

# what `rouser reproduce NAME` runs: the paper's experiments (`all` runs these) and the rousing map, a sweep of its own
RUNNABLE = EXPERIMENTS | {"rousing-map": exp_rousing_map}


def _thresholds(thresholds: Iterable[float] | None, budget: Budget) -> tuple[float, ...]:
    if thresholds is None:
        return budget.sweep_thresholds
    thresholds = tuple(sorted({float(t) for t in thresholds}))
    if not thresholds or not all(math.isfinite(t) for t in thresholds):
        raise RouserError("--thresholds must list at least one finite number, e.g. 0,0.5,1")
    return thresholds


def run_experiment(name: str, dataset: str = "nmnist-sim", budget: str | Budget = "quick", seeds: int | None = None,
                   out: str | Path = "runs/reproduce", data_root: str | None = None, quiet: bool = False,
                   runner: Runner | None = None, thresholds: Iterable[float] | None = None, jobs: int = 1) -> dict:
    """Run (or resume) experiment ``name`` and write its CSV, JSON and PNG files; returns the JSON written.

    ``seeds`` None: the budget's number for this experiment."""
    if name not in RUNNABLE:
        raise RouserError(f"unknown experiment {name!r}; choose one of: {', '.join(RUNNABLE)}, all, report")
    if seeds is not None and seeds < 1:
        raise RouserError(f"--seeds must be >= 1, got {seeds}")
    from ..data import dataset_names

    if dataset not in dataset_names():
        raise RouserError(f"unknown dataset {dataset!r}; choose one of: {', '.join(dataset_names())}")
    budget = get_budget(budget)
    thresholds = _thresholds(thresholds, budget)
    seeds = seeds or budget.seeds_for(name)
    runner = runner or Runner(dataset, budget, out, data_root, quiet, jobs=jobs)
    trained, skipped = runner.trained, runner.skipped
    runner.used = set()
    started = time.perf_counter()
    ctx = Context(runner, tuple(range(seeds)), runner.root / name, thresholds=thresholds)  # files make their folder
    result = RUNNABLE[name](ctx)
    record = dict(experiment=name, dataset=dataset, budget=asdict(budget), seeds=list(ctx.seeds),
                  runs_trained=runner.trained - trained, runs_skipped=runner.skipped - skipped,
                  seconds=round(time.perf_counter() - started, 1),
                  runs=sorted(spec.name for spec in runner.used),
                  train_seconds=round(sum(runner.seconds.get(spec, 0.0) for spec in runner.used), 1),
                  run_seconds={spec.name: runner.seconds.get(spec, 0.0) for spec in sorted(runner.used, key=_name)},
                  files=ctx.files, figures=ctx.figures, **result)
    json_path = ctx.folder / f"{name.replace('-', '_')}.json"
    record["files"].append(str(json_path))
    write_json(json_path, record)
    return record


def _name(spec) -> str:
    return spec.name


def run_all(dataset: str = "nmnist-sim", budget: str | Budget = "quick", seeds: int | None = None,
            out: str | Path = "runs/reproduce", data_root: str | None = None, quiet: bool = False,
            experiments: Iterable[str] | None = None, thresholds: Iterable[float] | None = None,
            jobs: int = 1) -> dict[str, dict]:
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
