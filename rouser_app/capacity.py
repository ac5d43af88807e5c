"""`python -m rouser_app.capacity`: how many browser sessions one dashboard server holds while runs train.

Starts `python -m rouser_app` on loopback (its defaults: the run cap, session cleanup) with a temporary runs
folder, and opens light sessions: `bokeh.client` documents that the server builds, updates and cleans up as it
does for a browser (the client says "document ready" as a browser does once rendered), but that nothing renders.
For each session count (default 10, then 30) it measures the server's memory and CPU with every session idle, then
while one and two of them train a run (the dashboard's default: Rouser beside its fixed-threshold baseline, so a
step is one batch of each), the update latency a viewer sees (a step's history line written by the trainer -> the
viewer's status line, and its plots, showing it), how long a new visitor's page takes to load meanwhile, and
whether every session stayed connected. Finally every run stops and every session closes; the server's memory
half a minute later is compared with its memory after the first page load, and SIGTERM must stop it with status 0.
Bounded: at most 60 sessions, loopback only, about ten minutes for 10 and 30 on 2 busy cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .light_client import LightSession, RunWatch, ServerProcess

__all__ = ["measure", "format_report", "main"]


def _ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)
    p90 = values[max(0, math.ceil(0.9 * len(values)) - 1)]
    return {"n": len(values), "median_ms": round(1000 * statistics.median(values)), "p90_ms": round(1000 * p90),
            "max_ms": round(1000 * values[-1])}


def _open(server: ServerProcess, count: int, sessions: list[LightSession], parallel: int = 3) -> list[float]:
    """Open sessions until there are ``count``, ``parallel`` at a time; their load times."""
    times = []
    while len(sessions) < count:
        batch = [LightSession(server.url) for _ in range(min(parallel, count - len(sessions)))]
        for s in batch:
            s.wait_loaded()
            times.append(s.load_s)
        sessions += batch
    return times


def _watch_runs(server: ServerProcess, viewers: list[LightSession], seconds: float) -> dict:
    """Let the viewers' runs train for ``seconds``; status and plot latency per update, memory at the end."""
    first, since, cpu = sum(v.watch.step(slowest=True) for v in viewers), time.perf_counter(), server.cpu_seconds()
    time.sleep(seconds)
    cpu = server.cpu_seconds() - cpu
    status, plots = [], []
    for v in viewers:
        status += v.watch.latencies([s for s in v.status_steps() if s[0] >= since], slowest=True)
        plots += v.watch.latencies([s for s in v.plot_steps if s[0] >= since], slowest=False)
    steps = sum(v.watch.step(slowest=True) for v in viewers) - first
    return {"rss_mib": server.rss_mib(), "status_latency": _ms(status), "plot_latency": _ms(plots),
            "steps_per_s": round(steps / seconds, 2), "server_cores": round(cpu / seconds, 2)}


