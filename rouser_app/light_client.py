"""A dashboard server in a process of its own and light sessions on it, for the capacity command and the tests.

`LightSession` is one visitor without a browser: a `bokeh.client` document in a thread of its own, pulled from
the server like a page (which builds the same session for it) and told "document ready" as a browser says once it
has rendered. It can press Run and Stop, and records every status line and plotted step with the time it arrived.
`RunWatch` notes when the trainer wrote each step to a run's history.jsonl: the two give the latency a viewer sees.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

__all__ = ["ServerProcess", "LightSession", "RunWatch", "rss_mib", "free_port", "LOG_PROBLEMS"]

LOG_PROBLEMS = ("Traceback", "exception was never retrieved", "terminate called")
_STEP = re.compile(r"epoch (\d+)/\d+ · batch (\d+)/(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class ServerProcess:
    """`python -m rouser_app` (``command="module"``) or `panel serve rouser_app` (``"panel"``) on 127.0.0.1."""

    def __init__(self, runs: Path, env: dict | None = None, port: int | None = None, args=(), command: str = "module"):
        self.runs, self.port = Path(runs), port or free_port()
        self.env = dict(os.environ, ROUSER_RUNS=str(self.runs), PYTHONUNBUFFERED="1", **(env or {}))
        self.log_path = self.runs.parent / f"{self.runs.name}-server.log"
        origin = ["--allow-websocket-origin", f"127.0.0.1:{self.port}"]
        where = ["--port", str(self.port), "--address", "127.0.0.1", *origin, *args]
        app = str(Path(__file__).resolve().parent)
        self.argv = ([sys.executable, "-m", "rouser_app", *where] if command == "module"
                     else [sys.executable, "-m", "panel", "serve", app, *where])
        self.url = f"http://127.0.0.1:{self.port}/rouser_app"
        self.proc: subprocess.Popen | None = None
        self.startup_s = None

    def start(self, timeout: float = 240.0) -> "ServerProcess":
        began = time.perf_counter()
        self.runs.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.runs)
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=30).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.perf_counter() - began > timeout:
                    if self.proc.poll() is None:  # stuck: its threads' stacks go to the log (app_hooks.py)
                        self.proc.send_signal(signal.SIGUSR1)
                        time.sleep(2.0)
                    self.kill()
                    raise RuntimeError(f"the server did not start: {self.log()[-6000:]}") from None
                time.sleep(0.5)
        self.startup_s = time.perf_counter() - began
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def problems(self) -> list[str]:
        """Log lines that show a traceback, an unretrieved task exception or an abort."""
        return [line for line in self.log().splitlines() if any(p in line for p in LOG_PROBLEMS)]

    def rss_mib(self) -> float:
        return rss_mib(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User and system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, below: float = 0.15, timeout: float = 120.0) -> float:
        """Wait until the server uses less than ``below`` of a core over 2 s (pages it owes are built); seconds."""
        began = time.perf_counter()
        while time.perf_counter() - began < timeout:
            used = self.cpu_seconds()
            time.sleep(2.0)
            if self.cpu_seconds() - used < 2.0 * below:
                break
        return time.perf_counter() - began

    def wait_rss_settled(self, timeout: float = 60.0, quiet_s: float = 10.0, min_s: float = 30.0) -> float:
        """RSS once at least ``min_s`` have passed and it has not fallen for ``quiet_s`` (with `python -m
        rouser_app`'s cleanup, a closed session is freed 15-25 s after it closed)."""
        began, low, low_at = time.perf_counter(), self.rss_mib(), time.perf_counter()
        while time.perf_counter() - began < timeout:
            time.sleep(1.0)
            now = self.rss_mib()
            if now < low - 1:
                low, low_at = now, time.perf_counter()
            elif time.perf_counter() - low_at > quiet_s and time.perf_counter() - began > min_s:
                break
        return self.rss_mib()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> dict:
        """Send ``sig``; the exit status, the seconds it took, and whether the log shows a problem."""
        began = time.perf_counter()
        self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
        seconds = round(time.perf_counter() - began, 2)
        self.kill()
        return {"exit_status": status, "exit_s": seconds, "traceback_in_log": bool(self.problems())}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class RunWatch:
    """When each training step of a run folder was first written to its history.jsonl (by the slowest run of a
    comparison and by the fastest), polled every ``every`` seconds: times are late by at most that much."""

    def __init__(self, folder: Path, every: float = 0.05):
        self.folder, self.every = Path(folder), every
        self.slowest_at: dict[int, float] = {}
        self.fastest_at: dict[int, float] = {}
        self._steps: dict[Path, int] = {}
        self._offsets: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rouser-run-watch", daemon=True)
        self._thread.start()

    def step(self, slowest: bool = True) -> int:
        steps = list(self._steps.values()) or [0]
        return min(steps) if slowest else max(steps)

    def latencies(self, seen: list[tuple[float, int]], slowest: bool) -> list[float]:
        """Seconds from each step's history line to the first time a viewer showed it."""
        written, out, shown = self.slowest_at if slowest else self.fastest_at, [], set()
        for t, step in seen:
            if step in written and step not in shown:
                shown.add(step)
                out.append(max(0.0, t - written[step]))
        return out

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            files = list(self.folder.glob("history.jsonl")) + list(self.folder.glob("*/history.jsonl"))
            for path in files:
                self._read(path)
            now = time.perf_counter()
            if self._steps:
                for at, step in ((self.slowest_at, self.step(True)), (self.fastest_at, self.step(False))):
                    for s in range(max(at, default=0) + 1, step + 1):
                        at[s] = now

    def _read(self, path: Path) -> None:
        with open(path, "rb") as f:
            f.seek(self._offsets.get(path, 0))
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offsets[path] = self._offsets.get(path, 0) + end
        for line in data[:end].splitlines():
            record = json.loads(line)
            if record.get("kind") == "batch":
                self._steps[path] = int(record["step"])
        self._steps.setdefault(path, 0)


class LightSession:
    """One visitor's session without a browser (see the module's docstring)."""

    def __init__(self, url: str, plot_every: float = 0.1):
        self.url, self.plot_every = url, plot_every
        self.loaded, self.error, self.load_s = threading.Event(), None, None
        self.statuses: list[tuple[float, str]] = []
        self.plot_steps: list[tuple[float, int]] = []
        self.session = self.watch = None
        self._open = False
        self._thread = threading.Thread(target=self._serve, name="rouser-light-session", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ from the caller's thread
    def wait_loaded(self, timeout: float = 180.0) -> "LightSession":
        if not self.loaded.wait(timeout) or self.error:
            raise RuntimeError(f"session did not load: {self.error or 'timeout'}")
        return self

    @property
    def connected(self) -> bool:
        return self._open

    @property
    def status(self) -> str:
        return self.statuses[-1][1] if self.statuses else ""

    def status_steps(self) -> list[tuple[float, int]]:
        """(time, training step) of each status line that showed one."""
        out = []
        for t, text in self.statuses:
            m = _STEP.search(text)
            if m:
                out.append((t, (int(m[1]) - 1) * int(m[3]) + int(m[2])))
        return out

    def start_run(self, epochs: int | None = None, runs: Path | None = None, timeout: float = 60.0) -> Path | None:
        """Press Run (after setting the epochs); with ``runs``, wait for the run's folder and watch it."""
        before = set(Path(runs).iterdir()) if runs else set()
        if self.watch is not None:
            self.watch.stop()
        self.watch, self.statuses, self.plot_steps = None, self.statuses[-1:], []  # measure this run alone
        self._on_loop(lambda: self._press("rouser-run", epochs))
        if runs is None:
            return None
        deadline = time.time() + timeout
        while time.time() < deadline:
            new = [p for p in Path(runs).iterdir() if p not in before and p.is_dir()]
            if new:
                self.watch = RunWatch(new[0])
                return new[0]
            time.sleep(0.05)
        raise RuntimeError("no run folder appeared after Run")

    def stop_run(self) -> None:
        self._on_loop(lambda: self._press("rouser-stop"))

    def wait_status(self, *prefixes: str, timeout: float = 120.0) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.status.startswith(prefixes):
                return self.status
            time.sleep(0.05)
        raise AssertionError(f"status never started with {prefixes}: {self.status!r}")

    def close(self) -> None:
        """Close the websocket, as a closed tab does."""
        if self.watch is not None:
            self.watch.stop()
        if self._open:
            self._on_loop(lambda: self.session.close("tab closed"))
        self._thread.join(10)

    # ------------------------------------------------------------------ on the session's own loop
    def _on_loop(self, fn) -> None:
        self.session._connection.io_loop.add_callback(fn)

    def _serve(self) -> None:
        import panel  # noqa: F401  (registers Panel's models, so its documents deserialise)
        from bokeh.client import pull_session
        from bokeh.events import DocumentReady

        began = time.perf_counter()
        try:
            self.session = pull_session(url=self.url)
        except Exception as exc:  # noqa: BLE001 - reported by wait_loaded
            self.error = f"{type(exc).__name__}: {exc}"
            self.loaded.set()
            return
        self.load_s = time.perf_counter() - began
        doc = self.session.document
        doc.callbacks.send_event(DocumentReady())  # what a browser sends once it has rendered the page
        status = self._models("rouser-status")[0]
        self._record_status(status.text)
        status.on_change("text", lambda _a, _o, new: self._record_status(new))
        self._open = True
        self.loaded.set()
        try:
            self.session._connection.io_loop.run_sync(self._receive)
        finally:
            self._open = False

    async def _receive(self) -> None:
        """Apply the server's patches until the socket closes. (bokeh.client's own loop recurses once per message
        and fails after about a thousand of them; a viewer of a live run receives several per second.)"""
        from tornado.ioloop import PeriodicCallback

        sampler = PeriodicCallback(self._sample_plots, 1000 * self.plot_every)
        sampler.start()
        connection = self.session._connection
        try:
            while (message := await connection._pop_message()) is not None:
                if message.msgtype == "PATCH-DOC":
                    self.session._handle_patch(message)
        finally:
            sampler.stop()

    def _models(self, css: str) -> list:
        return [m for m in self.session.document.models if css in (getattr(m, "css_classes", None) or [])]

    def _press(self, css: str, epochs: int | None = None) -> None:
        from bokeh.events import ButtonClick

        if epochs is not None:
            self._models("rouser-input-epochs")[0].value = epochs
        self.session.document.callbacks.send_event(ButtonClick(self._models(css)[0]))

    def _record_status(self, text: str) -> None:
        self.statuses.append((time.perf_counter(), html.unescape(text).replace("<pre>", "").replace("</pre>", "")))

    def _sample_plots(self) -> None:
        """The highest training step any plot of the page holds now (the plots' data sources have a step column)."""
        if self.watch is None:
            return
        import numpy as np
        from bokeh.models import ColumnDataSource

        steps = [np.asarray(s.data["step"], dtype=float) for s in self.session.document.models
                 if isinstance(s, ColumnDataSource) and "step" in s.data]
        steps = np.concatenate(steps) if steps else np.zeros(0)
        steps = steps[np.isfinite(steps)]
        step = int(steps.max()) if steps.size else 0
        if step and (not self.plot_steps or step > self.plot_steps[-1][1]):
            self.plot_steps.append((time.perf_counter(), step))
