"""The paper's claims, each judged from an experiment's numbers by one explicit rule: supported, contradicted, or
cannot tell at this budget.

The rule (`judge`): for each seed, the difference the claim is about (e.g. Rouser's final test accuracy minus the
fixed threshold's, from the same initial weights and batches). *Supported* when the difference has the paper's
sign in every seed and its mean exceeds both the seeds' spread (max - min of the differences) and the claim's
floor (the smallest difference we call one); *contradicted* when the same holds with the opposite sign;
otherwise *cannot tell*, as also when fewer seeds than the claim needs have a result.

Two claims are about learning itself, so a run that ends near chance (within ``LEARNED_MARGIN`` of 1 / classes)
settles them without the rule: Fig. 4b's convergence speed *cannot tell* when no method learned, and Fig. 11b's
"0.01 learns" is *contradicted* when the runs at 0.01 did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .paper import PAPER, PAPER_KEY
from .specs import LEARNED_MARGIN, setting_label

__all__ = ["CANNOT_TELL", "CLAIMS", "CONTRADICTED", "Claim", "ClaimResult", "Evidence", "SUPPORTED", "assess",
           "judge"]

SUPPORTED, CONTRADICTED, CANNOT_TELL = "supported", "contradicted", "cannot tell at this budget"


def judge(diffs: list[float | None], sign: int, floor: float, min_seeds: int = 2,
          beyond_spread: bool = True) -> tuple[str, str]:
    """(verdict, reason) for per-seed differences whose sign the paper predicts (``sign`` +1 or -1).

    None entries (a run without a result) are left out; ``beyond_spread`` False drops the spread test."""
    d = [x for x in diffs if x is not None]
    if len(d) < min_seeds:
        return CANNOT_TELL, f"{len(d)} seed(s) with a result; the rule needs {min_seeds}"
    mean, spread = sum(d) / len(d), max(d) - min(d)
    margin = max(spread if beyond_spread else 0.0, floor)
    what = f"mean {mean:+.3g} against {'spread ' + format(spread, '.3g') + ', ' if beyond_spread and len(d) > 1 else ''}floor {floor:g}"
    seeds = ", ".join(f"{x:+.3g}" for x in d)
    if all(sign * x > 0 for x in d) and abs(mean) > margin:
        return SUPPORTED, f"the paper's sign in every seed; {what}"
    if all(sign * x < 0 for x in d) and abs(mean) > margin:
        return CONTRADICTED, f"the opposite sign in every seed; {what}"
    if not (all(x > 0 for x in d) or all(x < 0 for x in d)):
        return CANNOT_TELL, f"the sign differs between seeds: {seeds}"
    return CANNOT_TELL, f"the difference is within the spread or below the floor: {what}"


@dataclass(frozen=True)
class Evidence:
    """What a claim's measure found: per-seed differences for `judge` and our numbers in words."""

    diffs: list[float | None]
    sign: int
    floor: float
    text: str
    min_seeds: int = 2
    beyond_spread: bool = True
    decided: tuple[str, str] | None = None  # (verdict, reason) the measure settles itself, without `judge`


@dataclass(frozen=True)
class Claim:
    key: str
    title: str
    paper: str  # what the paper reports, in its numbers
    experiment: str  # the experiment whose record the measure reads
    measure: Callable[[dict, str], Evidence | None]  # (record, paper dataset key) -> evidence; None: not measurable


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str  # SUPPORTED, CONTRADICTED, CANNOT_TELL, or "not run yet"
    ours: str
    reason: str


