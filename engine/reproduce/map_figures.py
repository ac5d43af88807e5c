"""Heat maps of the rousing map (matplotlib, Agg): Rouser, the fixed-threshold baseline and their difference."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..style import run_label  # noqa: E402
from .figures import _save, _seeds_note  # noqa: E402

__all__ = ["plot_rousing_map"]


def _grid(cells: list[dict], grid, regime: str, method: str, key: str) -> np.ndarray:
    """Mean of ``key`` (a stats dict) over seeds, in %, as a Th_init x weight-scale array."""
    a = np.full((len(grid.th_inits), len(grid.weight_scales)), np.nan)
    for c in cells:
        if c["regime"] == regime:
            mean = c[method][key]["mean"]
            i, j = grid.th_inits.index(c["th_init"]), grid.weight_scales.index(c["weight_scale"])
            a[i, j] = np.nan if mean is None else 100 * mean
    return a


def plot_rousing_map(path: Path, cells: list[dict], grid, key: str, title: str, dataset: str, nseeds: int) -> None:
    """One row per regime; columns Rouser, fixed, Rouser - fixed; cells annotated with their value."""
    rows = len(grid.regimes)
    fig, axes = plt.subplots(rows, 3, figsize=(9, 2.1 * rows + 0.6), squeeze=False)
    for i, regime in enumerate(grid.regimes):
        rouser, fixed = _grid(cells, grid, regime, "rouser", key), _grid(cells, grid, regime, "fixed", key)
        panels = ((rouser, run_label("rouser"), "viridis", (0, 100)), (fixed, run_label("fixed"), "viridis", (0, 100)),
                  (rouser - fixed, "Rouser - fixed", "RdBu", (-100, 100)))
        for j, (a, name, cmap, (lo, hi)) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", origin="lower")
            for (y, x), v in np.ndenumerate(a):
                ax.text(x, y, "-" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="black" if j == 2 or v > 50 else "white")
            ax.set_xticks(range(len(grid.weight_scales)), [f"{w:g}" for w in grid.weight_scales], fontsize=7)
            ax.set_yticks(range(len(grid.th_inits)), [f"{t:g}" for t in grid.th_inits], fontsize=7)
            ax.set_title(f"{regime}: {name}", fontsize=8)
            if j == 0:
                ax.set_ylabel("Th_init", fontsize=8)
            if i == rows - 1:
                ax.set_xlabel("initial weight scale", fontsize=8)
    _save(fig, path, f"Rousing map on {dataset}: {title} ({_seeds_note(nseeds)})")
