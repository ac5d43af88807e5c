"""Training in a worker thread that only appends events to a queue and checks a stop flag.

A server-wide `RunLimiter` caps how many runs train at once; further runs wait in its queue
(in the order they were asked for) and start as soon as a slot frees. `LIVE` knows every job and dataset load
under way, so that `shutdown()` (the server stopping, on Ctrl-C or SIGTERM) can cancel them and wait for their
threads: a thread left inside torch when the interpreter exits aborts the process.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import queue
import threading
import time
from pathlib import Path

from engine.config import TrainConfig
from engine.errors import RouserError
from engine.records import JOB, Event, EventKind, RunError, RunState, RunSummary, write_raster
from engine.train import Trainer, compare, prepare_dataset, run_name, run_time_steps

__all__ = ["DatasetCache", "DATASETS", "LIVE", "LiveWork", "RunJob", "RunLimiter", "LIMITER", "describe_error",
           "shutdown"]


def describe_error(exc: BaseException) -> str:
    """One line for the status bar: the engine's own message, or the exception's type and first line."""
    if isinstance(exc, RouserError):
        text = str(exc)
    elif isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        text = f"out of memory ({type(exc).__name__}); choose a smaller preset or batch size"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class LiveWork:
    """The jobs and dataset loads under way in this process, so that a stopping server can end them cleanly."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: set[RunJob] = set()
        self._threads: set[threading.Thread] = set()
        self.closing = False  # True during shutdown(): a job started meanwhile stops at once

    def add(self, job: "RunJob") -> None:
        with self._lock:
            self._jobs.add(job)

    def discard(self, job: "RunJob") -> None:
        with self._lock:
            self._jobs.discard(job)

    def track(self, thread: threading.Thread) -> None:
        """A thread (a dataset load) that cannot be cancelled but must be waited for."""
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()} | {thread}

    @property
    def jobs(self) -> list["RunJob"]:
        with self._lock:
            return list(self._jobs)

    def shutdown(self, timeout: float = 30.0) -> int:
        """Cancel every job (a running one before its next batch, a queued one at once) and join every thread,
        for at most ``timeout`` seconds in all; returns how many jobs were stopped. Epoch checkpoints being
        written complete first (the trainer checks its stop flag only between batches)."""
        self.closing = True
        try:
            jobs = self.jobs
            for job in sorted(jobs, key=lambda j: j.state != "queued"):  # withdraw the queued first: none may start
                job.stop()
            with self._lock:
                threads = [j.thread for j in jobs if j.thread is not None] + list(self._threads)
            deadline = time.monotonic() + timeout
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            return len(jobs)
        finally:
            self.closing = False


LIVE = LiveWork()


def shutdown(timeout: float = 30.0) -> int:
    """Stop every run of this process and wait for its threads (the server's unload hook, and at exit)."""
    return LIVE.shutdown(timeout)


atexit.register(shutdown)  # a notebook kernel or script exiting mid-run: cancel, then let the interpreter go


class RunLimiter:
    """At most ``max_runs`` jobs train at once on this server; the rest wait first come, first served."""

    def __init__(self, max_runs: int = 2):
        self.max_runs = max(1, int(max_runs))
        self._lock = threading.Lock()
        self._active: set[RunJob] = set()
        self._waiting: collections.deque[RunJob] = collections.deque()

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def position(self, job: "RunJob") -> int:
        """1-based place of ``job`` in the queue; 0 when it is not waiting."""
        with self._lock:
            return self._waiting.index(job) + 1 if job in self._waiting else 0

    def submit(self, job: "RunJob") -> bool:
        """Start ``job`` now when a slot is free (True) or queue it (False)."""
        with self._lock:
            start = len(self._active) < self.max_runs
            (self._active.add if start else self._waiting.append)(job)
        if start:
            job._launch()
        return start

    def release(self, job: "RunJob") -> None:
        """``job`` finished or was withdrawn: free its slot and start whoever waits next."""
        with self._lock:
            self._active.discard(job)
            if job in self._waiting:
                self._waiting.remove(job)
            starting = []
            while self._waiting and len(self._active) < self.max_runs:
                nxt = self._waiting.popleft()
                self._active.add(nxt)
                starting.append(nxt)
        for nxt in starting:
            nxt._launch()


LIMITER = RunLimiter(int(os.environ.get("ROUSER_MAX_RUNS", "2") or 2))


class DatasetCache:
    """The last few prepared datasets, shared by every run on the server (loading one takes seconds).

    Runs only read a dataset, so concurrent runs may share it. Two runs asking for the same one while it
    loads wait for the one load.
    """

    def __init__(self, size: int = 2):
        self.size = size
        self._lock = threading.Lock()
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._loading: dict[tuple, threading.Event] = {}

    @staticmethod
    def key(config: TrainConfig) -> tuple:
        return config.dataset, config.data_root, run_time_steps(config)

    def __contains__(self, config: TrainConfig) -> bool:
        with self._lock:
            return self.key(config) in self._items

    def get(self, config: TrainConfig):
        key = self.key(config)
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                waiting = self._loading.get(key)
                if waiting is None:
                    self._loading[key] = threading.Event()
            if waiting is not None:  # someone else loads it; if that fails, try ourselves
                waiting.wait()
                continue
            try:
                dataset = prepare_dataset(config)
                with self._lock:
                    self._items[key] = dataset
                    while len(self._items) > self.size:
                        self._items.popitem(last=False)
                return dataset
            finally:
                with self._lock:
                    self._loading.pop(key).set()

    def prefetch(self, config: TrainConfig) -> None:
        """Load ``config``'s dataset in the background (errors are left for the run to report)."""
        if config in self:
            return

        def load():
            try:
                self.get(config)
            except Exception:  # noqa: BLE001 - the run that needs it reports the error
                pass
        thread = threading.Thread(target=load, name="rouser-prefetch", daemon=True)
        LIVE.track(thread)
        thread.start()


