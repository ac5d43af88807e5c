"""`rouser bench` machinery at a tiny size: every kind runs in its child process and reports what the note needs."""

import subprocess
import sys

from engine.bench import format_bench, run_bench


def test_bench_reports_every_figure(tmp_path, monkeypatch):
    result = run_bench(rounds=1, batches=1, batch_size=2, quick=False)
    for key in ("samples_per_s", "snntorch_samples_per_s", "speedup_vs_snntorch", "dense_gemm_samples_per_s",
                "ratio_to_dense_gemm", "peak_rss_mb", "snntorch_peak_rss_mb"):
        assert result[key] > 0, key
    assert result["speedup_vs_snntorch"] == result["samples_per_s"] / result["snntorch_samples_per_s"]
    text = format_bench(result)
    assert "snntorch" in text and "dense GEMM" in text


def test_bench_rejects_bad_rounds():
    proc = subprocess.run([sys.executable, "-m", "engine", "bench", "--rounds", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--rounds" in proc.stderr and "Traceback" not in proc.stderr
