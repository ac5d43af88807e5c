"""The paper's experiments (section 4), each a function of a `Context`: the runs it needs, its tables and figures.

Every experiment asks its `Runner` for a set of runs (shared between experiments: the Rouser-vs-fixed runs of
``suboptimal`` also feed ``dead-neurons``, ``spike-rate``, ``weight-change``, ``thresholds`` and ``ablation``),
reads their typed histories, writes CSV tables and PNG figures to its folder, and returns the numbers of its
JSON file. Nothing here is tuned to the result: the settings are the paper's (Table 2) and the numbers are what
the engine measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..records import BatchRecord
from .paper import PAPER
from .runner import Runner
from .runs import RunResult
from .specs import (ABLATION_LR_TH, FIG8_THRESHOLDS, LEARNED_MARGIN, METHODS, SETTINGS, THRESHOLDS, setting_label,
                    setting_spec, sweep_spec)
from .tables import first_reaching, smooth, stats, write_csv

__all__ = ["Context", "EXPERIMENTS"]

SMOOTHING = 10  # batches: the train-accuracy window of Figs. 4-5's convergence


@dataclass
class Context:
    runner: Runner
    seeds: tuple[int, ...]
    folder: Path  # this experiment's output folder
    figures: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    thresholds: tuple[float, ...] = THRESHOLDS  # Th_init values of the sweep

    @property
    def fig8_starts(self) -> tuple[float, ...]:
        """Th_init values of Fig. 8 (0, 0.5, 1) that the sweep has, or the sweep's first three when it has none."""
        return tuple(th for th in FIG8_THRESHOLDS if th in self.thresholds) or self.thresholds[:3]

    @property
    def dataset(self) -> str:
        return self.runner.dataset_name

    def csv(self, name: str, rows: list[dict]) -> None:
        self.files.append(str(write_csv(self.folder / name, rows)))

    def figure(self, name: str, draw: Callable[[Path], None]) -> None:
        path = self.folder / name
        draw(path)
        self.figures.append(str(path))

    def setting_runs(self, methods: tuple[str, ...], title: str) -> dict[tuple[str, str], list[RunResult]]:
        """Runs of each (setting, method) over the seeds."""
        specs = [(setting_spec(st, m, seed), m) for st in SETTINGS for m in methods for seed in self.seeds]
        results = self.runner.run_all(specs, title)
        return {(st, m): [results[setting_spec(st, m, seed)] for seed in self.seeds] for st in SETTINGS for m in methods}


def _per_layer(b: BatchRecord, key: str) -> list[float]:
    """A LayerStats measure of every layer on one batch (``key``: spike_percent, weight_change, ...)."""
    return [getattr(lay, key) for lay in b.layers]


def _train_accuracy(r: RunResult) -> list[float]:
    return [b.train_accuracy for b in r.batches]


def _chance(group: list[RunResult]) -> float:
    """Chance accuracy of the runs' task: one over their output layer's size."""
    return 1.0 / group[0].summary.sizes[-1]


def _silent_percent(r: RunResult, k: int) -> float | None:
    """% of the run's training batches on which layer k fired no spike."""
    return 100 * float(np.mean([b.layers[k].active_fraction == 0 for b in r.batches])) if r.batches else None


def exp_threshold_sweep(ctx: Context) -> dict:
    """Fig. 3: final test accuracy for a range of fixed thresholds, and Rouser started from each."""
    specs = [(sweep_spec(th, m, seed), m) for th in ctx.thresholds for m in ("fixed", "rouser") for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, "threshold-sweep")
    rows, table = [], {}
    for m in ("fixed", "rouser"):
        for th in ctx.thresholds:
            group = [results[sweep_spec(th, m, seed)] for seed in ctx.seeds]
            for r in group:
                s = r.summary
                rows.append(dict(method=m, th_init=th, seed=r.spec.seed, status=s.status, epochs=len(r.epochs),
                                 test_accuracy=s.test_accuracy, train_accuracy=s.train_accuracy,
                                 output_dead_percent_last_epoch=r.epochs[-1].dead_percent[-1] if r.epochs else None,
                                 output_threshold_mean=s.thresholds[-1].mean if s.thresholds else None))
            table.setdefault(m, {})[f"{th:g}"] = stats(r.summary.test_accuracy for r in group)
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
    runs = ctx.setting_runs(METHODS, "suboptimal")
    epoch_rows, batch_rows, summary = [], [], {}
    for (st, m), group in runs.items():
        for r in group:
            for e in r.epochs:
                epoch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, epoch=e.epoch,
                                       test_accuracy=e.test_accuracy, train_accuracy=e.train_accuracy,
                                       test_loss=e.test_loss))
            for b, s in zip(r.batches, smooth(_train_accuracy(r), SMOOTHING)):
                batch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, step=b.step, loss=b.loss,
                                       train_accuracy=b.train_accuracy, train_accuracy_smoothed=s))
    for st in SETTINGS:
        finals = {m: stats(r.summary.test_accuracy for r in runs[(st, m)]) for m in METHODS}
        best = max((f["mean"] for f in finals.values() if f["mean"] is not None), default=None)
        chance = _chance(runs[(st, METHODS[0])])
        target = 0.9 * best if best is not None and best >= chance + LEARNED_MARGIN else None  # None: nothing learned
        methods = {}
        for m in METHODS:
            group = runs[(st, m)]
            ep = [first_reaching([e.test_accuracy for e in r.epochs], target) if target is not None else None
                  for r in group]
            bt = [first_reaching(smooth(_train_accuracy(r), SMOOTHING), target) if target is not None else None
                  for r in group]
            methods[m] = dict(final_test_accuracy=finals[m], batches_trained=[len(r.batches) for r in group],
                              epochs_to_target=dict(per_seed=ep, reached=sum(x is not None for x in ep), stats=stats(ep)),
                              batches_to_target=dict(per_seed=bt, reached=sum(x is not None for x in bt), stats=stats(bt)))
        summary[st] = dict(settings=dict(zip(("th_init", "tau", "scale"), SETTINGS[st])), target_accuracy=target,
                           best_accuracy=best, chance_accuracy=chance, methods=methods)
    ctx.csv("suboptimal_epochs.csv", epoch_rows)
    ctx.csv("suboptimal_batches.csv", batch_rows)

    def draw(path):
        from .figures import plot_suboptimal

        plot_suboptimal(path, runs, SETTINGS, METHODS, SMOOTHING, ctx.dataset, len(ctx.seeds))

    ctx.figure("suboptimal.png", draw)
    return dict(settings=summary, target_rule="target = 0.9 x the best method's mean final test accuracy at that "
                f"setting; batches counted on the train accuracy smoothed over {SMOOTHING} batches; no target where "
                f"the best method ends within {100 * LEARNED_MARGIN:g} points of chance (nothing learned)",
                smoothing_window=SMOOTHING)