DATASETS = DatasetCache(int(os.environ.get("ROUSER_DATASET_CACHE", "2") or 2))


class RunJob:
    """One dashboard run: Rouser and (with ``compare``) its fixed-threshold baseline, trained in a thread.

    The thread only puts `Event`s on ``self.events`` and checks the stop flag; ``drain()`` takes them off
    on the caller's side (the page's event loop). An error outside any run comes as an error event of run
    `engine.records.JOB`, and a final ``Event.done()`` (run JOB) marks the end. With ``out``, the thread writes
    the job's summary.json there before that last event, so a run whose page went away is summarised too.
    """

    def __init__(self, config: TrainConfig, compare: bool = True, out: str | Path | None = None,
                 limiter: RunLimiter | None = None, dataset=None, cache: DatasetCache | None = None):
        self.config = config.validate()
        self.compare = compare
        self.out = Path(out) if out else None
        self.limiter = limiter
        self.dataset = dataset
        self.cache = cache
        self.runs = ["rouser", "fixed"] if compare else [run_name(config)]
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.state = "created"  # created -> queued -> running -> done
        self.trainers: list[Trainer] = []
        self.thread: threading.Thread | None = None
        self.created_at = time.perf_counter()
        self.started_at: float | None = None
        self._outcome = RunState()  # the runs' summaries and errors, for summary.json
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ control, from any thread
    def start(self) -> None:
        """Train now, or wait for a free slot when the server's limit is reached."""
        self.state = "queued"
        LIVE.add(self)
        if LIVE.closing:  # the server is stopping
            self._stop.set()
        if self.limiter is None:
            self._launch()
        else:
            self.limiter.submit(self)

    def stop(self) -> None:
        """Ask every trainer to stop before its next batch. A queued job, or one still loading its dataset, ends at
        once: its runs are reported cancelled now, and a loading thread drops its work when the load returns."""
        with self._lock:
            self._stop.set()
            trainers = list(self.trainers)
            withdrawn = self.state == "queued" and self.thread is None
            loading = self.state == "running" and not trainers
            if withdrawn or loading:
                self.state = "done"
        for trainer in trainers:
            trainer.cancel()
        if loading:
            LIVE.track(self.thread)  # the server still joins the loading thread when it stops
        if withdrawn or loading:
            self._cancel_runs()
            self._end()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def queue_position(self) -> int:
        return self.limiter.position(self) if self.limiter is not None and self.state == "queued" else 0

    @property
    def done(self) -> bool:
        return self.state == "done"

    def drain(self, limit: int | None = None) -> list[Event]:
        """Take the events waiting in the queue (at most ``limit``)."""
        out = []
        while limit is None or len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    # ------------------------------------------------------------------ the worker thread
    def _launch(self) -> None:
        with self._lock:
            if self.state == "done":  # withdrawn while waiting
                return
            self.state = "running"
            self.thread = threading.Thread(target=self._work, name=f"rouser-run-{id(self):x}", daemon=True)
        self.started_at = time.perf_counter()
        self.thread.start()

    def _work(self) -> None:
        try:
            if not self._stop.is_set():
                self._train()
            else:
                self._cancel_runs()
        except BaseException as exc:  # noqa: BLE001 - nothing may escape the thread or reach the server
            self._put(Event.error(JOB, describe_error(exc)))
        finally:
            with self._lock:
                ended = self.state == "done"  # stopped while loading: already reported
                self.state = "done"
                self.trainers = []  # free the models: the page keeps only the events
                self.dataset = None
            if not ended:
                self._end()

    def _put(self, event: Event) -> None:
        if isinstance(event.record, (RunSummary, RunError)):
            self._outcome.apply(event)
        if event.raster is not None and self.out is not None:  # so a reloaded run shows its latest raster
            folder = self.out / event.run if self.compare else self.out
            with contextlib.suppress(OSError):
                write_raster(folder, event.record.step, event.raster)
        self.events.put(event)

    def _end(self) -> None:
        """Write summary.json (as ``rouser train --compare --out`` does), then the final event; free the slot."""
        if self.out is not None and self.out.exists():
            try:
                self._outcome.summary(time.perf_counter() - self.created_at).write(self.out)
            except OSError as exc:
                self.events.put(Event.error(JOB, f"could not write summary.json: {exc.strerror}"))
        self.events.put(Event.done())
        LIVE.discard(self)
        if self.limiter is not None:
            self.limiter.release(self)

    def _cancel_runs(self) -> None:
        """End events for runs withdrawn before they started."""
        for run in self.runs:
            self._put(Event(EventKind.END, run, RunSummary(run=run, status="cancelled")))

    def _train(self) -> None:
        if self.dataset is not None:
            dataset = self.dataset
        else:
            dataset = self.cache.get(self.config) if self.cache is not None else prepare_dataset(self.config)
        if self.state == "done":  # stopped while the dataset loaded
            return
        if self.compare:
            trainers, stream = compare(self.config, self.out, dataset)
        else:
            trainer = Trainer(self.config, dataset, self.out)
            trainers, stream = [trainer], trainer.events()
        with self._lock:
            if self.state == "done":  # stopped while the trainers were being built
                return
            self.trainers = trainers
            cancel = self._stop.is_set()
        for trainer in trainers:
            if cancel:
                trainer.cancel()
        for event in stream:
            self._put(event)
