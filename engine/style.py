"""How runs and layers are named and coloured everywhere: the dashboard, the figures and the results page.

A plain module (no plotting imports), so the dashboard (Bokeh) and the reproduction figures (matplotlib) draw
Rouser and the fixed-threshold run in the same colours under the same names. Colours are ColorBrewer's Dark2.
"""

from __future__ import annotations

__all__ = ["RUN_COLORS", "RUN_LABELS", "RUN_SHORT", "SERIES_COLORS", "layer_label", "run_color", "run_label", "series_color"]

# the runs of a comparison: Rouser (learned thresholds), the fixed-threshold baseline, and that baseline with
# weight normalisation (the paper's third method in Figs. 4-5 and 10)
RUN_COLORS = {"rouser": "#d95f02", "fixed": "#1b9e77", "fixed+wn": "#7570b3"}
RUN_LABELS = {"rouser": "Rouser", "fixed": "fixed threshold", "fixed+wn": "fixed threshold + weight norm"}
RUN_SHORT = {"rouser": "Rouser", "fixed": "fixed", "fixed+wn": "fixed+wn"}  # for titles of small plots
# other series (layers of one run, runs from several Th_init, threshold learning rates): the rest of Dark2
SERIES_COLORS = ("#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def layer_label(k: int, layers: int) -> str:
    """The name of layer ``k`` (0-based) of a network with ``layers`` spiking layers: hidden 1, ..., output."""
    return "output" if k == layers - 1 else f"hidden {k + 1}"


def run_color(run: str) -> str:
    return RUN_COLORS.get(run, "black")


def run_label(run: str) -> str:
    return RUN_LABELS.get(run, run)


def series_color(i: int) -> str:
    return SERIES_COLORS[i % len(SERIES_COLORS)]
