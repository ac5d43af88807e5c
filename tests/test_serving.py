"""Serving a class: stopping on SIGTERM (server and CLI), closed tabs, the run registry; no browser needed.

The server tests start real servers and talk to them with light sessions (`rouser_app.light_client`), on the tiny
`patterns` dataset; each takes 20-40 s on 2 cores.
"""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import TrainConfig
from rouser_app import serving
from rouser_app.light_client import LightSession, ServerProcess
from rouser_app.worker import LIVE, RunJob, RunLimiter, shutdown

TINY = TrainConfig(dataset="patterns", preset="quick", epochs=500, batch_size=32)
SERVER_ENV = {"ROUSER_DEFAULT_DATASET": "patterns", "ROUSER_MAX_RUNS": "2", "ROUSER_MAX_EPOCHS": "5000"}


def _summary(folder: Path, timeout: float = 20.0) -> dict:
    deadline = time.time() + timeout
    while not (folder / "summary.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    return json.loads((folder / "summary.json").read_text())


# ---------------------------------------------------------------------- the run registry
def test_shutdown_cancels_running_and_queued_jobs_and_joins_their_threads(tmp_path):
    limiter = RunLimiter(1)
    running = RunJob(TINY, compare=True, out=tmp_path / "a", limiter=limiter)
    queued = RunJob(TINY, compare=True, out=tmp_path / "b", limiter=limiter)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    running.start()
    queued.start()
    deadline = time.time() + 60
    while not any(e.kind == "batch" for e in running.drain()) and time.time() < deadline:
        time.sleep(0.02)
    asked = time.perf_counter()
    assert shutdown(timeout=30) >= 2
    assert time.perf_counter() - asked < 5
    assert running.done and queued.done and not running.thread.is_alive() and queued.thread is None
    assert LIVE.jobs == [] and limiter.active == 0 and not LIVE.closing
    for folder in ("a", "b"):  # the worker writes summary.json itself, page or no page
        assert {r["status"] for r in _summary(tmp_path / folder)["runs"].values()} == {"cancelled"}
    assert (tmp_path / "a" / "rouser" / "checkpoint.pt").exists()


def test_a_job_started_while_the_server_stops_stops_at_once(tmp_path):
    LIVE.closing = True
    try:
        job = RunJob(TINY)
        job.start()
        job.join(30)
    finally:
        LIVE.closing = False
    assert job.done and {e.record.status for e in job.drain() if e.kind == "end"} == {"cancelled"}


# ---------------------------------------------------------------------- closed tabs
class _Session:
    def __init__(self, connections):
        self.connection_count = connections


class _Context:
    def __init__(self, connections, destroyed=False):
        self.session, self.destroyed = _Session(connections), destroyed


class _Doc:
    def __init__(self, context):
        self.session_context = context


def test_browser_gone_follows_the_session_connections():
    assert not serving.browser_gone(_Doc(_Context(1)))
    assert serving.browser_gone(_Doc(_Context(0)))
    assert serving.browser_gone(_Doc(_Context(1, destroyed=True)))
    assert not serving.browser_gone(_Doc(None))  # a notebook or a test: no server session


def test_the_run_panel_stops_its_run_when_its_browser_is_gone(tmp_path, monkeypatch):
    from rouser_app import run_panel
    from rouser_app.controls import RunControls
    from rouser_app.settings import Settings

    settings = Settings(runs_dir=str(tmp_path / "runs"), default_dataset="patterns")
    panel = run_panel.RunPanel(controls=RunControls(settings=settings, epochs=50), settings=settings,
                               limiter=RunLimiter(2))
    assert panel.start()
    monkeypatch.setattr(run_panel, "browser_gone", lambda: True)
    panel._poll()
    panel.job.join(30)
    assert panel.job.stopping and panel.job.done and panel._callback is None


def test_writes_to_a_closed_browser_are_not_reported_as_tracebacks(caplog):
    from tornado.websocket import WebSocketClosedError

    loop = asyncio.new_event_loop()
    seen = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context["exception"]))
    try:
        serving.quiet_closed_sockets(loop)
        with caplog.at_level(logging.DEBUG, logger="rouser_app.serving"):
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": WebSocketClosedError()})
        other = ValueError("a real error")
        loop.call_exception_handler({"message": "boom", "exception": other})
    finally:
        loop.close()
    assert seen == [other]  # other errors still reach the previous handler
    assert "closed browser connection" in caplog.text


