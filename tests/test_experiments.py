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
    for heading in ("threshold sweep", "Table 3", "Fig. 9", "Fig. 6a", "Figs. 7-8", "Fig. 11", "Time per experiment"):
        assert heading in text, heading
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
