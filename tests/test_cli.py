"""The `rouser` command as users run it: a real subprocess, its output, files and exit codes."""

import json
import os
import subprocess
import sys

import pytest


def rouser(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_train_compare_json_writes_history_summary_and_checkpoints(tmp_path):
    out = tmp_path / "run"
    proc = rouser("train", "--dataset", "patterns", "--time-steps", "30", "--compare", "--epochs", "1", "--json",
                  "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary["runs"]) == {"rouser", "fixed"}
    for name, run in summary["runs"].items():
        assert run["status"] == "finished" and run["epochs_completed"] == 1
        assert len(run["dead_percent"]) == 2 and 0 <= run["test_accuracy"] <= 1
        assert run["provenance"]["world_size"] == 1 and len(run["provenance"]["dataset_fingerprint"]) == 16
        lines = [json.loads(x) for x in (out / name / "history.jsonl").read_text().splitlines()]
        assert lines[-1]["kind"] == "epoch" and lines[0]["kind"] == "batch"
        assert (out / name / "checkpoint.pt").exists()
    assert summary["runs"]["fixed"]["thresholds"][0]["min"] == summary["runs"]["fixed"]["thresholds"][0]["max"] == 1.25
    assert json.loads((out / "summary.json").read_text())["runs"].keys() == summary["runs"].keys()

    resumed = rouser("train", "--resume", str(out), "--epochs", "2", "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert all(r["epochs_completed"] == 2 for r in json.loads(resumed.stdout)["runs"].values())


def test_default_quick_compare_runs_on_a_fresh_install(tmp_path):
    """The issue's smoke command on the embedded default dataset (cached under a temporary folder)."""
    proc = rouser("train", "--compare", "--epochs", "1", "--preset", "quick", "--json", "--quiet", "--max-batches", "3",
                  env={"ROUSER_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert runs["rouser"]["dataset"] == "nmnist-sim" and runs["rouser"]["sizes"] == [2312, 64, 10]


@pytest.mark.parametrize("args, words", [
    (["--tau", "0"], ["tau", "> 0"]),
    (["--voltage-decay", "1.2"], ["voltage_decay", "(0, 1]"]),
    (["--scale", "-1"], ["scale", ">= 0"]),
    (["--batch-size", "0"], ["batch_size", ">= 1"]),
    (["--dataset", "nope"], ["unknown dataset", "nmnist-sim"]),
    (["--preset", "huge"], ["unknown preset", "quick"]),
    (["--epochs", "two"], ["--epochs", "invalid int"]),
    (["--init", "xavier"], ["unknown init", "kaiming-uniform, he-normal"]),
    (["--reset-grad", "none"], ["unknown reset_grad", "full, detach"]),
    (["--resume", "/nonexistent/run"], ["no checkpoint", "--resume"]),
])
def test_bad_input_is_one_line_and_exit_code_2(args, words):
    proc = rouser("train", "--dataset", "patterns", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0]


def test_a_threshold_past_the_reset_bound_is_warned_about_before_the_run(tmp_path):
    """Th * s / tau >= 1 + a_v with reset_grad full: one warning line on stderr, then the run; none with detach."""
    args = ["train", "--dataset", "patterns", "--time-steps", "20", "--max-batches", "1", "--th-init", "8", "--json",
            "--quiet"]
    proc = rouser(*args)
    assert proc.returncode in (0, 1), proc.stderr  # 1: the run itself may stop on non-finite gradients
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("rouser train: warning: Th 8 * s 1.5 / tau 3.75 >= 1 + a_v") and "detach" in first
    config = json.loads(proc.stdout)["runs"]["rouser"]["config"]
    assert (config["init"], config["lr_th"], config["weight_quant"], config["reset_grad"]) == (
        "kaiming-uniform", 0.001, "none", "full")
    quiet = rouser(*args, "--reset-grad", "detach", "--weight-quant", "8bit", "--init", "he-normal")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr
    config = json.loads(quiet.stdout)["runs"]["rouser"]["config"]
    assert (config["init"], config["weight_quant"], config["reset_grad"]) == ("he-normal", "8bit", "detach")


def test_datasets_lists_every_name_train_accepts(tmp_path):
    proc = rouser("datasets", "--json", "--data-root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"nmnist-sim", "randman", "gestures-sim", "nmnist", "dvs128", "shd"} <= set(rows)
    assert rows["nmnist"]["status"] == "missing" and rows["nmnist-sim"]["status"] == "embedded"


def test_crossval_json_reports_agreement():
    proc = rouser("crossval", "--trials", "2", "--seed", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("trials", "spikes_compared", "mismatches", "max_abs_voltage_error", "max_abs_current_error", "agree"):
        assert key in report
    assert report["agree"] is True and report["mismatches"] == 0 and report["spikes_compared"] > 0