def _pts(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _pairs(a: list, b: list, scale: float = 1.0) -> list[float | None]:
    """Seed-by-seed a - b (None where either is missing)."""
    return [None if x is None or y is None else scale * (x - y) for x, y in zip(a, b)]


def _seeds(diffs: list[float | None], unit: str = "") -> str:
    return ", ".join("n/a" if x is None else f"{x:+.1f}{unit}" for x in diffs)


def _mean(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else None


def _table1(rec: dict, key: str) -> Evidence:
    ms = rec["settings"]["A"]["methods"]
    r, f = ms["rouser"]["final_test_accuracy"], ms["fixed"]["final_test_accuracy"]
    d = _pairs(r["values"], f["values"], 100)
    return Evidence(d, +1, 1.0, f"at {setting_label('A')}: Rouser {_pts(r['mean'])}, fixed threshold {_pts(f['mean'])}; "
                    f"Rouser minus fixed per seed: {_seeds(d, ' pt')}")


def _dead_layers(layers: list[dict]) -> str:
    means = [lay["dead_percent_mean_over_epochs"]["mean"] for lay in layers]
    return " / ".join("n/a" if m is None else f"{m:.1f}" for m in means)


def _table3(rec: dict, key: str) -> Evidence:
    ms = rec["dead_percent"]["B"]
    d = _pairs(ms["rouser"][-1]["dead_percent_mean_over_epochs"]["values"],
               ms["fixed"][-1]["dead_percent_mean_over_epochs"]["values"])
    return Evidence(d, -1, 1.0, f"at {setting_label('B')}, dead % per layer (mean over epochs): Rouser "
                    f"{_dead_layers(ms['rouser'])}, fixed {_dead_layers(ms['fixed'])}; output layer, Rouser minus fixed "
                    f"per seed: {_seeds(d, ' pt')}")


def _fixed_sweep(rec: dict) -> dict[float, list]:
    return {float(th): s["values"] for th, s in rec["accuracy"]["fixed"].items()}


def _fig3_sensitivity(rec: dict, key: str) -> Evidence | None:
    acc = _fixed_sweep(rec)
    if 1.0 not in acc or 0.25 not in acc:
        return None
    d = _pairs(acc[1.0], acc[0.25], 100)
    means = {th: _mean(v) for th, v in acc.items() if _mean(v) is not None}
    span = 100 * (max(means.values()) - min(means.values())) if means else 0.0
    return Evidence(d, +1, 5.0, f"fixed Th = 1: {_pts(_mean(acc[1.0]))}, Th = 0.25: {_pts(_mean(acc[0.25]))} "
                    f"(per seed {_seeds(d, ' pt')}); all fixed thresholds tried span {span:.1f} points", min_seeds=1)


def _fig3_best(rec: dict, key: str) -> Evidence | None:
    paper_best = PAPER["fig3"].get(key, PAPER["fig3"]["nmnist"])["best_threshold"]
    acc = _fixed_sweep(rec)
    means = {th: _mean(v) for th, v in acc.items() if _mean(v) is not None}
    others = {th: m for th, m in means.items() if th != paper_best}
    if paper_best not in means or not others:
        return None
    rival = max(others, key=others.get)
    best = max(means, key=means.get)
    d = _pairs(acc[paper_best], acc[rival], 100)
    return Evidence(d, +1, 1.0, f"best fixed Th tried: {best:g} ({_pts(means[best])}); Th = {paper_best:g}: "
                    f"{_pts(means[paper_best])}; Th = {paper_best:g} minus the best other (Th = {rival:g}) per seed: "
                    f"{_seeds(d, ' pt')}", min_seeds=1)


def _nothing_learned(accuracy: float | None, chance: float, where: str, whose: str = "the best method's") -> str:
    return (f"nothing learned at {where}: {whose} mean final test accuracy, {_pts(accuracy)}, is within "
            f"{100 * LEARNED_MARGIN:g} points of chance ({_pts(chance)})")


def _fig4(rec: dict, key: str) -> Evidence:
    st = rec["settings"]["B"]
    ms = st["methods"]
    if "chance_accuracy" in st and st["target_accuracy"] is None:  # no method learned (older records lack chance)
        why = _nothing_learned(st["best_accuracy"], st["chance_accuracy"], setting_label("B"))
        return Evidence([], +1, 10.0, why, decided=(CANNOT_TELL, "convergence speed needs a run that learns"))

    def batches(m):  # a run that never reached the target counts as all its batches (a lower bound on the gain)
        e = ms[m]
        return [b if b is not None else n for b, n in zip(e["batches_to_target"]["per_seed"], e["batches_trained"])]

    f, r = batches("fixed"), batches("rouser")
    d = _pairs(f, r)
    cut = 100 * (1 - _mean(r) / _mean(f)) if _mean(f) else None
    return Evidence(d, +1, 10.0, f"at {setting_label('B')}, batches to the target accuracy: Rouser {_mean(r):.0f}, "
                    f"fixed {_mean(f):.0f} (not reached: counted as the whole run), "
                    + (f"{abs(cut):.0f}% {'fewer' if cut >= 0 else 'more'} for Rouser" if cut is not None else "n/a")
                    + f"; fixed minus Rouser per seed: {_seeds(d)}")


THRESHOLD_MOVE = 0.05  # a layer's mean threshold that moved less than this from Th_init counts as not moving


def _figs7_8(rec: dict, key: str) -> Evidence:
    moves = {}  # group -> per seed, the largest move of a layer's mean threshold from Th_init
    for label, t in rec["final_thresholds"].items():
        if label == "A":
            continue  # Fig. 7 starts from 0.25 (setting B); Fig. 8 from 0, 0.5, 1
        th0 = t["spec"]["th_init"]
        per_layer = [lay["mean"]["values"] for lay in t["final"]]
        moves[label] = [None if any(v[s] is None for v in per_layer) else max(abs(v[s] - th0) for v in per_layer)
                        for s in range(len(per_layer[0]))]
    smallest = [None if any(m[s] is None for m in moves.values()) else min(m[s] for m in moves.values())
                for s in range(len(next(iter(moves.values()))))]
    d = [None if x is None else x - THRESHOLD_MOVE for x in smallest]
    starts = "; ".join(f"{'Th_init 0.25 ' + setting_label('B') if g == 'B' else 'Th_init ' + g[2:]}: "
                       f"{_mean(m):.3f}" for g, m in moves.items() if _mean(m) is not None)
    return Evidence(d, +1, 0.0, f"largest move of a layer's mean threshold from Th_init, mean over seeds: {starts}; "
                    f"per seed, the least-moving start's move minus {THRESHOLD_MOVE:g} (below 0: did not move): "
                    + ", ".join("n/a" if x is None else f"{x:+.3f}" for x in d), beyond_spread=False)


def _fig10(rec: dict, key: str) -> Evidence:
    ms = rec["dead_percent"]["B"]
    r, f = (ms[m][-1]["active_percent_mean_over_batches"] for m in ("rouser", "fixed"))
    sr, sf = (ms[m][-1]["percent_of_batches_layer_silent"]["mean"] for m in ("rouser", "fixed"))
    d = _pairs(r["values"], f["values"])
    return Evidence(d, +1, 1.0, f"at {setting_label('B')}, output neurons active per training batch, mean over training: "
                    f"Rouser {r['mean']:.1f}%, fixed {f['mean']:.1f}%; output layer silent on {sr:.1f}% vs {sf:.1f}% "
                    f"of batches; Rouser minus fixed per seed: {_seeds(d, ' pt')}")


def _fig11(rec: dict, key: str) -> Evidence:
    lrs = rec["ablation"]["B"]
    d = _pairs(lrs["0.01"]["final_test_accuracy"]["values"], lrs["0"]["final_test_accuracy"]["values"], 100)
    accs = ", ".join(f"lr {lr}: {_pts(r['final_test_accuracy']['mean'])}" for lr, r in lrs.items())
    text = f"at {setting_label('B')}, final test accuracy {accs}; lr 0.01 minus lr 0 per seed: {_seeds(d, ' pt')}"
    chance, learned = rec.get("chance_accuracy", {}).get("B"), lrs["0.01"]["final_test_accuracy"]["mean"]
    if chance is not None and learned is not None and learned < chance + LEARNED_MARGIN:
        return Evidence(d, +1, 1.0, text, decided=(CONTRADICTED, _nothing_learned(learned, chance, "lr 0.01", "its")))
    return Evidence(d, +1, 1.0, text)


CLAIMS = (
    Claim("table1", "Table 1 / Fig. 4a: Rouser is more accurate than the fixed threshold",
          "NMNIST: Rouser 99.21% vs SLAYER 98.89% (+0.32 points); at (1.25, 3.75, 1.5) about +2 points (Fig. 4a)",
          "suboptimal", _table1),
    Claim("table3", "Table 3: Rouser leaves fewer dead neurons, above all in the output layer",
          "dead % per layer: SLAYER 2.0 45.6 / 61.8 / 76.4, Rouser 37.1 / 15.4 / 0", "dead-neurons", _table3),
    Claim("fig3-sensitivity", "Fig. 3: accuracy is very sensitive to a fixed threshold",
          "NMNIST after 10 epochs: Th = 1: 96%, Th = 0.25: 41% (+55 points)", "threshold-sweep", _fig3_sensitivity),
    Claim("fig3-best", "Fig. 3: the best fixed threshold is Th = 1 (NMNIST)",
          "Th = 1 best of those tried on NMNIST (96%); 0.75 on DVS128", "threshold-sweep", _fig3_best),
    Claim("fig4", "Fig. 4b: Rouser converges faster",
          "about 70% lower training latency at (0.25, 3, 3)", "suboptimal", _fig4),
    Claim("figs7-8", "Figs. 7-8: Rouser's thresholds move from their initial value during training",
          "thresholds adapt from Th_init 0.25 (Fig. 7) and 0, 0.5, 1 (Fig. 8); the text gives no values",
          "thresholds", _figs7_8),
    Claim("fig10", "Fig. 10: Rouser keeps the output layer active where the fixed threshold leaves it silent",
          "SLAYER 2.0: output layer silent in epochs 0-5; Rouser: 100% of output neurons active", "dead-neurons", _fig10),
    Claim("fig11", "Fig. 11b: threshold learning rate 0.01 learns where 0 does not",
          "at (0.25, 3, 3) lr 0 cannot learn, 0.001 hardly, 0.01 learns", "ablation", _fig11),
)


def assess(claim: Claim, records: dict, dataset: str) -> ClaimResult:
    """The claim's verdict from one dataset's experiment records (name -> JSON record)."""
    rec = records.get(claim.experiment)
    if rec is None:
        return ClaimResult(claim, "not run yet", "", f"no `{claim.experiment}` results")
    evidence = claim.measure(rec, PAPER_KEY.get(dataset, "nmnist"))
    if evidence is None:
        return ClaimResult(claim, CANNOT_TELL, "the sweep lacks the thresholds the claim names", "")
    if evidence.decided:
        return ClaimResult(claim, evidence.decided[0], evidence.text, evidence.decided[1])
    verdict, reason = judge(evidence.diffs, evidence.sign, evidence.floor, evidence.min_seeds, evidence.beyond_spread)
    return ClaimResult(claim, verdict, evidence.text, reason)
