"""Markdown sections of the results page, one per experiment, written from the experiments' JSON records.

Each section takes the dataset's name, the experiment's record and ``asset``: the folder under ``docs/results/``
that holds its figures. The sentences that compare numbers are computed from them, never written by hand.
"""

from __future__ import annotations

from pathlib import Path

from ..style import layer_label, run_label
from .paper import PAPER, PAPER_KEY
from .specs import setting_label

__all__ = ["SECTIONS", "num", "pct", "table"]


def pct(stats: dict | None, spread: bool = True) -> str:
    """A fraction statistic as a percentage, with the seeds' min-max when there are several."""
    if not stats or stats.get("mean") is None:
        return "n/a"
    text = f"{100 * stats['mean']:.1f}"
    if spread and stats.get("n", 1) > 1:
        text += f" ({100 * stats['min']:.1f}-{100 * stats['max']:.1f})"
    return text


def num(stats: dict | None, fmt: str = "{:.1f}", spread: bool = True) -> str:
    if not stats or stats.get("mean") is None:
        return "n/a"
    text = fmt.format(stats["mean"])
    if spread and stats.get("n", 1) > 1:
        text += f" ({fmt.format(stats['min'])}-{fmt.format(stats['max'])})"
    return text


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _img(dataset: str, record: dict, asset: str, k: int = 0) -> str:
    name = Path(record["figures"][k]).name
    return f"![{record['experiment']} on {dataset}](results/{asset}/{name})"


def _diff(a: float | None, b: float | None, unit: str = " points") -> str:
    """a - b with its sign, or n/a when a run failed."""
    return "n/a (a run failed)" if a is None or b is None else f"{a - b:+.1f}{unit}"


def _mean(stats: dict | None) -> float | None:
    return None if not stats or stats.get("mean") is None else stats["mean"]


def _points(fraction):
    """A fraction as percentage points (None stays None)."""
    return None if fraction is None else 100 * fraction


def _layer_header(n: int) -> list[str]:
    return [layer_label(k, n) for k in range(n)]


PLATEAU = 0.01  # fixed thresholds whose mean accuracy ends this close to the best one's form its plateau


def _sweep_section(dataset: str, rec: dict, asset: str) -> list[str]:
    acc = rec["accuracy"]
    paper_key = PAPER_KEY.get(dataset, "nmnist")
    rows = [[th, pct(acc["fixed"][th]), pct(acc["rouser"][th])] for th in acc["fixed"]]
    out = [f"#### {dataset}: threshold sweep (Fig. 3; tau = {rec['tau']:g}, s = {rec['scale']:g})", "",
           table(["Th (Rouser: Th_init)", "fixed threshold: test acc. %", "Rouser: test acc. %"], rows), "",
           _img(dataset, rec, asset), ""]
    best = rec["best"]
    paper = PAPER["fig3"].get(paper_key, PAPER["fig3"]["nmnist"])
    fixed_means = {float(th): s["mean"] for th, s in acc["fixed"].items() if s["mean"] is not None}
    spread = 100 * (max(fixed_means.values()) - min(fixed_means.values())) if fixed_means else 0.0
    if "fixed" in best and fixed_means:
        low = paper.get("accuracy_at_0.25", paper.get("accuracy_at_0", 0))
        out.append(f"Measured: the best fixed threshold is Th = {best['fixed']['th_init']:g} "
                   f"({100 * best['fixed']['test_accuracy']:.1f}%), the worst fixed threshold gives "
                   f"{100 * min(fixed_means.values()):.1f}% (Th = {min(fixed_means, key=fixed_means.get):g}); "
                   f"the fixed-threshold accuracies span {spread:.1f} points. "
                   f"Paper ({paper_key.upper()}, Fig. 3): best Th = {paper['best_threshold']:g} with "
                   f"{paper['accuracy_at_best']:g}%"
                   + (f", {paper['accuracy_at_0.25']:g}% at Th = 0.25" if "accuracy_at_0.25" in paper else "")
                   + (f", {paper['accuracy_at_0']:g}% at Th = 0" if "accuracy_at_0" in paper else "")
                   + f" (a span of {paper['accuracy_at_best'] - low:g} points).")
    top = max(fixed_means.values(), default=None)
    near = sorted(th for th, m in fixed_means.items() if top - m <= PLATEAU)
    if len(near) > 1:
        out.append(f"Fixed thresholds {', '.join(f'{th:g}' for th in near)} all end within {100 * PLATEAU:g} point of "
                   "the best: accuracy has a plateau there rather than a single best threshold.")
    if fixed_means and max(fixed_means, key=fixed_means.get) == max(fixed_means):
        out.append("The best fixed threshold is the largest one tested, so this sweep does not bracket the optimum "
                   "for this network and budget (extend it with `--thresholds`).")
    rouser_means = [s["mean"] for s in acc["rouser"].values() if s["mean"] is not None]
    if rouser_means and fixed_means:
        out.append(f"Rouser started from the same thresholds spans {100 * (max(rouser_means) - min(rouser_means)):.1f} "
                   f"points (fixed: {spread:.1f}).")
    out.append("")
    return out


