"""PNG figures of the paper's experiments (matplotlib, Agg backend), drawn from the runs' typed histories.

Lines are the mean over seeds; with several seeds a shaded band spans their minimum to maximum. Runs and layers
are named and coloured as in the dashboard (`engine.style`). Only the experiments import this module, inside
their drawing functions, so training never needs matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..style import layer_label, run_color, run_label, series_color  # noqa: E402
from .specs import ROUSER_LR_TH, setting_label  # noqa: E402
from .tables import smooth  # noqa: E402

DPI = 80


def _band(series: list[list[float]]):
    n = min((len(s) for s in series), default=0)
    a = np.array([list(s[:n]) for s in series], dtype=float).reshape(len(series), n)
    x = np.arange(1, n + 1)
    if n == 0:
        return x, np.zeros(0), np.zeros(0), np.zeros(0)
    with np.errstate(all="ignore"):
        return x, np.nanmean(a, 0), np.nanmin(a, 0), np.nanmax(a, 0)


def _line(ax, series, color, label, nseeds, **kw):
    xs, mean, lo, hi = _band(series)
    ax.plot(xs, mean, color=color, label=label, **kw)
    if nseeds > 1 and len(mean):
        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)


def _save(fig, path: Path, title: str) -> None:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _seeds_note(nseeds: int) -> str:
    return f"mean of {nseeds} seeds, band min-max" if nseeds > 1 else "1 seed"


def _layer_series(run, key: str, layer: int) -> list:
    """A LayerStats measure (``key``) of one layer over the run's training batches."""
    return [getattr(b.layers[layer], key) for b in run.batches]


def _layers(run) -> int:
    return len(run.batches[0].layers) if run.batches else 1


