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
    ratio = "n/a" if ratio is None else ("inf" if math.isinf(ratio) else f"{ratio:.2g}x")
    return f"{entry['voltage_change']:+.4f} / {entry['threshold_change']:+.4f} ({ratio})"


def _sentence(regime: str, name: str, e: dict) -> str:
    """One measured sentence: which of weights and threshold moved the layer's silent neurons toward firing."""
    dv, dth, n = e["voltage_change"], e["threshold_change"], e["cells_steps"]
    head = f"- `{regime}`, {name} ({n} cell-steps): "
    if dv == 0 and dth == 0:
        return head + "neither the weights nor the thresholds moved the silent neurons in these steps."
    if dv == 0:
        return head + f"the weight updates did not move the silent neurons' voltage at all; only their thresholds acted ({dth:+.4f} per step)."
    if dv < 0 and dth <= 0:
        return head + (f"the weights lowered the silent neurons' voltage ({dv:+.4f} per step) and their thresholds rose "
                       f"({-dth:.4f}): training pushed them further from firing.")
    if dth <= 0:
        return head + f"the weights moved the voltage by {dv:+.4f} per step while the thresholds did not fall ({dth:+.4f})."
    if abs(dv) >= dth:
        return head + f"weights moved the voltage by {dv:+.4f} per step, the threshold fell by {dth:.4f}: the weights act {abs(dv) / dth:.2g}x faster."
    return head + f"weights moved the voltage by {dv:+.4f} per step, the threshold fell by {dth:.4f}: the threshold acts {dth / abs(dv):.2g}x faster."


def _explanation(rec: dict) -> list[str]:
    """What the speeds say, regime by regime and layer by layer."""
    speeds = rec["speeds"]
    layers = sorted({k for entry in speeds.values() for k in entry}, key=lambda k: int(k.removeprefix("layer")))
    return [_sentence(regime, layer_label(int(key.removeprefix("layer")) - 1, len(layers)), entry[key])
            for regime, entry in speeds.items() for key in layers if entry.get(key)]


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
    out += [table(["regime", "what changes", "lr / lr_th", "cells: output fully active in every Rouser seed, in no fixed one",
                   "cells: fully active in more Rouser seeds than fixed ones", "cells", "diverged runs"], rows), ""]
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