def _suboptimal_section(dataset: str, rec: dict, asset: str) -> list[str]:
    out = [f"#### {dataset}: Rouser vs fixed threshold vs fixed threshold + weight normalisation (Figs. 4-5)", ""]
    rows = []
    for st, s in rec["settings"].items():
        for m, r in s["methods"].items():
            ep, bt = r["epochs_to_target"], r["batches_to_target"]
            rows.append([setting_label(st), run_label(m), pct(r["final_test_accuracy"]),
                         f"{num(ep['stats'], '{:.1f}')} ({ep['reached']}/{len(ep['per_seed'])} reached)",
                         f"{num(bt['stats'], '{:.0f}')} ({bt['reached']}/{len(bt['per_seed'])} reached)"])
    out += [table(["(Th_init, tau, s)", "method", "final test acc. %", "epochs to target", "batches to target"], rows),
            "", f"Target: {rec['target_rule']}.", "", _img(dataset, rec, asset), ""]
    for st, s in rec["settings"].items():
        ms = s["methods"]
        r, f, w = (_mean(ms[m]["final_test_accuracy"]) for m in ("rouser", "fixed", "fixed+wn"))
        out.append(f"- {setting_label(st)}: final test accuracy, Rouser minus fixed threshold: "
                   f"{_diff(_points(r), _points(f))}; Rouser minus fixed threshold + weight norm: "
                   f"{_diff(_points(r), _points(w))}.")
    out.append("")
    return out


def _dead_section(dataset: str, rec: dict, asset: str) -> list[str]:
    dead = rec["dead_percent"]
    n = len(next(iter(next(iter(dead.values())).values())))
    rows = []
    for st, methods in dead.items():
        for m, layers in methods.items():
            rows.append([setting_label(st), run_label(m)] + [num(lay["dead_percent_mean_over_epochs"]) for lay in layers]
                        + [num(layers[-1]["percent_of_batches_layer_silent"])])
    p = PAPER["table3_dead_percent"]
    out = [f"#### {dataset}: dead neurons (Table 3) and active neurons (Fig. 10)", "",
           "Dead neurons, % of the layer, mean over epochs (dead: no spike on any training sample of the epoch):", "",
           table(["(Th_init, tau, s)", "method", *_layer_header(n), "output silent on % of batches"], rows), "",
           f"Paper, Table 3 (NMNIST, 500-500-10): SLAYER 2.0 {p['fixed'][0]:g} / {p['fixed'][1]:g} / {p['fixed'][2]:g} %, "
           f"Rouser {p['rouser'][0]:g} / {p['rouser'][1]:g} / {p['rouser'][2]:g} % (layers 1 / 2 / 3).", "",
           _img(dataset, rec, asset), ""]
    for st, methods in dead.items():
        out_r, out_f, h_r, h_f = (_mean(methods[m][k]["dead_percent_mean_over_epochs"])
                                  for k in (-1, 0) for m in ("rouser", "fixed"))
        out.append(f"- {setting_label(st)}: dead neurons (% of the layer, mean over epochs), Rouser minus fixed "
                   f"threshold: output layer {_diff(out_r, out_f)}, {layer_label(0, n)} {_diff(h_r, h_f)}.")
    out.append("")
    return out


