"""The "Rousing map" section of the results page, written from the map's JSON record; every sentence is computed."""

from __future__ import annotations

import math

from ..style import layer_label
from .sections import _img, num, pct, table

__all__ = ["map_section"]


def _count(cells: list[dict], regime: str, kind: str) -> int:
    return sum(c["regime"] == regime and c["contrast"] == kind for c in cells)


def _speed(entry: dict | None) -> str:
    if not entry:
        return "n/a"
    ratio = entry["ratio"]
    ratio = "n/a" if ratio is None else ("inf" if math.isinf(ratio) else f"{ratio:.0f}x")
    return f"{entry['voltage_change']:+.4f} / {entry['threshold_change']:+.4f} ({ratio})"


def _explanation(rec: dict) -> list[str]:
    """What the speeds say: where weights move silent neurons faster than thresholds, and where only thresholds act."""
    speeds, out = rec["speeds"], []
    layers = sorted({k for entry in speeds.values() for k in entry}, key=lambda k: int(k.removeprefix("layer")))
    n = len(layers)
    for regime, entry in speeds.items():
        for key in layers:
            e = entry.get(key)
            if not e:
                continue
            name = layer_label(int(key.removeprefix("layer")) - 1, n)
            if e["voltage_change"] == 0:
                out.append(f"- `{regime}`, {name}: the weight updates did not move the silent neurons' voltage at all "
                           f"(median 0 over {e['cells_steps']} cell-steps); only the thresholds acted "
                           f"({e['threshold_change']:+.4f} per step).")
            elif e["threshold_change"] > 0:
                faster = "faster" if abs(e["voltage_change"]) > e["threshold_change"] else "slower"
                out.append(f"- `{regime}`, {name}: weights moved a silent neuron's voltage by "
                           f"{e['voltage_change']:+.4f} per step, its threshold fell by {e['threshold_change']:+.4f}: "
                           f"the weights act {abs(e['voltage_change']) / e['threshold_change']:.0f}x {faster}.")
    return out


def map_section(dataset: str, rec: dict, asset: str) -> list[str]:
    cells, grid = rec["cells"], rec["grid"]
    seeds = len(rec["seeds"])
    regimes = rec["regimes"]
    out = [f"#### {dataset}: Rousing map", "",
           f"Where do learned thresholds rouse an output layer that fixed thresholds leave silent? Each cell trains "
           f"Rouser and the fixed-threshold baseline from the same {seeds} seeds (same initial weights and batches) at "
           f"Th_init in {', '.join(f'{t:g}' for t in grid['th_inits'])} and initial weight scale in "
           f"{', '.join(f'{w:g}' for w in grid['weight_scales'])} (x the default kaiming-uniform init; tau 3.75, "
           f"s 1.5), in each regime below. Only `paper` is the paper's setting; the others depart from it on purpose, "
           f"one change each. Command: `rouser reproduce rousing-map --dataset {dataset} --budget "
           f"{rec['budget']['name']} --seeds {seeds}`. {rec['definition'][0].upper()}{rec['definition'][1:]}.", ""]
    rows = []
    for name in grid["regimes"]:
        r = regimes[name]
        mine = [c for c in cells if c["regime"] == name]
        diverged = sum(c["rouser"]["diverged"] + c["fixed"]["diverged"] for c in mine)
        rows.append([f"`{name}`", r["description"], f"{r['lr']:g} / {r['lr_th']:g}",
                     str(_count(cells, name, "rouses")), str(_count(cells, name, "partial")),
                     str(len(mine)), str(diverged)])
    out += [table(["regime", "what changes", "lr / lr_th", "cells where Rouser rouses and fixed stays silent",
                   "cells where Rouser is ahead", "cells", "diverged runs"], rows), ""]
    rousing = [c for c in cells if c["contrast"] != "none"]
    paper_rouses = _count(cells, "paper", "rouses")
    total = sum(c["contrast"] == "rouses" for c in cells)
    out.append(f"Measured: in {total} of {len(cells)} cells Rouser's output layer became fully active in every seed "
               f"while the fixed threshold's did not in any; {paper_rouses} of them at the paper's single learning "
               f"rate (regime `paper`).")
    out.append("")
    if rousing:
        out += [table(["regime", "Th_init", "weight scale", "Rouser", "fixed threshold", "test acc. % Rouser",
                       "test acc. % fixed"],
                      [[f"`{c['regime']}`", f"{c['th_init']:g}", f"{c['weight_scale']:g}", c["rouser"]["text"],
                        c["fixed"]["text"], pct(c["rouser"]["test_accuracy"]), pct(c["fixed"]["test_accuracy"])]
                       for c in rousing]), ""]
    out += [_img(dataset, rec, asset, 0), "", _img(dataset, rec, asset, 1), ""]
    out += ["Why, measured: for the neurons silent on each of the first batches, one Adam step's change of their "
            "voltage (mean over T and the batch) caused by their own input weights, against the fall of their "
            "threshold; medians over the regime's cells, voltage units per step (`rousing_map_speeds.csv`). "
            "Columns: weight-driven voltage change / threshold fall (their ratio).", ""]
    layers = sorted({k for entry in rec["speeds"].values() for k in entry}, key=lambda k: int(k.removeprefix("layer")))
    out += [table(["regime", *(layer_label(int(k.removeprefix("layer")) - 1, len(layers)) for k in layers)],
                  [[f"`{regime}`", *(_speed(entry.get(k)) for k in layers)] for regime, entry in rec["speeds"].items()]),
            ""]
    out += _explanation(rec)
    out += ["", f"Batches until the output layer is fully active, per cell and method, are in "
            f"`docs/results/{asset}/rousing_map_runs.csv`; the mean over cells of Rouser's test accuracy minus the "
            "fixed threshold's, per regime: " + ", ".join(
                f"`{name}` {num(_acc_gap(cells, name), '{:+.1f}', spread=False)} points" for name in grid["regimes"])
            + ".", ""]
    return out


def _acc_gap(cells: list[dict], regime: str) -> dict:
    gaps = [100 * (c["rouser"]["test_accuracy"]["mean"] - c["fixed"]["test_accuracy"]["mean"]) for c in cells
            if c["regime"] == regime and c["rouser"]["test_accuracy"]["mean"] is not None
            and c["fixed"]["test_accuracy"]["mean"] is not None]
    return dict(mean=sum(gaps) / len(gaps) if gaps else None, n=len(gaps))