def exp_dead_neurons(ctx: Context) -> dict:
    """Table 3 and Fig. 10: dead neurons per layer per epoch, and active neurons per batch."""
    runs = ctx.setting_runs(METHODS, "dead-neurons")
    epoch_rows, batch_rows, table = [], [], {}
    for (st, m), group in runs.items():
        for r in group:
            for e in r.epochs:
                for k, d in enumerate(e.dead_percent):
                    epoch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, epoch=e.epoch, layer=k + 1,
                                           dead_percent=d))
            for b in r.batches:
                for k, lay in enumerate(b.layers):
                    probe = lay.probe_active_fraction
                    batch_rows.append(dict(setting=st, method=m, seed=r.spec.seed, step=b.step, epoch=b.epoch,
                                           layer=k + 1, active_percent=100 * lay.active_fraction,
                                           probe_active_percent=100 * probe if probe is not None else float("nan"),
                                           dead_percent_so_far=lay.dead_percent))
        per_layer = []
        for k in range(group[0].layers):
            during = [float(np.mean([e.dead_percent[k] for e in r.epochs])) if r.epochs else None for r in group]
            active = [100 * float(np.mean([b.layers[k].active_fraction for b in r.batches])) if r.batches else None
                      for r in group]
            per_layer.append(dict(layer=k + 1, dead_percent_mean_over_epochs=stats(during),
                                  dead_percent_first_epoch=stats(r.epochs[0].dead_percent[k] if r.epochs else None
                                                                 for r in group),
                                  dead_percent_last_epoch=stats(r.epochs[-1].dead_percent[k] if r.epochs else None
                                                                for r in group),
                                  percent_of_batches_layer_silent=stats(_silent_percent(r, k) for r in group),
                                  active_percent_mean_over_batches=stats(active)))
        table.setdefault(st, {})[m] = per_layer
    ctx.csv("dead_neurons_epochs.csv", epoch_rows)
    ctx.csv("active_neurons_batches.csv", batch_rows)

    def draw(path):
        from .figures import plot_active

        plot_active(path, runs, SETTINGS, METHODS, ctx.dataset, len(ctx.seeds))

    ctx.figure("active_neurons.png", draw)
    return dict(dead_percent=table, definition="dead: no spike on any training sample of the epoch (Table 3); "
                "active: at least one spike on the batch (Fig. 10)", paper=PAPER["table3_dead_percent"])


def _per_layer_batch_metric(ctx: Context, key: str, csv_name: str, title: str,
                            methods: tuple[str, ...] = ("rouser", "fixed")) -> tuple[dict, dict]:
    """A LayerStats measure per batch (CSV) and its first, largest and last value per layer (JSON)."""
    runs = ctx.setting_runs(methods, title)
    rows, table = [], {}
    for (st, m), group in runs.items():
        for r in group:
            for b in r.batches:
                rows += [dict(setting=st, method=m, seed=r.spec.seed, step=b.step, epoch=b.epoch, layer=k + 1, **{key: v})
                         for k, v in enumerate(_per_layer(b, key))]
        table.setdefault(st, {})[m] = [
            dict(layer=k + 1,
                 first_batch=stats(_per_layer(r.batches[0], key)[k] if r.batches else None for r in group),
                 max=stats(max(_per_layer(b, key)[k] for b in r.batches) if r.batches else None for r in group),
                 last_batch=stats(_per_layer(r.batches[-1], key)[k] if r.batches else None for r in group))
            for k in range(group[0].layers)]
    ctx.csv(csv_name, rows)
    return runs, table


