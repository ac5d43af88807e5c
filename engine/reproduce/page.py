"""The text of docs/results.md, rendered from each budget's experiment records (see `report.write_report`).

Every number on the page is read from the experiments' JSON records; the verdicts on the paper's claims come
from the rules of `claims`, and the sentences that compare numbers are computed from them.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from ..style import layer_label, run_label
from .claims import CLAIMS, assess
from .experiments import EXPERIMENTS
from .paper import PAPER, PAPER_KEY
from .map_section import map_section
from .report import PARTIAL, BudgetResults
from .sections import SECTIONS, pct, table
from .specs import LEARNED_MARGIN, ROUSER_LR_TH

__all__ = ["render"]

CLAIMS_DATASET = "nmnist-sim"  # the dataset whose runs the verdicts are drawn from (the paper's NMNIST)

PAGE_SECTIONS = SECTIONS | {"rousing-map": map_section}  # the paper's experiments, then the rousing map


def _claims_dataset(res: BudgetResults) -> str:
    return CLAIMS_DATASET if CLAIMS_DATASET in res.plan else next(iter(res.plan))


def _run_command(res: BudgetResults, out) -> str:
    return " && ".join(f"rouser reproduce all --budget {res.budget.name} --dataset {d} --jobs 2 --out {out}"
                       for d in res.plan)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _budgets(results: list[BudgetResults], out) -> list[str]:
    rows = []
    for res in results:
        for dataset, recs in res.records.items():
            runs = {name: s for rec in recs.values() for name, s in rec.get("run_seconds", {}).items()}
            wall = res.wall.get(dataset, {})
            seeds = ", ".join(f"{name} {len(rec['seeds'])}" for name, rec in recs.items()) or "-"
            done = (f"{len(recs)} of {len(res.plan[dataset])} experiments"
                    + (" (from the JSON of an earlier report)" if dataset in res.saved else ""))
            wall_text = (f"{_minutes(wall['seconds'])} for {wall['runs_trained']} runs, --jobs "
                         f"{'/'.join(map(str, wall['jobs']))}" if wall.get("runs_trained") else "not recorded")
            rows.append([f"`{res.budget.name}`", dataset, done if recs else "not run yet", seeds, str(len(runs)),
                         wall_text, _minutes(sum(runs.values()))])
    lines = ["## Budgets", "",
             table(["budget", "dataset", "on this page", "seeds per experiment", "runs", "wall time of training",
                    "training time summed over runs"], rows), ""]
    lines += [f"- `{res.budget.name}`: {res.budget.description}." for res in results]
    lines += ["", "Wall time is the time the commands spent training runs (from `wall_time.jsonl`: one line per run "
              "trained; runs read back cost nothing); the summed time adds up each run's own training seconds "
              "(evaluation included), so with `--jobs 2` it exceeds the wall time.", ""]
    for res in results:
        if not res.ci and any(res.missing(d) for d in res.plan):
            lines += [f"The `{res.budget.name}` budget has not been run (fully) yet. Run it (resumable: after an "
                      "interruption the same command continues where it stopped), then regenerate this page:", "",
                      "```bash", _run_command(res, out),
                      f"rouser reproduce report --budget {results[0].budget.name} --out {out} --docs docs", "```", ""]
            lines += [line for dataset, rows in res.partial.items() for line in _partial(res, dataset, rows)]
    return lines


def _partial(res: BudgetResults, dataset: str, rows: list[dict]) -> list[str]:
    """The runs of an unfinished budget that have finished: no verdicts (too few runs), only what each measured."""
    if not rows:
        return []
    layers = max(len(r["dead_percent"]) for r in rows)
    header = ["run", "method", "seed", "(Th_init, tau, s)", "epochs", "test acc. %",
              *(f"dead % {layer_label(k, layers)}" for k in range(layers)), "output active at the end %",
              "output Th mean"]
    body = [[f"`{r['run']}`", run_label(r["method"]), str(r["seed"]), f"({r['th_init']:g}, {r['tau']:g}, {r['scale']:g})",
             str(r["epochs"]), "n/a" if r["test_accuracy"] is None else f"{100 * r['test_accuracy']:.1f}",
             *(f"{d:.1f}" for d in r["dead_percent"]), *(["n/a"] * (layers - len(r["dead_percent"]))),
             f"{100 * r['active_fraction'][-1]:.0f}" if r["active_fraction"] else "n/a",
             "n/a" if r["output_threshold_mean"] is None else f"{r['output_threshold_mean']:.3f}"] for r in rows]
    return [f"Finished so far at the `{res.budget.name}` budget on {dataset}: {len(rows)} runs (numbers at the end of "
            f"each run; dead: no spike on any training sample of the last epoch). Too few runs for the claims' "
            f"verdicts; `docs/results/{res.asset(dataset)}/{PARTIAL}` holds them.", "", table(header, body), ""]


def _claims(results: list[BudgetResults]) -> list[str]:
    header = ["claim", "paper"] + [f"`{r.budget.name}` budget ({_claims_dataset(r)})" for r in results]
    rows = []
    for claim in CLAIMS:
        cells = []
        for res in results:
            dataset = _claims_dataset(res)
            c = assess(claim, res.records.get(dataset, {}), dataset)
            cells.append(f"**{c.verdict}**" + (f": {c.ours}" if c.ours else "") + (f" ({c.reason})" if c.reason else ""))
        rows.append([claim.title, claim.paper, *cells])
    return ["## The paper's claims, budget by budget", "",
            "One line per claim; the verdict is computed by `engine.reproduce.claims.judge` from per-seed differences",
            "between runs that share their initial weights and batches: **supported** when the difference has the",
            "paper's sign in every seed and its mean exceeds both the spread over seeds and the claim's floor (1 point",
            "of accuracy or of % neurons, 10 batches, 5 points for the threshold sensitivity); **contradicted** when",
            "the same holds with the opposite sign; otherwise **cannot tell at this budget**. Claims on the threshold",
            "sweep need one seed (Fig. 3 reports one run per threshold); the others need two. Where runs end within",
            f"{100 * LEARNED_MARGIN:g} points of chance, Fig. 4b (convergence) cannot be told and Fig. 11b "
            "(\"0.01 learns\") is contradicted", "if the runs at 0.01 are among them.", "",
            table(header, rows), ""]


def _times(res: BudgetResults) -> list[str]:
    rows = [[dataset, name, str(len(rec["runs"])), f"{rec['train_seconds']:.0f}"]
            for dataset, recs in res.records.items() for name, rec in recs.items()]
    if not rows:
        return []
    return [f"### Budget `{res.budget.name}`", "",
            table(["dataset", "experiment", "runs (shared runs counted in each)", "training seconds of its runs"], rows),
            ""]


def _table1(results: list[BudgetResults]) -> list[str]:
    rows = []
    for res in results:
        for dataset, recs in res.records.items():
            key = PAPER_KEY.get(dataset)
            rec = recs.get("suboptimal")
            if rec is None or key not in PAPER["table1_accuracy"]:
                continue
            ms = rec["settings"]["A"]["methods"]
            theirs = " / ".join(f"{k} {v:g}%" for k, v in PAPER["table1_accuracy"][key].items())
            rows.append([f"`{res.budget.name}`", dataset, f"{pct(ms['fixed']['final_test_accuracy'])}%",
                         f"{pct(ms['rouser']['final_test_accuracy'])}%", f"{key.upper()}: {theirs}"])
    return [table(["budget", "dataset", "fixed threshold, setting A", "Rouser, setting A",
                   "paper (Table 1, full data, paper network)"], rows), ""]


def _experiments(res: BudgetResults, out) -> list[str]:
    lines = [f"## The experiments at the `{res.budget.name}` budget", ""]
    for dataset, experiments in res.plan.items():
        lines += [f"### {dataset}", ""]
        recs = res.records.get(dataset, {})
        if dataset in res.saved and recs:
            lines += [f"Read from the JSON in `docs/results/{res.asset(dataset)}/` (its runs are not under `{out}`).", ""]
        for name in experiments:
            if name in recs:
                lines += PAGE_SECTIONS[name](dataset, recs[name], res.asset(dataset))
            else:
                lines += [f"#### {dataset}: {name}", "", f"Not run yet: `{_run_command(res, out)}`.", ""]
    return lines


def render(results: list[BudgetResults], seeds: int | None, out, docs: Path) -> str:
    ci = results[0]
    lines = [
        "# Reproducing the Rouser paper's experiments",
        "",
        "<!-- generated by `rouser reproduce report`; do not edit by hand: rerun the command -->",
        "",
        "This page is written by one command from the numbers our engine measured; nothing on it is typed in or tuned",
        "by hand. Regenerate it (finished runs under `--out` are read back, not trained again) with:",
        "",
        "```bash",
        f"rouser reproduce report --budget {ci.budget.name}{f' --seeds {seeds}' if seeds else ''} --out {out} --docs {docs}",
        "```",
        "",
        f"The `{ci.budget.name}` budget is the one CI can afford; the command trains what it lacks. "
        + "".join(f"The `{r.budget.name}` budget trains the paper's network for hours; the command only reads its "
                  f"finished runs. " for r in results[1:])
        + "With several seeds, tables give the mean and, in brackets, the min-max over seeds, and figures shade the"
        " min-max band; with one seed there is no spread.",
        f"Measured on {torch.get_num_threads()} CPU threads ({platform.machine()}, torch {torch.__version__}), no GPU, "
        "on the embedded datasets only (`nmnist-sim`: real MNIST digits through a simulated event camera "
        "in N-MNIST's saccades; `gestures-sim`: simulated hand gestures shaped like DVS128 Gesture at 32x32).",
        "The per-experiment commands are `rouser reproduce EXPERIMENT --dataset NAME --budget BUDGET` with EXPERIMENT "
        f"one of {', '.join(f'`{e}`' for e in EXPERIMENTS)}; `rouser reproduce all` runs them all on one dataset. "
        "The numbers behind every table and figure are in `docs/results/<dataset>/` "
        + "".join(f"and `docs/results/<dataset>-{r.budget.name}/` " for r in results[1:])
        + "(CSV per run and epoch or batch, JSON summaries, `wall_time.jsonl`).",
        "",
        *_budgets(results, out),
        *_claims(results),
        "## Time per experiment",
        "",
        "Runs are shared between experiments (the Rouser and fixed runs of `suboptimal` feed `dead-neurons`, `spike-rate`,",
        "`weight-change`, `thresholds` and `ablation`; the sweep's Th = 1.25 runs are setting A's), so the seconds below",
        "overlap; each run is trained once. Seconds are the runs' own training time (evaluation included, data loading",
        "not), as logged in their `summary.json`.",
        "",
        *[line for res in results for line in _times(res)],
        "## Table 1: accuracy",
        "",
        "Final test accuracy at setting A, (Th_init, tau, s) = (1.25, 3.75, 1.5), beside the paper's Table 1. The paper",
        "trains the full datasets to convergence; these runs are far shorter, on synthetic data, so only the comparison",
        "between the two columns on the same row means anything.",
        "",
        *_table1(results),
        *[line for res in results for line in _experiments(res, out)],
        *_discussion(),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _discussion() -> list[str]:
    return [
        "## Where this agrees with the paper, where it differs, and why",
        "",
        "The verdicts and the sentences under each table above are computed from the measured numbers. What stays true",
        "whatever they are:",
        "",
        "- **Data.** `nmnist-sim` and `gestures-sim` are synthetic stand-ins (5,000 MNIST digits through a simulated",
        "  camera; simulated gestures), not N-MNIST (60,000 recordings) or DVS128 Gesture. Absolute accuracies are not",
        "  comparable with the paper's; with real files under `--data-root`, the same commands run on `nmnist`, `dvs128`",
        "  and `shd`.",
        "- **Budgets.** The `quick` budget trains a 64-neuron hidden layer on 60 time steps for a few hundred batches.",
        "  The `paper` budget trains the paper's 2312-500-500-10 network on 300 steps for 1,000 steps of Adam, against",
        "  the paper's 10 or more epochs of 60,000 samples: the paper's effects are about the course of training",
        "  (epochs 0-5 of Fig. 10c, convergence in Figs. 4-5), which both budgets sample only at its start.",
        "  `--budget full` uses the paper's network and 10 full epochs (not run for this page).",
        f"- **Threshold learning rate.** Every Rouser run here learns its thresholds at {ROUSER_LR_TH:g}, the rate the",
        "  paper's ablation (section 4.2, Fig. 11b) found necessary, not Table 2's single Adam rate of 1e-3 (the engine's",
        "  default). The ablation experiment also trains 1e-3.",
        "- **Initialisation.** Every budget uses the engine's default weight initialisation, unscaled (see the README);",
        "  no budget tunes it. Where no neuron is dead under a fixed threshold, Rouser has nothing to rouse and the two",
        "  methods train alike; the dead-neuron and ablation tables show how often that is the case here.",
        "- **Baseline.** The fixed-threshold baseline is this engine with threshold learning rate 0 (same loss, same",
        "  initial weights, same batches), not SLAYER 2.0 itself (which has its own neuron scaling, delays and loss",
        "  conventions). This isolates threshold learning, as the paper's ablation (section 4.2) does, but the paper's",
        "  SLAYER numbers also carry SLAYER's own choices.",
        "- **Loss details.** The van Rossum loss of eq 6 uses a truncated alpha kernel (tau = 5 steps), a target that",
        "  spikes on every second step for the labelled neuron and never for the others, summed over neurons and time and",
        "  averaged over the batch. The paper does not give its kernel, its target timing or its reduction; each changes",
        "  the size of the gradients reaching the thresholds, and so how fast Adam moves them.",
        "- **Time resolution.** The `quick` preset bins the 300 ms of a sample into 60 steps of 5 ms, so each step",
        "  carries about five times the input of the paper's 1 ms steps and membrane voltages run higher; the threshold",
        "  that suits the network moves with it, so the best fixed threshold at that budget need not be the paper's 1.",
        "- **Metrics.** Dead neurons are counted per epoch on the training samples (Table 3); active neurons on each",
        "  training batch, not on the first sample of the last batch as in Fig. 10; spike rates on training batches, not",
        "  at inference as in Fig. 9; weight change only against the initial weights (Fig. 6a), not against the settled",
        "  weights (Fig. 6b).",
        "",
    ]
