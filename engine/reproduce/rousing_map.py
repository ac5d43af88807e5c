"""The rousing map: where learned thresholds rouse neurons that fixed thresholds leave dead, measured cell by cell.

A grid over Th_init x initial weight scale, crossed with regimes that change one thing at a time from the paper's
setting (one Adam learning rate, 1e-3, for weights and thresholds): the ratio of the threshold to the weight
learning rate (10, 100, 1000, and frozen weights: thresholds only, the post-deployment case), lava-dl-style 8-bit
weights, and a detached reset gradient. Every cell trains Rouser and the fixed-threshold baseline from the same
seeds (same initial weights, same batches). Per cell and method: batches until the output layer is fully active
(or never within the budget), the share of seeds whose output layer, or any layer, is silent at the end, dead %
per layer, and final test accuracy. ``speeds`` measures why: for each silent neuron, the change of its peak
voltage caused by one step's weight update against the change of its threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .runs import RunResult
from .specs import SETTINGS, RunSpec
from .tables import stats

__all__ = ["GRIDS", "MapGrid", "REGIMES", "Regime", "cell_spec", "exp_rousing_map", "speeds"]


@dataclass(frozen=True)
class Regime:
    """How a cell trains: learning rates (Rouser's; its baseline has lr_th 0), weight quantisation, reset gradient."""

    name: str
    lr: float
    lr_th: float
    weight_quant: str = "none"
    reset_grad: str = "full"
    description: str = ""

    @property
    def ratio(self) -> float:
        """lr_th / lr (infinite with frozen weights)."""
        return float("inf") if self.lr == 0 else self.lr_th / self.lr


REGIMES = {r.name: r for r in (
    Regime("paper", 1e-3, 1e-3, description="the paper's single Adam learning rate 1e-3 (Table 2)"),
    Regime("lr_th x10", 1e-3, 1e-2, description="thresholds at 1e-2 (the paper's Fig. 11b), weights at 1e-3"),
    Regime("lr_th x100", 1e-4, 1e-2, description="thresholds at 1e-2, weights at 1e-4"),
    Regime("lr_th x1000", 1e-5, 1e-2, description="thresholds at 1e-2, weights at 1e-5: weights that barely move"),
    Regime("frozen weights", 0.0, 1e-2, description="weights frozen (lr 0), thresholds at 1e-2: tuning after "
                                                    "deployment; the baseline then trains nothing"),
    Regime("8-bit weights", 1e-3, 1e-3, weight_quant="8bit",
           description="the paper's rates with lava-dl's 8-bit weights (steps of 2/64)"),
    Regime("reset detached", 1e-3, 1e-3, reset_grad="detach",
           description="the paper's rates with S[t-1] detached in the reset term (always-bounded backward)"),
)}


@dataclass(frozen=True)
class MapGrid:
    th_inits: tuple[float, ...]
    weight_scales: tuple[float, ...]
    regimes: tuple[str, ...]

    def cells(self):
        """(regime, Th_init, weight scale) of every cell, regime-major."""
        return [(r, th, ws) for r in self.regimes for th in self.th_inits for ws in self.weight_scales]


GRIDS = {
    "tiny": MapGrid((1.25, 8.0), (0.1, 1.0), ("paper", "frozen weights")),
    "quick": MapGrid((1.25, 2.0, 4.0, 8.0), (0.1, 0.4, 1.0), tuple(REGIMES)),
    "paper": MapGrid((1.25, 4.0, 8.0), (0.25, 1.0), ("paper", "lr_th x10", "lr_th x1000", "frozen weights",
                                                      "8-bit weights", "reset detached")),
}
SPEED_STEPS = 5  # batches over which `speeds` follows the silent neurons from the start


def grid_for(budget: str) -> MapGrid:
    return GRIDS.get(budget, GRIDS["quick"])


def cell_spec(regime: str, th: float, ws: float, method: str, seed: int) -> RunSpec:
    """The run of one cell: Rouser at the regime's rates, or its fixed-threshold baseline (lr_th 0)."""
    r = REGIMES[regime]
    _, tau, s = SETTINGS["A"]
    return RunSpec(th, tau, s, r.lr_th if method == "rouser" else 0.0, False, seed, lr=r.lr, weight_scale=ws,
                   weight_quant=r.weight_quant, reset_grad=r.reset_grad)


# ------------------------------------------------------------------------------------------ per run and cell
def run_outcome(r: RunResult) -> dict:
    """What one run shows about rousing: when its output became fully active, what is silent or dead at the end."""
    last = r.batches[-1] if r.batches else None
    full = next((b.step for b in r.batches if b.layers[-1].active_fraction >= 1.0), None)
    return dict(status=r.summary.status, batches=len(r.batches), batches_to_full_output=full,
                output_active_end=last.layers[-1].active_fraction if last else None,
                output_silent_end=bool(last is None or last.layers[-1].active_fraction == 0),
                any_silent_end=bool(last is None or any(lay.active_fraction == 0 for lay in last.layers)),
                dead_percent=list(r.epochs[-1].dead_percent) if r.epochs else None,
                test_accuracy=r.summary.test_accuracy)


def cell_outcome(outcomes: list[dict]) -> dict:
    """One method in one cell, over its seeds."""
    n = len(outcomes)
    reached = [o["batches_to_full_output"] for o in outcomes if o["batches_to_full_output"] is not None]
    layers = max((len(o["dead_percent"] or []) for o in outcomes), default=0)
    return dict(seeds=n, diverged=sum(o["status"] == "error" for o in outcomes),
                full_output_reached=len(reached), batches_to_full_output=stats(reached),
                output_silent_end_share=sum(o["output_silent_end"] for o in outcomes) / n,
                any_silent_end_share=sum(o["any_silent_end"] for o in outcomes) / n,
                output_active_end=stats(o["output_active_end"] for o in outcomes),
                dead_percent=[stats((o["dead_percent"] or [None] * layers)[k] for o in outcomes) for k in range(layers)],
                test_accuracy=stats(o["test_accuracy"] for o in outcomes))


def describe(cell: dict, budget_batches: int) -> str:
    """One line such as "fully active by batch 12 (9-15) in 3/3 seeds" or "output silent at batch 120 in 3/3"."""
    b, n = cell["batches_to_full_output"], cell["seeds"]
    if cell["diverged"]:
        return f"diverged in {cell['diverged']}/{n} seeds"
    if cell["full_output_reached"] == 0:
        silent = round(cell["output_silent_end_share"] * n)
        active = cell["output_active_end"]["mean"]
        return (f"output silent at batch {budget_batches} in {silent}/{n} seeds" if silent else
                f"output never fully active within {budget_batches} batches ({100 * (active or 0):.0f} % at the end)")
    spread = f" ({b['min']:g}-{b['max']:g})" if b["n"] > 1 else ""
    return f"fully active by batch {b['mean']:.0f}{spread} in {cell['full_output_reached']}/{n} seeds"


# ------------------------------------------------------------------------------------------ why: speeds
def speeds(config, dataset, steps: int = SPEED_STEPS) -> list[dict]:
    """For the neurons silent on each of the first ``steps`` batches: how far one Adam step moves them toward firing.

    ``voltage_change``: the change of the neuron's voltage V (eq 2, mean over T and the batch) caused by the step's
    update of its own input weights, its inputs held as they were; ``threshold_change``: the fall of its threshold;
    ``gap``: how far its threshold lies above its peak voltage. Voltage units per step; medians over the silent
    neurons of each layer.
    """
    from ..train import Trainer

    trainer = Trainer(config, dataset)
    model = trainer.model
    order = trainer.batch_order(0)
    rows = []
    for step in range(steps):
        batch = dataset.train.batch(order[step * config.batch_size:(step + 1) * config.batch_size]).to(trainer.device)
        with torch.no_grad():
            inputs, spikes, means, peaks = [], [], [], []
            x = batch
            for layer in model.layers:
                s, v = layer(x, model.input_mode)
                inputs.append(x)
                spikes.append(s.sum(dim=(0, 1)) > 0)
                means.append(v.mean(dim=(0, 1)))
                peaks.append(v.amax(0).mean(0))
                x = s
        before = [t.detach().clone() for t in model.thresholds()]
        _, loss = trainer.forward(batch)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        with torch.no_grad():
            for k, layer in enumerate(model.layers):
                silent = ~spikes[k]
                if not silent.any():
                    continue
                dv = layer(inputs[k], model.input_mode)[1].mean(dim=(0, 1)) - means[k]
                dth = before[k] - model.thresholds()[k].detach()
                gap = before[k] - peaks[k]
                rows.append(dict(step=step + 1, layer=k + 1, silent=int(silent.sum()),
                                 voltage_change=float(dv[silent].median()), threshold_change=float(dth[silent].median()),
                                 gap=float(gap[silent].median())))
    return rows


# ------------------------------------------------------------------------------------------ the experiment
def exp_rousing_map(ctx) -> dict:
    """Rouser and fixed runs in every cell of the budget's grid, their outcomes, heat maps, and the speeds."""
    grid = grid_for(ctx.runner.budget.name)
    methods = ("rouser", "fixed")
    specs = [(cell_spec(r, th, ws, m, seed), m) for r, th, ws in grid.cells() for m in methods for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, "rousing-map")
    rows, cells = [], []
    for regime, th, ws in grid.cells():
        cell = dict(regime=regime, th_init=th, weight_scale=ws)
        for m in methods:
            outcomes = []
            for seed in ctx.seeds:
                o = run_outcome(results[cell_spec(regime, th, ws, m, seed)])
                outcomes.append(o)
                rows.append(dict(regime=regime, th_init=th, weight_scale=ws, method=m, seed=seed,
                                 **{k: v for k, v in o.items() if k != "dead_percent"},
                                 **{f"dead_percent_layer{k + 1}": d for k, d in enumerate(o["dead_percent"] or [])}))
            cell[m] = cell_outcome(outcomes)
        budget_batches = max(o["batches"] for o in outcomes)
        cell["rouser"]["text"] = describe(cell["rouser"], budget_batches)
        cell["fixed"]["text"] = describe(cell["fixed"], budget_batches)
        cell["contrast"] = contrast(cell)
        config = ctx.runner.config(cell_spec(regime, th, ws, "rouser", 0)).to_dict()
        cell["config"] = {k: v for k, v in config.items() if k not in ("data_root", "device", "seed")}
        cells.append(cell)
    ctx.csv("rousing_map_runs.csv", rows)
    speed_rows = [row for cell in grid.cells() for row in _cell_speeds(ctx.runner, *cell)]
    ctx.csv("rousing_map_speeds.csv", speed_rows)

    def draw(path: Path, key: str, title: str):
        from .map_figures import plot_rousing_map

        plot_rousing_map(path, cells, grid, key, title, ctx.dataset, len(ctx.seeds))

    ctx.figure("rousing_map_output_active.png",
               lambda p: draw(p, "output_active_end", "output layer: % of neurons active on the last batch"))
    ctx.figure("rousing_map_accuracy.png", lambda p: draw(p, "test_accuracy", "final test accuracy %"))
    return dict(grid=dict(th_inits=grid.th_inits, weight_scales=grid.weight_scales, regimes=grid.regimes),
                regimes={r: dict(lr=REGIMES[r].lr, lr_th=REGIMES[r].lr_th, weight_quant=REGIMES[r].weight_quant,
                                 reset_grad=REGIMES[r].reset_grad, description=REGIMES[r].description)
                         for r in grid.regimes},
                cells=cells, speeds=speed_summary(speed_rows, grid),
                definition="fully active: every output neuron spiked on the batch; silent: no neuron of the layer "
                           "spiked on the last batch; dead: no spike on any training sample of the last epoch")


def _cell_speeds(runner, regime: str, th: float, ws: float) -> list[dict]:
    """`speeds` of a cell's Rouser run (seed 0), measured once and kept beside its runs (``speeds/<run>.json``)."""
    spec = cell_spec(regime, th, ws, "rouser", 0)
    path = runner.root / "speeds" / f"{spec.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    config = runner.config(spec)
    rows = [dict(regime=regime, th_init=th, weight_scale=ws, **row) for row in speeds(config, runner.dataset(config))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def contrast(cell: dict) -> str:
    """``rouses``: Rouser's output is fully active by the end in every seed and the baseline's in none;
    ``partial``: Rouser reaches full activity in more seeds than the baseline; ``none`` otherwise."""
    r, f = cell["rouser"], cell["fixed"]
    if r["full_output_reached"] == r["seeds"] and f["full_output_reached"] == 0 and not r["diverged"]:
        return "rouses"
    return "partial" if r["full_output_reached"] > f["full_output_reached"] else "none"


def speed_summary(rows: list[dict], grid: MapGrid) -> dict:
    """Per regime and layer: medians over cells and steps of the silent neurons' voltage and threshold changes."""
    out = {}
    for regime in grid.regimes:
        for layer in sorted({r["layer"] for r in rows}):
            sel = [r for r in rows if r["regime"] == regime and r["layer"] == layer]
            if sel:
                dv = np.median([r["voltage_change"] for r in sel])
                dth = np.median([r["threshold_change"] for r in sel])
                out.setdefault(regime, {})[f"layer{layer}"] = dict(
                    voltage_change=float(dv), threshold_change=float(dth), cells_steps=len(sel),
                    ratio=float(dv / dth) if dth > 0 else None)
    return out