def test_a_connection_dropped_by_a_failed_ping_closes_without_an_assertion(monkeypatch):
    from bokeh.server.views.ws import WSHandler

    calls = []
    monkeypatch.setattr(WSHandler, "on_close", lambda self: calls.append(self))
    serving.tolerate_dropped_connections()
    serving.tolerate_dropped_connections()  # once only

    class Connection:
        def __init__(self, session):
            self._session = session

    class Handler:
        def __init__(self, session):
            self.connection = Connection(session)

    WSHandler.on_close(Handler(None))  # dropped already: Bokeh's own on_close would fail its assertion
    live = Handler(object())
    WSHandler.on_close(live)
    assert calls == [live]


def test_python_m_rouser_app_sets_session_cleanup_and_passive_thread_waits(monkeypatch):
    import panel.command

    import rouser_app.__main__ as entry

    seen = []
    monkeypatch.setattr(panel.command, "main", lambda: seen.append(list(sys.argv)))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # restored afterwards
    entry.main(["--port", "5123"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # torch's threads sleep, not spin, beside the event loop
    entry.main(["--port", "5123", "--unused-session-lifetime", "60000"])
    default, given = seen
    assert default[default.index("--check-unused-sessions") + 1] == "10000"
    assert default[default.index("--unused-session-lifetime") + 1] == "15000"
    assert given.count("--unused-session-lifetime") == 1 and "60000" in given


# ---------------------------------------------------------------------- real servers
def test_sigterm_during_a_run_stops_panel_serve_cleanly(tmp_path):
    server = ServerProcess(tmp_path / "runs", env=SERVER_ENV, command="panel").start()
    try:
        page = LightSession(server.url).wait_loaded()
        folder = page.start_run(5000, server.runs)
        page.wait_status("running · epoch", timeout=120)
        time.sleep(1.0)
        result = server.stop(signal.SIGTERM, timeout=30)
    finally:
        server.kill()
    log = server.log()
    assert result["exit_status"] == 0 and result["exit_s"] < 10, (result, log[-2000:])
    assert "terminate called" not in log and not server.problems(), log[-2000:]
    assert "stopping 1 run(s)" in log
    assert {r["status"] for r in _summary(folder)["runs"].values()} == {"cancelled"}
    assert (folder / "rouser" / "checkpoint.pt").exists() and (folder / "fixed" / "checkpoint.pt").exists()


def test_a_closed_tab_stops_its_run_and_python_m_rouser_app_stops_on_sigterm(tmp_path):
    server = ServerProcess(tmp_path / "runs", env=SERVER_ENV, command="module").start()
    try:
        page = LightSession(server.url).wait_loaded()
        folder = page.start_run(5000, server.runs)
        page.wait_status("running · epoch", timeout=120)
        closed = time.perf_counter()
        page.close()
        summary = _summary(folder, timeout=15)  # written by the worker once the run has stopped
        stopped_after = time.perf_counter() - closed
        result = server.stop(signal.SIGTERM, timeout=30)
    finally:
        server.kill()
    assert {r["status"] for r in summary["runs"].values()} == {"cancelled"}
    assert stopped_after < 5, stopped_after
    assert result["exit_status"] == 0 and not server.problems(), (result, server.log()[-2000:])


def _start_training(tmp_path, *args):
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc


def _wait_for(path: Path, proc, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)


def test_sigterm_stops_rouser_train_with_its_checkpoint_and_status_143(tmp_path):
    proc = _start_training(tmp_path, "train", "--dataset", "patterns", "--preset", "quick", "--epochs", "500",
                           "--compare", "--out", "out", "--quiet")
    _wait_for(tmp_path / "out" / "rouser" / "checkpoint.pt", proc)  # written before the first batch
    history = tmp_path / "out" / "fixed" / "history.jsonl"
    deadline = time.time() + 180  # the first batch may wait for the scan kernel to be compiled
    while not (history.exists() and '"kind": "epoch"' in history.read_text()):  # its checkpoint follows at once
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(1)
    asked = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and time.perf_counter() - asked < 10, err
    lines = [line for line in err.splitlines() if line.startswith("rouser train:")]
    assert lines == ["rouser train: stopped by SIGTERM before the next batch; the checkpoints of completed epochs "
                     "are kept in out; continue with --resume out"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {r["status"] for r in summary["runs"].values()} == {"cancelled"}
    from engine.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "out" / "rouser")["epoch"] >= 1


def test_sigterm_stops_rouser_reproduce_and_its_worker_processes(tmp_path):
    proc = _start_training(tmp_path, "reproduce", "threshold-sweep", "--dataset", "patterns", "--budget", "tiny",
                           "--out", "rep", "--jobs", "2", "--quiet")
    deadline = time.time() + 120
    while not list(tmp_path.glob("rep/*/runs/*/checkpoint.pt")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("rouser reproduce: stopped by SIGTERM before the next batch;")
    assert "Traceback" not in err
