"""Reproductions of the paper's experiments (section 4): sweeps of training runs, their tables, figures and the
results page. An application of the engine, apart from its core.

- `specs`: the paper's settings, one `RunSpec` per run, the `Budget` runs train under
- `runner` and `runs`: training runs (in a pool of processes), resuming them, reading them back as typed records
- `tables`: statistics over seeds, CSV and JSON
- `experiments` and `sweep`: the seven experiments and `rouser reproduce EXPERIMENT|all`
- `rousing_map` and `map_figures`: where learned thresholds rouse neurons that fixed ones leave dead
- `paper` and `claims`: the paper's numbers and the rules that judge its claims from ours
- `report`, `page` and `sections`: `rouser reproduce report` and the text of docs/results.md
- `figures`: matplotlib figures (imported only when drawing)
"""

from .experiments import EXPERIMENTS
from .paper import PAPER
from .report import write_report
from .runner import Runner
from .specs import BUDGETS, SETTINGS, THRESHOLDS, Budget, RunSpec, budget_with, get_budget, setting_spec, sweep_spec
from .sweep import RUNNABLE, run_all, run_experiment

__all__ = ["BUDGETS", "Budget", "EXPERIMENTS", "PAPER", "RUNNABLE", "RunSpec", "Runner", "SETTINGS", "THRESHOLDS", "budget_with",
           "get_budget", "run_all", "run_experiment", "setting_spec", "sweep_spec", "write_report"]