def plot_threshold_sweep(path: Path, thresholds, table: dict, dataset: str, nseeds: int) -> None:
    """Fig. 3: final test accuracy against Th_init, fixed and Rouser."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m in ("fixed", "rouser"):
        stats = [table[m][f"{th:g}"] for th in thresholds]
        mean = np.array([np.nan if s["mean"] is None else 100 * s["mean"] for s in stats])
        lo = np.array([np.nan if s["min"] is None else 100 * s["min"] for s in stats])
        hi = np.array([np.nan if s["max"] is None else 100 * s["max"] for s in stats])
        label = run_label(m) + (" (Th_init)" if m == "rouser" else " Th")
        ax.plot(thresholds, mean, "o-", color=run_color(m), label=label)
        if nseeds > 1:
            ax.fill_between(thresholds, lo, hi, color=run_color(m), alpha=0.2, linewidth=0)
    ax.set_xlabel("threshold Th (Rouser: Th_init)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path, f"Threshold sweep on {dataset} ({_seeds_note(nseeds)})")


def plot_suboptimal(path: Path, runs: dict, settings: dict, methods, window: int, dataset: str, nseeds: int) -> None:
    """Figs. 4-5: test accuracy per epoch (top) and smoothed train accuracy per batch (bottom)."""
    fig, axes = plt.subplots(2, len(settings), figsize=(4.2 * len(settings), 6), squeeze=False)
    for j, st in enumerate(settings):
        for m in methods:
            group = runs[(st, m)]
            _line(axes[0, j], [[100 * e.test_accuracy for e in r.epochs] for r in group], run_color(m), run_label(m),
                  nseeds, marker="o")
            _line(axes[1, j], [[100 * v for v in smooth([b.train_accuracy for b in r.batches], window)] for r in group],
                  run_color(m), run_label(m), nseeds)
        axes[0, j].set_title(f"(Th_init, tau, s) = {setting_label(st)}", fontsize=9)
        axes[0, j].set_xlabel("epoch")
        axes[0, j].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, j].set_ylabel("test accuracy (%)")
        axes[1, j].set_xlabel("batch")
        axes[1, j].set_ylabel(f"train accuracy (%), {window}-batch mean")
        for ax in axes[:, j]:
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    _save(fig, path, f"Sub-optimal settings on {dataset} ({_seeds_note(nseeds)})")


def plot_active(path: Path, runs: dict, settings: dict, methods, dataset: str, nseeds: int) -> None:
    """Fig. 10: % of neurons with at least one spike on each training batch, per layer, per method."""
    fig, axes = plt.subplots(len(settings), len(methods), figsize=(3.6 * len(methods), 2.9 * len(settings)),
                             squeeze=False, sharey=True)
    for i, st in enumerate(settings):
        for j, m in enumerate(methods):
            group = runs[(st, m)]
            n = _layers(group[0]) if group[0].batches else 0
            for k in range(n):
                _line(axes[i, j], [[100 * v for v in _layer_series(r, "active_fraction", k)] for r in group],
                      series_color(k), layer_label(k, n), nseeds)
            axes[i, j].set_title(f"{run_label(m)} {setting_label(st)}", fontsize=9)
            axes[i, j].set_ylim(-3, 103)
            axes[i, j].grid(alpha=0.3)
            axes[i, j].set_xlabel("batch")
        axes[i, 0].set_ylabel("active neurons (%)")
    axes[0, 0].legend(fontsize=8)
    _save(fig, path, f"Active neurons per layer on {dataset} ({_seeds_note(nseeds)})")


def plot_per_layer(path: Path, runs: dict, settings: dict, key: str, ylabel: str, dataset: str, nseeds: int) -> None:
    """Figs. 6 and 9: a per-layer batch measure (a LayerStats field), Rouser against fixed, one row per setting."""
    methods = list(dict.fromkeys(m for (_, m) in runs))
    n = _layers(next(iter(runs.values()))[0])
    fig, axes = plt.subplots(len(settings), n, figsize=(3.6 * n, 2.9 * len(settings)), squeeze=False)
    for i, st in enumerate(settings):
        for k in range(n):
            ax = axes[i, k]
            for m in methods:
                _line(ax, [_layer_series(r, key, k) for r in runs[(st, m)]], run_color(m), run_label(m), nseeds)
            ax.set_title(f"{layer_label(k, n)} {setting_label(st)}", fontsize=9)
            ax.set_xlabel("batch")
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    _save(fig, path, f"{ylabel} on {dataset} ({_seeds_note(nseeds)})")


def plot_threshold_traces(path: Path, group: list, title: str, dataset: str) -> None:
    """Fig. 7: thresholds of sampled neurons of each layer over training (first seed), with the min-max range."""
    run = group[0]
    n = _layers(run)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3), squeeze=False)
    for k in range(n):
        ax = axes[0, k]
        x = np.arange(1, len(run.batches) + 1)
        samples = np.array(_layer_series(run, "threshold_sample", k), dtype=float)
        if samples.size:
            ax.plot(x, samples, linewidth=0.8)
        ax.fill_between(x, _layer_series(run, "threshold_min", k), _layer_series(run, "threshold_max", k),
                        color="grey", alpha=0.2, linewidth=0, label="min-max of layer")
        ax.plot(x, _layer_series(run, "threshold_mean", k), "k--", linewidth=1, label="layer mean")
        ax.set_title(layer_label(k, n), fontsize=9)
        ax.set_xlabel("batch")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("threshold Th")
    axes[0, 0].legend(fontsize=8)
    _save(fig, path, f"{title} on {dataset} (seed {run.spec.seed})")


def plot_threshold_starts(path: Path, groups: dict, dataset: str, nseeds: int) -> None:
    """Fig. 8: mean threshold per layer over training from several Th_init (band: min-max over the layer's neurons)."""
    n = _layers(next(iter(groups.values()))[0])
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3), squeeze=False)
    for k in range(n):
        ax = axes[0, k]
        for c, (label, group) in enumerate(groups.items()):
            color = series_color(c)
            _line(ax, [_layer_series(r, "threshold_mean", k) for r in group], color, label, 1)
            _, lo, _, _ = _band([_layer_series(r, "threshold_min", k) for r in group])
            x, hi, _, _ = _band([_layer_series(r, "threshold_max", k) for r in group])
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
        ax.set_title(layer_label(k, n), fontsize=9)
        ax.set_xlabel("batch")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("threshold Th")
    axes[0, -1].set_xlabel("batch (line: layer mean, band: min-max)")
    axes[0, 0].legend(fontsize=8)
    _save(fig, path, f"Rouser thresholds from several Th_init on {dataset} ({_seeds_note(nseeds)})")


def _lr_color(lr: float, c: int) -> str:
    """Threshold lr 0 is the fixed-threshold run, Rouser's lr is Rouser; others take a series colour."""
    return run_color("fixed") if lr == 0 else run_color("rouser") if lr == ROUSER_LR_TH else series_color(c + 1)


def plot_ablation(path: Path, runs: dict, settings: dict, lrs, dataset: str, nseeds: int) -> None:
    """Fig. 11: test accuracy per epoch (top) and output-layer active neurons per batch (bottom) per threshold lr."""
    fig, axes = plt.subplots(2, len(settings), figsize=(4.2 * len(settings), 6), squeeze=False)
    for j, st in enumerate(settings):
        for c, lr in enumerate(lrs):
            group = runs[(st, lr)]
            label, color, style = f"threshold lr {lr:g}", _lr_color(lr, c), "-" if c != 1 else "--"
            _line(axes[0, j], [[100 * e.test_accuracy for e in r.epochs] for r in group], color, label, nseeds,
                  marker="o", linestyle=style)
            _line(axes[1, j], [[100 * v for v in _layer_series(r, "active_fraction", -1)] for r in group], color,
                  label, nseeds, linestyle=style)
        axes[0, j].set_title(f"(Th_init, tau, s) = {setting_label(st)}", fontsize=9)
        axes[0, j].set_xlabel("epoch")
        axes[0, j].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, j].set_ylabel("test accuracy (%)")
        axes[1, j].set_xlabel("batch")
        axes[1, j].set_ylabel("active output neurons (%)")
        for ax in axes[:, j]:
            ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    _save(fig, path, f"Ablation of threshold learning on {dataset} ({_seeds_note(nseeds)})")
