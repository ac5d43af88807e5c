"""`rouser reproduce report`: gather the experiments of docs/results.md for each budget, copy their files, write the page.

The CI budget (``quick``) is run or resumed here. The paper budget takes hours, so it is only read: from its
finished runs under ``--out`` when they are all there (they are trained by ``rouser reproduce all --budget
paper``), else from the JSON an earlier report committed under ``docs/results/<dataset>-paper/``, else its
section says how to run it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..records import RunSummary
from .experiments import EXPERIMENTS
from .runner import WALL_TIME, NotTrained, Runner, read_wall_time
from .specs import Budget, get_budget
from .sweep import copy_outputs, run_experiment
from .tables import write_json

PARTIAL = "partial.json"  # the finished runs of a budget whose experiments are not all complete

__all__ = ["PAPER_PLAN", "REPORT_PLAN", "BudgetResults", "write_report"]

# which experiments the page shows on which embedded dataset, and with how many seeds (None: the budget's)
REPORT_PLAN = {
    "nmnist-sim": dict.fromkeys(EXPERIMENTS, 3) | {"rousing-map": 3},
    "gestures-sim": {"threshold-sweep": 1, "suboptimal": 1},
}
PAPER_PLAN = {"nmnist-sim": dict.fromkeys(EXPERIMENTS)}


@dataclass
class BudgetResults:
    """One budget's experiment records on the page, and where they came from."""

    budget: Budget
    plan: dict[str, dict[str, int | None]]
    ci: bool  # the budget the report runs itself (its files sit in docs/results/<dataset>/)
    records: dict[str, dict[str, dict]] = field(default_factory=dict)  # dataset -> experiment -> record
    saved: set[str] = field(default_factory=set)  # datasets read from an earlier report's JSON
    wall: dict[str, dict] = field(default_factory=dict)  # dataset -> read_wall_time
    finished_runs: dict[str, int] = field(default_factory=dict)  # dataset -> runs finished under --out
    partial: dict[str, list[dict]] = field(default_factory=dict)  # dataset -> finished runs of an unfinished budget

    def asset(self, dataset: str) -> str:
        """The folder under docs/results/ holding this budget's files for ``dataset``."""
        return dataset if self.ci else f"{dataset}-{self.budget.name}"

    def missing(self, dataset: str) -> list[str]:
        return [name for name in self.plan[dataset] if name not in self.records.get(dataset, {})]


def _saved_record(assets: Path, name: str) -> dict | None:
    path = assets / f"{name.replace('-', '_')}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _collect(res: BudgetResults, out, assets: Path, data_root, quiet: bool, seeds: int | None, thresholds,
             jobs: int) -> None:
    """Fill ``res`` per dataset: run (CI budget) or read back each experiment, and copy its files to ``assets``."""
    for dataset, experiments in res.plan.items():
        runner = Runner(dataset, res.budget, out, data_root, quiet, jobs=jobs, train=res.ci)
        folder = assets / res.asset(dataset)
        recs, fresh = {}, True
        for name, n in experiments.items():
            try:
                recs[name] = run_experiment(name, dataset, res.budget, seeds or n, out, data_root, quiet, runner,
                                            thresholds if res.ci else None)
            except NotTrained:
                fresh = False
        if not fresh and not recs:  # nothing under --out: what an earlier report committed, if anything
            recs = {name: rec for name in experiments if (rec := _saved_record(folder, name)) is not None}
            res.saved.add(dataset)
        elif recs:
            if fresh and folder.exists():
                shutil.rmtree(folder)
            for rec in recs.values():
                copy_outputs(rec, folder)
            if (runner.root / WALL_TIME).exists():
                shutil.copyfile(runner.root / WALL_TIME, folder / WALL_TIME)
        res.records[dataset] = recs
        res.wall[dataset] = read_wall_time(folder / WALL_TIME)
        res.finished_runs[dataset] = len(list(runner.runs_dir.glob("*/summary.json")))
        if not res.ci and res.missing(dataset):
            res.partial[dataset] = _finished_runs(runner, folder)


def _finished_runs(runner: Runner, folder: Path) -> list[dict]:
    """One row per finished run of a budget that is not complete yet, saved beside its other files (``partial.json``)
    so a later report without the runs still shows them."""
    saved = folder / PARTIAL
    rows = []
    for path in sorted(runner.runs_dir.glob("*/summary.json")):
        data = json.loads(path.read_text())
        s, spec = RunSummary.from_json(data), data.get("spec", {})
        rows.append(dict(run=path.parent.name, method=s.run, seed=spec.get("seed"), th_init=spec.get("th_init"),
                         tau=spec.get("tau"), scale=spec.get("scale"), lr_th=spec.get("lr_th"), status=s.status,
                         epochs=s.epochs_completed, test_accuracy=s.test_accuracy, dead_percent=list(s.dead_percent),
                         active_fraction=list(s.active_fraction),
                         output_threshold_mean=s.thresholds[-1].mean if s.thresholds else None))
    if rows:
        write_json(saved, dict(runs=rows))
        return rows
    return json.loads(saved.read_text())["runs"] if saved.exists() else []


def write_report(out: str | Path = "runs/reproduce", docs: str | Path = "docs", budget: str | Budget = "quick",
                 seeds: int | None = None, data_root: str | None = None, quiet: bool = False, plan: dict | None = None,
                 thresholds=None, paper: str | Budget | None = "paper", paper_plan: dict | None = None,
                 jobs: int = 1, maps: str | Path | None = None) -> Path:
    """Run what the CI budget's part of the page needs (finished runs are read back), read the paper budget's,
    copy figures and tables, write results.md.

    ``plan`` maps dataset -> {experiment: seeds}; ``seeds``, when given, replaces every CI experiment's seed count.
    ``paper`` None leaves the paper budget off the page; ``jobs`` processes train the CI budget's runs; ``maps``, when
    given, receives each rousing map's JSON as ``<dataset>-<budget>.json`` (the dashboard ships them)."""
    from .page import render

    docs = Path(docs)
    assets = docs / "results"
    ci = BudgetResults(get_budget(budget), {d: dict(e) for d, e in (plan or REPORT_PLAN).items()}, ci=True)
    results = [ci]
    if paper is not None and get_budget(paper).name != ci.budget.name:
        results.append(BudgetResults(get_budget(paper), paper_plan or PAPER_PLAN, ci=False))
    for res in results:
        _collect(res, out, assets, data_root, quiet, seeds if res.ci else None, thresholds, jobs)
    if maps is not None:
        _ship_maps(ci, Path(maps))
    path = docs / "results.md"
    path.write_text(render(results, seeds, out, docs))
    return path


def _ship_maps(res: BudgetResults, maps: Path) -> None:
    """Each rousing map's JSON, without the paths of the machine that made it, for the dashboard's map tab."""
    for dataset, recs in res.records.items():
        if "rousing-map" in recs:
            record = {k: v for k, v in recs["rousing-map"].items() if k not in ("files", "figures", "runs", "run_seconds")}
            maps.mkdir(parents=True, exist_ok=True)
            (maps / f"{dataset}-{res.budget.name}.json").write_text(json.dumps(record, indent=1) + "\n")
