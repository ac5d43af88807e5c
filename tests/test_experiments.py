"""`rouser reproduce`: every experiment's files, resuming a sweep, the results page, and the direction of the
paper's claims at a small budget (checked over several seeds before being asserted here)."""

import csv
import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.reproduce import EXPERIMENTS, Runner, budget_with, run_all, run_experiment, setting_spec, write_report
from engine.train import Trainer

# two epochs of two batches of 16 on `patterns`: seconds per run
MICRO = budget_with("tiny", epochs=2, max_batches=2, test_samples=32, name="micro")
SWEEP = (0.25, 1.25)
PNG = b"\x89PNG\r\n\x1a\n"

EXPECTED = {
    "threshold-sweep": (["threshold_sweep.csv", "threshold_sweep.json"], ["threshold_sweep.png"],
                        ["method", "th_init", "seed", "test_accuracy", "output_dead_percent_last_epoch"]),
    "suboptimal": (["suboptimal_epochs.csv", "suboptimal_batches.csv", "suboptimal.json"], ["suboptimal.png"],
                   ["setting", "method", "seed", "epoch", "test_accuracy"]),
    "dead-neurons": (["dead_neurons_epochs.csv", "active_neurons_batches.csv", "dead_neurons.json"],
                     ["active_neurons.png"], ["setting", "method", "seed", "epoch", "layer", "dead_percent"]),
    "spike-rate": (["spike_rate.csv", "spike_rate.json"], ["spike_rate.png"],
                   ["setting", "method", "seed", "step", "layer", "spike_percent"]),
    "weight-change": (["weight_change.csv", "weight_change.json"], ["weight_change.png"],
                      ["setting", "method", "seed", "step", "layer", "weight_change"]),
    "thresholds": (["thresholds.csv", "thresholds.json"], ["thresholds_fig7.png", "thresholds_fig8.png"],
                   ["run", "th_init", "seed", "step", "layer", "mean", "min", "max", "neuron_0"]),
    "ablation": (["ablation.csv", "ablation.json"], ["ablation.png"],
                 ["setting", "lr_th", "seed", "epoch", "test_accuracy", "output_dead_percent"]),
}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Every experiment once on `patterns` at the micro budget (runs shared between experiments)."""
    out = tmp_path_factory.mktemp("reproduce")
    records = run_all("patterns", MICRO, seeds=1, out=out, quiet=True, thresholds=SWEEP)
    return out, records


def _summaries(out: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in out.rglob("summary.json")}


def test_every_experiment_writes_its_tables_and_figures(sweep):
    out, records = sweep
    assert set(records) == set(EXPERIMENTS)
    folder = out / "patterns-micro"
    for name, (files, figures, columns) in EXPECTED.items():
        rec = records[name]
        for f in files + figures:
            assert (folder / name / f).exists(), (name, f)
        for f in figures:
            assert (folder / name / f).read_bytes()[:8] == PNG
        first_csv = folder / name / files[0]
        with open(first_csv) as fh:
            rows = list(csv.DictReader(fh))
        assert rows and set(columns) <= set(rows[0]), (name, rows[0].keys() if rows else None)
        saved = json.loads((folder / name / f"{name.replace('-', '_')}.json").read_text())
        assert saved["experiment"] == name and saved["seeds"] == [0] and saved["runs"]
    # runs are shared: 4 sweep runs, 4 more for suboptimal (setting B and weight norm), 2 for ablation (lr 0.001)
    assert len(list((folder / "runs").glob("*/summary.json"))) == 10
    assert records["dead-neurons"]["runs_trained"] == 0 and records["spike-rate"]["runs_trained"] == 0


def test_experiment_numbers_are_consistent(sweep):
    _, records = sweep
    acc = records["threshold-sweep"]["accuracy"]
    assert set(acc) == {"fixed", "rouser"} and set(acc["fixed"]) == {"0.25", "1.25"}
    assert all(0 <= s["mean"] <= 1 for m in acc.values() for s in m.values())
    # the sweep's Th = 1.25 runs are setting A's: the same numbers in both experiments
    sub = records["suboptimal"]["settings"]["A"]["methods"]
    assert sub["fixed"]["final_test_accuracy"]["mean"] == acc["fixed"]["1.25"]["mean"]
    dead = records["dead-neurons"]["dead_percent"]["A"]["fixed"]
    assert len(dead) == 2 and all(0 <= lay["dead_percent_mean_over_epochs"]["mean"] <= 100 for lay in dead)
    th = records["thresholds"]["final_thresholds"]
    fixed_sizes = records["ablation"]["ablation"]["A"]
    assert set(fixed_sizes) == {"0", "0.001", "0.01"}
    assert {"A", "B", "th0.25", "th1.25"} <= set(th)


def test_a_second_invocation_trains_nothing(sweep):
    out, _ = sweep
    before = _summaries(out)
    again = run_all("patterns", MICRO, seeds=1, out=out, quiet=True, thresholds=SWEEP)
    assert all(r["runs_trained"] == 0 and r["runs_skipped"] > 0 for r in again.values())
    assert _summaries(out) == before


def test_an_interrupted_run_resumes_from_its_last_epoch(tmp_path):
    runner = Runner("patterns", MICRO, tmp_path, quiet=True)
    spec = setting_spec("A", "rouser", seed=0)
    config = runner.config(spec)
    folder = runner.runs_dir / spec.name
    trainer = Trainer(config, dataset=runner.dataset(config), out=folder, name=spec.method)
    for event in trainer.events():
        if event.kind == "epoch":
            trainer.cancel()  # stopped after epoch 1 of 2, as by Ctrl-C
    assert not (folder / "summary.json").exists()
    result = runner.run(spec)
    assert result.trained and result.summary.status == "finished"
    assert [e.epoch for e in result.epochs] == [1, 2]
    assert len(result.batches) == MICRO.epochs * MICRO.max_batches  # epoch 1 was not trained again
    assert runner.run(spec).trained is False


def test_seeds_give_bands_and_min_max(tmp_path):
    rec = run_experiment("weight-change", "patterns", MICRO, seeds=2, out=tmp_path, quiet=True)
    assert rec["seeds"] == [0, 1] and rec["runs_trained"] == 8
    stats = rec["weight_change"]["A"]["rouser"][0]["last_batch"]
    assert stats["n"] == 2 and stats["min"] <= stats["mean"] <= stats["max"]


def test_results_page_is_written_from_the_runs(sweep, tmp_path):
    out, _ = sweep
    before = _summaries(out)
    path = write_report(out, tmp_path / "docs", budget=MICRO, seeds=1, quiet=True,
                        plan={"patterns": dict.fromkeys(EXPERIMENTS, 1)}, thresholds=SWEEP)
    text = path.read_text()
    assert _summaries(out) == before  # nothing retrained
    for heading in ("threshold sweep", "Table 3", "Fig. 9", "Fig. 6a", "Figs. 7-8", "Fig. 11", "Time per experiment",
                    "The paper's claims"):
        assert heading in text, heading
    from engine.reproduce.claims import CLAIMS

    claim_rows = [line for line in text.splitlines() if any(line.startswith(f"| {c.title} |") for c in CLAIMS)]
    assert len(claim_rows) == len(CLAIMS)
    assert all(("**supported**" in r or "**contradicted**" in r or "**cannot tell at this budget**" in r)
               and "**not run yet**" in r for r in claim_rows)  # the micro budget judged; the paper budget not run
    assert "rouser reproduce all --budget paper --dataset nmnist-sim --jobs 2" in text
    images = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(images) == 8
    for image in images:
        assert (path.parent / image).read_bytes()[:8] == PNG


def test_cli_reproduce_runs_an_experiment_and_refuses_bad_input(tmp_path, capsys):
    assert main(["reproduce", "spike-rate", "--dataset", "patterns", "--budget", "tiny", "--out", str(tmp_path),
                 "--quiet", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)["spike-rate"]
    assert rec["runs_trained"] == 4 and Path(rec["figures"][0]).exists()
    for argv, word in ((["reproduce", "fig99"], "unknown experiment"),
                       (["reproduce", "suboptimal", "--budget", "huge"], "unknown budget"),
                       (["reproduce", "suboptimal", "--dataset", "mnist9"], "unknown dataset"),
                       (["reproduce", "threshold-sweep", "--thresholds", "a,b"], "--thresholds"),
                       (["reproduce", "suboptimal", "--seeds", "0"], "--seeds")):
        assert main(argv + ["--out", str(tmp_path), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert word in err and err.count("\n") == 1


def test_threshold_learning_rouses_output_neurons_and_lowers_the_loss(tmp_path):
    """At (Th_init, tau, s) = (1.25, 3.75, 1.5) with He-normal weights at 0.3x, some output neurons are silent for
    the first epoch. Checked on seeds 0-5 before writing this test: with threshold lr 0.01 the final loss was lower
    than with lr 0 on all six, the epoch-1 dead output neurons never more, the test accuracy never lower, and
    over seeds 0-2 the epoch-1 dead output neurons were 25% against 50% (summed). Only those directions are asserted."""
    budget = budget_with("tiny", init="he-normal", weight_scale=0.3, max_batches=8, epochs=3, name="claims")
    runner = Runner("patterns", budget, tmp_path, quiet=True)
    rouser_dead = fixed_dead = 0.0
    for seed in (0, 1, 2):
        rouser = runner.run(setting_spec("A", "rouser", seed))
        fixed = runner.run(setting_spec("A", "fixed", seed))
        assert rouser.batches[-1].loss < fixed.batches[-1].loss
        assert rouser.epochs[0].dead_percent[-1] <= fixed.epochs[0].dead_percent[-1]
        assert rouser.summary.test_accuracy >= fixed.summary.test_accuracy
        rouser_dead += rouser.epochs[0].dead_percent[-1]
        fixed_dead += fixed.epochs[0].dead_percent[-1]
    assert fixed_dead > 0  # the regime has dead output neurons to rouse
    assert rouser_dead < fixed_dead


def test_jobs_train_runs_in_processes_with_the_same_results(tmp_path):
    """--jobs spreads independent runs over processes; each run is the one a single process would train."""
    parallel = run_experiment("weight-change", "patterns", MICRO, seeds=1, out=tmp_path / "par", quiet=True, jobs=2)
    serial = run_experiment("weight-change", "patterns", MICRO, seeds=1, out=tmp_path / "ser", quiet=True)
    assert parallel["runs"] == serial["runs"] and parallel["runs_skipped"] == len(parallel["runs"])  # read back
    for name in serial["runs"]:
        a = json.loads((tmp_path / "par" / "patterns-micro" / "runs" / name / "summary.json").read_text())
        b = json.loads((tmp_path / "ser" / "patterns-micro" / "runs" / name / "summary.json").read_text())
        assert a["final_loss"] == pytest.approx(b["final_loss"], rel=1e-4)  # thread counts may differ
        assert a["thresholds"][-1]["mean"] == pytest.approx(b["thresholds"][-1]["mean"], rel=1e-4)


# ---------------------------------------------------------------------------------------------- paper budget
def test_the_paper_budget_trains_the_paper_network_for_1000_steps_and_leaves_the_init_alone(tmp_path):
    from dataclasses import fields

    from engine.config import TrainConfig
    from engine.network import get_preset
    from engine.reproduce import BUDGETS
    from engine.reproduce.specs import ROUSER_LR_TH
    from engine.train import run_time_steps

    budget = BUDGETS["paper"]
    runner = Runner("nmnist-sim", budget, tmp_path, quiet=True)
    config = runner.config(setting_spec("B", "rouser", seed=1))
    assert config.preset == "nmnist" and get_preset("nmnist").hidden == (500, 500) and run_time_steps(config) == 300
    batches = -(-len(runner.dataset().train) // config.batch_size)
    assert batches == 125 and config.epochs == 8 and config.epochs * batches >= 1000 and config.max_batches is None
    assert len(runner.dataset().test) == 1000  # the whole test split
    assert config.lr_th == ROUSER_LR_TH == 0.01
    # only what a RunSpec or the Budget sets departs from TrainConfig's defaults (init, weight scale, lr ...)
    set_here = {"dataset", "preset", "th_init", "tau", "scale", "lr_th", "weight_norm", "seed", "epochs", "max_batches",
                "batch_size"}
    default = TrainConfig()
    assert {f.name for f in fields(TrainConfig) if getattr(config, f.name) != getattr(default, f.name)} <= set_here
    assert all(budget.seeds_for(e) >= 2 for e in ("suboptimal", "dead-neurons", "thresholds", "ablation"))
    assert budget.seeds_for("threshold-sweep") >= 1 and budget.sweep_thresholds == (0.25, 0.5, 1.0, 1.25, 2.0, 3.0)
    for word in ("2312-500-500-10", "1,000", "8 epochs", "Departs from the paper"):
        assert word in budget.description


def test_a_read_only_budget_is_reported_when_run_and_kept_from_its_json(tmp_path):
    """The report trains its CI budget, only reads the other one: "not run yet" with the command, then its runs'
    tables once they exist, then the JSON an earlier report copied when the runs are gone."""
    paper = budget_with(MICRO, name="micro-paper")
    plan, paper_plan = {"patterns": {"weight-change": 2}}, {"patterns": {"weight-change": None, "ablation": None}}

    def report():
        path = write_report(tmp_path / "out", tmp_path / "docs", budget=MICRO, quiet=True, plan=plan, paper=paper,
                            paper_plan=paper_plan)
        return path.read_text()

    text = report()
    assert "not run yet" in text and "rouser reproduce all --budget micro-paper --dataset patterns" in text
    assert not (tmp_path / "out" / "patterns-micro-paper").exists()  # nothing trained or written for it
    assert "| `micro` | patterns | 1 of 1 experiments | weight-change 2 |" in text  # the plan's seeds
    rec = run_experiment("weight-change", "patterns", paper, out=tmp_path / "out", quiet=True)
    assert rec["runs_trained"] == 4
    wall = [json.loads(line) for line in (tmp_path / "out" / "patterns-micro-paper" / "wall_time.jsonl").read_text().splitlines()]
    assert len(wall) == 4 and all(line["seconds"] > 0 for line in wall)  # a line per run trained
    text = report()
    assets = tmp_path / "docs" / "results" / "patterns-micro-paper"
    assert "## The experiments at the `micro-paper` budget" in text and "results/patterns-micro-paper/weight_change.png" in text
    assert (assets / "weight_change.json").exists() and (assets / "wall_time.jsonl").exists()
    assert "for 4 runs, --jobs 1" in text
    partial = "Finished so far at the `micro-paper` budget on patterns: 4 runs"  # ablation's runs are missing
    assert partial in text and text.count("| `th1.25_tau3.75_s1.5_lrth") == 2  # seed 0 of each method at setting A
    import shutil

    shutil.rmtree(tmp_path / "out" / "patterns-micro-paper")
    text = report()
    assert "Read from the JSON in `docs/results/patterns-micro-paper/`" in text and partial in text
    assert "results/patterns-micro-paper/weight_change.png" in text and (assets / "weight_change.png").exists()


# ---------------------------------------------------------------------------------------------- claims
def test_verdict_rule():
    from engine.reproduce.claims import CANNOT_TELL, CONTRADICTED, SUPPORTED, judge

    cases = [
        (([2.0, 3.0], +1, 1.0), SUPPORTED),  # the paper's sign in every seed, mean 2.5 > spread 1 and > floor 1
        (([-2.0, -3.0], +1, 1.0), CONTRADICTED),
        (([-5.0, -4.0], -1, 1.0), SUPPORTED),  # the paper predicts a decrease
        (([2.0, -1.0], +1, 1.0), CANNOT_TELL),  # the sign differs between seeds
        (([0.5, 0.6], +1, 1.0), CANNOT_TELL),  # below the floor
        (([1.0, 5.0], +1, 1.0), CANNOT_TELL),  # mean 3 within the spread 4
        (([3.0], +1, 1.0), CANNOT_TELL),  # one seed where two are needed
        (([3.0, None, 3.5], +1, 1.0), SUPPORTED),  # a run without a result is left out
        (([None, None], +1, 1.0), CANNOT_TELL),
    ]
    for args, expected in cases:
        assert judge(*args)[0] == expected, args
    assert judge([20.0], +1, 5.0, min_seeds=1)[0] == SUPPORTED
    assert judge([2.0], +1, 5.0, min_seeds=1)[0] == CANNOT_TELL
    assert judge([0.1, 0.9], +1, 0.0, beyond_spread=False)[0] == SUPPORTED  # spread 0.8 > mean 0.5, not tested
    assert judge([-0.1, -0.9], +1, 0.0, beyond_spread=False)[0] == CONTRADICTED


def _s(*values):
    from engine.reproduce.tables import stats

    return stats(values)


def test_claims_read_the_right_numbers_with_the_paper_direction():
    from engine.reproduce.claims import CANNOT_TELL, CLAIMS, CONTRADICTED, SUPPORTED, assess

    def methods(r, f, w=(0.5, 0.5)):
        return {"rouser": {"final_test_accuracy": _s(*r)}, "fixed": {"final_test_accuracy": _s(*f)},
                "fixed+wn": {"final_test_accuracy": _s(*w)}}

    def converge(r, f, n=100):
        return {m: {"batches_to_target": {"per_seed": list(bt)}, "batches_trained": [n] * len(bt),
                    "final_test_accuracy": _s(0.5, 0.5)} for m, bt in (("rouser", r), ("fixed", f), ("fixed+wn", f))}

    def layer(dead, active):
        return {"dead_percent_mean_over_epochs": _s(*dead), "active_percent_mean_over_batches": _s(*active),
                "percent_of_batches_layer_silent": _s(0.0, 0.0)}

    records = {
        "suboptimal": {"settings": {"A": {"methods": methods((0.90, 0.92), (0.85, 0.86))},
                                    "B": {"methods": converge((20, 30), (None, 90))}}},
        "dead-neurons": {"dead_percent": {"B": {"rouser": [layer((5, 6), (90, 95)), layer((0, 0), (100, 100))],
                                                "fixed": [layer((5, 6), (90, 95)), layer((60, 80), (10, 30))]}}},
        "threshold-sweep": {"accuracy": {"fixed": {"0.25": _s(0.40), "0.5": _s(0.80), "1": _s(0.70), "2": _s(0.60)}}},
        "thresholds": {"final_thresholds": {
            "B": {"spec": {"th_init": 0.25}, "final": [{"mean": _s(0.25, 0.26)}, {"mean": _s(0.6, 0.4)}]},
            "th0.5": {"spec": {"th_init": 0.5}, "final": [{"mean": _s(0.51, 0.5)}, {"mean": _s(0.5, 0.52)}]}}},
        "ablation": {"ablation": {"B": {"0": {"final_test_accuracy": _s(0.1, 0.1)},
                                        "0.001": {"final_test_accuracy": _s(0.1, 0.1)},
                                        "0.01": {"final_test_accuracy": _s(0.1, 0.1)}}}},
    }
    verdicts = {c.key: assess(c, records, "nmnist-sim") for c in CLAIMS}
    assert verdicts["table1"].verdict == SUPPORTED  # +5 and +6 points
    assert verdicts["table3"].verdict == SUPPORTED  # output layer 0 against 60-80 % dead
    assert verdicts["fig3-sensitivity"].verdict == SUPPORTED  # Th 1: 70 %, Th 0.25: 40 %
    assert verdicts["fig3-best"].verdict == CONTRADICTED  # Th 0.5 beats Th 1 by 10 points
    assert verdicts["fig4"].verdict == SUPPORTED  # a run that never reached the target counts as its 100 batches
    assert verdicts["figs7-8"].verdict == CONTRADICTED  # from Th_init 0.5 no layer moved 0.05 in either seed
    assert verdicts["fig10"].verdict == SUPPORTED
    assert verdicts["fig11"].verdict == CANNOT_TELL  # lr 0.01 = lr 0
    assert "Rouser 91.0%" in verdicts["table1"].ours and "+5.0 pt, +6.0 pt" in verdicts["table1"].ours
    # runs that end near chance: convergence cannot be told, and "0.01 learns" is contradicted
    records["suboptimal"]["settings"]["B"].update(target_accuracy=None, best_accuracy=0.103, chance_accuracy=0.1)
    records["ablation"]["chance_accuracy"] = {"B": 0.1}
    verdicts = {c.key: assess(c, records, "nmnist-sim") for c in CLAIMS}
    assert verdicts["fig4"].verdict == CANNOT_TELL and "nothing learned" in verdicts["fig4"].ours
    assert verdicts["fig11"].verdict == CONTRADICTED and "nothing learned at lr 0.01" in verdicts["fig11"].reason
    records["ablation"]["ablation"]["B"]["0.01"]["final_test_accuracy"] = _s(0.5, 0.6)
    assert assess(CLAIMS[-1], records, "nmnist-sim").verdict == SUPPORTED  # 0.01 learns, 0 does not
    records["threshold-sweep"]["accuracy"]["fixed"].pop("1")
    assert assess(CLAIMS[2], records, "nmnist-sim").verdict == CANNOT_TELL  # Th = 1 not swept
    assert assess(CLAIMS[0], {}, "nmnist-sim").verdict == "not run yet"


def test_rousing_map_writes_its_tables_heat_maps_and_speeds(tmp_path, capsys):
    """`rouser reproduce rousing-map --budget tiny --out DIR`: CSV/JSON per run and cell, heat-map PNGs, speeds."""
    assert main(["reproduce", "rousing-map", "--budget", "tiny", "--seeds", "1", "--out", str(tmp_path), "--quiet"]) == 0
    folder = tmp_path / "nmnist-sim-tiny" / "rousing-map"
    data = json.loads((folder / "rousing_map.json").read_text())
    grid = data["grid"]
    cells = len(grid["regimes"]) * len(grid["th_inits"]) * len(grid["weight_scales"])
    assert len(data["cells"]) == cells
    with open(folder / "rousing_map_runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * cells and {r["method"] for r in rows} == {"rouser", "fixed"}
    for name in ("rousing_map_output_active.png", "rousing_map_accuracy.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    with open(folder / "rousing_map_speeds.csv") as f:
        speeds = list(csv.DictReader(f))
    frozen = [r for r in speeds if r["regime"] == "frozen weights"]
    assert frozen and all(float(r["voltage_change"]) == 0.0 for r in frozen)  # lr 0: weights cannot move V
    assert any(float(r["threshold_change"]) > 0 for r in frozen)  # while the silent neurons' thresholds fall
    for cell in data["cells"]:
        assert cell["config"]["weight_scale"] == cell["weight_scale"] and cell["config"]["th_init"] == cell["th_init"]
        assert cell["contrast"] in ("rouses", "partial", "none")
    # the report reads the map back (nothing retrained), writes its section and ships the JSON for the dashboard
    before = _summaries(tmp_path)
    page = write_report(tmp_path, tmp_path / "docs", budget="tiny", seeds=1, quiet=True,
                        plan={"nmnist-sim": {"rousing-map": 1}}, paper=None, maps=tmp_path / "maps")
    assert _summaries(tmp_path) == before
    text = page.read_text()
    assert "#### nmnist-sim: Rousing map" in text and "rousing_map_speeds.csv" in text
    assert "`frozen weights`" in text and "only their thresholds acted" in text
    for image in [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if "rousing_map" in line and line.startswith("![")]:
        assert (page.parent / image).read_bytes()[:8] == PNG
    shipped = json.loads((tmp_path / "maps" / "nmnist-sim-tiny.json").read_text())
    assert shipped["cells"] == data["cells"] and "files" not in shipped
