"""Data-parallel training under torchrun with 2 CPU processes (Gloo) against one process."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

HELPER = Path(__file__).parent / "helpers" / "dist_train.py"


def _torchrun(*args, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def test_two_ranks_match_each_other_and_one_process(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    proc = _torchrun(str(HELPER), str(two))
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = subprocess.run([sys.executable, str(HELPER), str(one)], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    r0, r1 = torch.load(two / "rank0.pt"), torch.load(two / "rank1.pt")
    ref = torch.load(one / "rank0.pt")
    assert r0["world"] == 2 and ref["world"] == 1
    for key, value in r0["params"].items():
        assert torch.equal(value, r1["params"][key]), key  # identical on both ranks, thresholds included
        assert torch.allclose(value, ref["params"][key], atol=1e-5, rtol=1e-4), key  # equal to one process
    assert not torch.equal(r0["params"]["layers.1.threshold"], torch.full_like(r0["params"]["layers.1.threshold"], 1.25))
    for a, b in zip(r0["history"], ref["history"]):
        if a["kind"] == "batch":
            assert abs(a["loss"] - b["loss"]) < 1e-4 * max(1.0, abs(b["loss"]))
            assert [x["active_fraction"] for x in a["layers"]] == [x["active_fraction"] for x in b["layers"]]
    # only rank 0 wrote files, and they are the same run's
    assert (two / "run" / "checkpoint.pt").exists() and (two / "run" / "history.jsonl").exists()


def test_checkpoint_of_two_ranks_resumes_on_one(tmp_path):
    out = tmp_path / "run"
    args = ["-m", "engine", "train", "--dataset", "patterns", "--time-steps", "30", "--batch-size", "16", "--epochs", "1",
            "--device", "cpu", "--quiet", "--json", "--out", str(out)]
    proc = _torchrun(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"runs"') == 1  # only rank 0 printed the summary
    resumed = subprocess.run([sys.executable, "-m", "engine", "train", "--resume", str(out), "--epochs", "2", "--json",
                              "--quiet"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert '"epochs_completed": 2' in resumed.stdout
    shutil.rmtree(out)