def _per_layer_section(dataset: str, rec: dict, asset: str, key: str, title: str, unit: str, fmt: str) -> list[str]:
    data = rec[key]
    n = len(next(iter(next(iter(data.values())).values())))
    rows = []
    for st, methods in data.items():
        for m, layers in methods.items():
            rows.append([setting_label(st), run_label(m)] + [
                f"{num(lay['first_batch'], fmt)} / {num(lay['max'], fmt)} / {num(lay['last_batch'], fmt)}" for lay in layers])
    out = [f"#### {dataset}: {title}", "", f"{unit}, first batch / maximum / last batch:", "",
           table(["(Th_init, tau, s)", "method", *_layer_header(n)], rows), "", _img(dataset, rec, asset), ""]
    if rec.get("note"):
        out += [f"Note: {rec['note']}.", ""]
    return out


def _thresholds_section(dataset: str, rec: dict, asset: str) -> list[str]:
    rows = []
    for t in rec["final_thresholds"].values():
        sp = t["spec"]
        for lay in t["final"]:
            rows.append([f"({sp['th_init']:g}, {sp['tau']:g}, {sp['scale']:g})", layer_label(lay["layer"] - 1, len(t["final"])),
                         num(lay["mean"], "{:.3f}"), num(lay["min"], "{:.3f}"), num(lay["max"], "{:.3f}")])
    return [f"#### {dataset}: Rouser's thresholds (Figs. 7-8)", "", "Thresholds at the end of training:", "",
            table(["(Th_init, tau, s)", "layer", "mean", "min", "max"], rows), "",
            _img(dataset, rec, asset, 0), "", _img(dataset, rec, asset, 1), ""]


def _ablation_section(dataset: str, rec: dict, asset: str) -> list[str]:
    rows = []
    for st, lrs in rec["ablation"].items():
        for lr, r in lrs.items():
            rows.append([setting_label(st), lr, pct(r["final_test_accuracy"]), num(r["output_dead_percent_first_epoch"]),
                         num(r["output_dead_percent_last_epoch"]), num(r["output_silent_batches_percent"])])
    out = [f"#### {dataset}: ablation of threshold learning (Fig. 11)", "",
           table(["(Th_init, tau, s)", "threshold lr", "final test acc. %", "dead output % (epoch 1)",
                  "dead output % (last epoch)", "output silent on % of batches"], rows), "", _img(dataset, rec, asset), ""]
    for st, lrs in rec["ablation"].items():
        a0, a1, a2 = (_mean(lrs[k]["final_test_accuracy"]) for k in ("0", "0.001", "0.01"))
        out.append(f"- {setting_label(st)}: final test accuracy minus that of threshold lr 0: lr 0.001 "
                   f"{_diff(_points(a1), _points(a0))}, lr 0.01 {_diff(_points(a2), _points(a0))}.")
    out.append("")
    return out


SECTIONS = {
    "threshold-sweep": _sweep_section,
    "suboptimal": _suboptimal_section,
    "dead-neurons": _dead_section,
    "spike-rate": lambda d, r, a: _per_layer_section(d, r, a, "spike_percent", "spike rate (Fig. 9)",
                                                     "Spikes as % of T x batch x neurons", "{:.2f}"),
    "weight-change": lambda d, r, a: _per_layer_section(d, r, a, "weight_change", "weight change (Fig. 6a)",
                                                        "||W - W0|| / ||W0||", "{:.3f}"),
    "thresholds": _thresholds_section,
    "ablation": _ablation_section,
}