def measure(counts=(10, 30), dataset: str | None = None, epochs: int = 50, watch_s: float = 20.0,
            settle_s: float = 5.0, port: int | None = None, log=print) -> dict:
    """Run the whole measurement (a few minutes) and return its report."""
    runs = Path(tempfile.mkdtemp(prefix="rouser-capacity-"))
    env = {"ROUSER_DEFAULT_DATASET": dataset} if dataset else {}
    server = ServerProcess(runs, env=env, port=port)
    report: dict = {"cores": os.cpu_count(), "load_average_at_start": round(os.getloadavg()[0], 2),
                    "dataset": dataset or "the server's default", "levels": []}
    sessions: list[LightSession] = []
    try:
        server.start()
        log(f"server up at {server.url} in {server.startup_s:.1f} s")
        first = _open(server, 1, sessions)
        server.wait_idle()
        time.sleep(settle_s)
        report.update(first_load_s=round(first[0], 2), rss_first_page_mib=server.rss_mib())
        rss_prev, n_prev = report["rss_first_page_mib"], 1
        for count in counts:
            began = time.perf_counter()
            loads = _open(server, count, sessions)
            level = {"sessions": count, "load_s_median": round(statistics.median(loads), 2) if loads else None,
                     "all_loaded_s": round(time.perf_counter() - began, 1)}
            server.wait_idle()
            cpu = server.cpu_seconds()
            time.sleep(settle_s)
            level.update(rss_idle_mib=server.rss_mib(),
                         idle_server_cores=round((server.cpu_seconds() - cpu) / settle_s, 2))
            level["per_idle_session_mib"] = round((level["rss_idle_mib"] - rss_prev) / max(1, count - n_prev), 1)
            log(f"{count} idle sessions: {level['rss_idle_mib']:.0f} MiB")
            viewers, rss_before = [], level["rss_idle_mib"]
            for k in (1, 2):
                viewer = sessions[k - 1]
                viewer.start_run(epochs, server.runs)
                viewer.wait_status("running · epoch", timeout=180)
                time.sleep(2.0)  # past the first batches
                viewers.append(viewer)
                m = level[f"{k}_runs"] = _watch_runs(server, viewers, watch_s)
                m["added_mib"], rss_before = round(m["rss_mib"] - rss_before, 1), m["rss_mib"]
                probe = LightSession(server.url)
                m["new_page_load_s"] = round(probe.wait_loaded().load_s, 2)
                probe.close()
                log(f"{count} sessions, {k} run(s): {json.dumps(m)}")
            for viewer in viewers:
                viewer.stop_run()
                viewer.wait_status("stopped", "finished", "error")
            server.wait_idle()
            time.sleep(settle_s)
            level["rss_after_runs_mib"] = server.rss_mib()
            level["disconnected"] = sum(not s.connected for s in sessions)
            report["levels"].append(level)
            rss_prev, n_prev = level["rss_after_runs_mib"], count
        for s in sessions:
            s.close()
        report["rss_all_closed_mib"] = server.wait_rss_settled(timeout=60)
        report.update(server.stop())
    finally:
        for s in sessions:
            s.close()
        server.kill()
    return report


def format_report(r: dict) -> str:
    lines = [f"{r['cores']} cores (load average {r['load_average_at_start']} at start), dataset {r['dataset']}",
             f"first page: loads in {r['first_load_s']} s; server RSS {r['rss_first_page_mib']:.0f} MiB"]
    for lv in r["levels"]:
        lines.append(f"{lv['sessions']} sessions idle: RSS {lv['rss_idle_mib']:.0f} MiB "
                     f"({lv['per_idle_session_mib']} MiB per idle session), server {lv['idle_server_cores']} cores; "
                     f"opened 3 at a time: page load median {lv['load_s_median']} s, all in {lv['all_loaded_s']} s")
        for k in (1, 2):
            m = lv[f"{k}_runs"]
            lines.append(f"  {k} run(s) training: RSS {m['rss_mib']:.0f} MiB (+{m['added_mib']} MiB for this "
                         f"viewer and its run), server {m['server_cores']} cores, {m['steps_per_s']} steps/s, "
                         f"status latency median {m['status_latency'].get('median_ms')} ms "
                         f"(p90 {m['status_latency'].get('p90_ms')}), plot latency median "
                         f"{m['plot_latency'].get('median_ms')} ms (p90 {m['plot_latency'].get('p90_ms')}), "
                         f"new page loads in {m['new_page_load_s']} s")
        lines.append(f"  after the runs: RSS {lv['rss_after_runs_mib']:.0f} MiB; sessions disconnected: "
                     f"{lv['disconnected']}")
    lines.append(f"all runs ended, all sessions closed: RSS {r['rss_all_closed_mib']:.0f} MiB "
                 f"(first page load: {r['rss_first_page_mib']:.0f} MiB)")
    lines.append(f"SIGTERM: exit status {r['exit_status']} after {r['exit_s']} s; "
                 f"traceback in the log: {r['traceback_in_log']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rouser_app.capacity", description=__doc__.splitlines()[0])
    p.add_argument("--sessions", default="10,30", help="session counts to measure, ascending (default %(default)s)")
    p.add_argument("--dataset", default=None, help="the server's default dataset (default: the dashboard's)")
    p.add_argument("--watch", type=float, default=20.0, help="seconds each run level is watched (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    counts = sorted(int(c) for c in args.sessions.split(",") if c.strip())
    if not counts or counts[0] < 2 or counts[-1] > 60:
        p.error("--sessions: counts between 2 and 60")
    report = measure(counts, args.dataset, watch_s=args.watch, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report["exit_status"] == 0 and not report["traceback_in_log"] else 1


if __name__ == "__main__":
    sys.exit(main())