def exp_spike_rate(ctx: Context) -> dict:
    """Fig. 9: spikes per layer as % of the maximum (T x batch x neurons), over training."""
    runs, table = _per_layer_batch_metric(ctx, "spike_percent", "spike_rate.csv", "spike-rate")

    def draw(path):
        from .figures import plot_per_layer

        plot_per_layer(path, runs, SETTINGS, "spike_percent", "spikes (% of max)", ctx.dataset, len(ctx.seeds))

    ctx.figure("spike_rate.png", draw)
    return dict(spike_percent=table, note="measured on the training batches (the paper's Fig. 9 is at inference)")


def exp_weight_change(ctx: Context) -> dict:
    """Fig. 6a: ||W - W0|| / ||W0|| per layer over training."""
    runs, table = _per_layer_batch_metric(ctx, "weight_change", "weight_change.csv", "weight-change")

    def draw(path):
        from .figures import plot_per_layer

        plot_per_layer(path, runs, SETTINGS, "weight_change", "||W - W0|| / ||W0||", ctx.dataset, len(ctx.seeds))

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
        for r in group:
            for b in r.batches:
                for k, lay in enumerate(b.layers):
                    row = dict(run=label, th_init=r.spec.th_init, tau=r.spec.tau, scale=r.spec.scale, seed=r.spec.seed,
                               step=b.step, epoch=b.epoch, layer=k + 1, mean=lay.threshold_mean,
                               min=lay.threshold_min, max=lay.threshold_max)
                    row.update({f"neuron_{j}": v for j, v in enumerate(lay.threshold_sample)})
                    rows.append(row)
        spec = group[0].spec
        final = [dict(layer=k + 1, **{what: stats(getattr(r.summary.thresholds[k], what) for r in group)
                                      for what in ("mean", "min", "max")})
                 for k in range(group[0].layers)]
        table[label] = dict(spec=dict(th_init=spec.th_init, tau=spec.tau, scale=spec.scale), final=final)
    ctx.csv("thresholds.csv", rows)

    def draw7(path):
        from .figures import plot_threshold_traces

        plot_threshold_traces(path, groups["B"], f"Rouser thresholds from (Th_init, tau, s) = {setting_label('B')}",
                              ctx.dataset)

    def draw8(path):
        from .figures import plot_threshold_starts

        plot_threshold_starts(path, {f"Th_init = {th:g}": groups[f"th{th:g}"] for th in ctx.fig8_starts}, ctx.dataset,
                              len(ctx.seeds))

    ctx.figure("thresholds_fig7.png", draw7)
    ctx.figure("thresholds_fig8.png", draw8)
    return dict(final_thresholds=table)


def exp_ablation(ctx: Context) -> dict:
    """Fig. 11: threshold learning rate 0, 0.001, 0.01 from the same initial weights, no weight normalisation."""
    def spec(st, lr, seed):
        return setting_spec(st, "rouser" if lr else "fixed", seed, lr_th=lr)

    specs = [(spec(st, lr, seed), st) for st in SETTINGS for lr in ABLATION_LR_TH for seed in ctx.seeds]
    results = ctx.runner.run_all(specs, "ablation")
    runs = {(st, lr): [results[spec(st, lr, seed)] for seed in ctx.seeds] for st in SETTINGS for lr in ABLATION_LR_TH}
    rows, table = [], {}
    for (st, lr), group in runs.items():
        for r in group:
            rows += [dict(setting=st, lr_th=lr, seed=r.spec.seed, epoch=e.epoch, test_accuracy=e.test_accuracy,
                          train_accuracy=e.train_accuracy, output_dead_percent=e.dead_percent[-1]) for e in r.epochs]
        table.setdefault(st, {})[f"{lr:g}"] = dict(
            final_test_accuracy=stats(r.summary.test_accuracy for r in group),
            output_dead_percent_first_epoch=stats(r.epochs[0].dead_percent[-1] if r.epochs else None for r in group),
            output_dead_percent_last_epoch=stats(r.epochs[-1].dead_percent[-1] if r.epochs else None for r in group),
            output_silent_batches_percent=stats(_silent_percent(r, -1) for r in group))
    ctx.csv("ablation.csv", rows)

    def draw(path):
        from .figures import plot_ablation

        plot_ablation(path, runs, SETTINGS, ABLATION_LR_TH, ctx.dataset, len(ctx.seeds))

    ctx.figure("ablation.png", draw)
    return dict(ablation=table, chance_accuracy={st: _chance(runs[(st, 0.0)]) for st in SETTINGS})


EXPERIMENTS: dict[str, Callable[[Context], dict]] = {
    "threshold-sweep": exp_threshold_sweep,
    "suboptimal": exp_suboptimal,
    "dead-neurons": exp_dead_neurons,
    "spike-rate": exp_spike_rate,
    "weight-change": exp_weight_change,
    "thresholds": exp_thresholds,
    "ablation": exp_ablation,
}
