"""SIGTERM as a request to stop: every run of the process ends before its next batch and keeps its last checkpoint.

`docker stop`, systemd and most process managers send SIGTERM, then SIGKILL a few seconds later. Inside
`stop_on_sigterm()` (what `rouser train` and `rouser reproduce` run in), SIGTERM sets `STOP`, which every
`Trainer` of the process checks before each training or evaluation batch, and is passed on to child processes
(`reproduce --jobs`): those end at once, and their runs resume from their last epoch checkpoint next time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass

__all__ = ["STOP", "Stopped", "stop_on_sigterm"]

STOP = threading.Event()  # set: every Trainer of this process stops before its next batch


@dataclass
class Stopped:
    """Which signal asked the command to stop, if any; ``exit_status`` is the shell's convention, 128 + signal."""

    signal: int | None = None

    @property
    def exit_status(self) -> int:
        return 128 + self.signal if self.signal else 0


@contextlib.contextmanager
def stop_on_sigterm():
    """While inside, SIGTERM stops the process's runs before their next batch (yields a `Stopped`).

    Only in the main thread of a single process: under torchrun, ranks stopping at different batches would wait
    on each other's collectives forever, so there SIGTERM keeps its default (torchrun stops every rank).
    """
    stopped = Stopped()
    if threading.current_thread() is not threading.main_thread() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield stopped
        return

    def request_stop(signum, _frame):
        stopped.signal = signum
        STOP.set()
        for child in multiprocessing.active_children():
            child.terminate()

    STOP.clear()
    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
        STOP.clear()
