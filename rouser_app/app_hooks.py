"""Bokeh's server hooks for `panel serve rouser_app` (a directory app): what happens when the server starts and stops.

Bokeh stops its loop on Ctrl-C and on SIGTERM, then calls `on_server_unloaded`: every run is cancelled before
its next batch and its thread joined, so the process exits with status 0 instead of aborting inside torch.
Absolute imports: the hooks must share `rouser_app.worker`'s run registry with the pages (main.py).
"""


def on_server_loaded(server_context) -> None:
    """Before any page imports torch: passive OpenMP waits. No tracebacks in the log for browsers that went away.
    SIGUSR1 writes every thread's stack to the log (`kill -USR1 PID`: where a stuck server waits)."""
    import faulthandler
    import signal

    from rouser_app.serving import passive_thread_waits, quiet_closed_sockets, tolerate_dropped_connections

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    passive_thread_waits()
    quiet_closed_sockets()
    tolerate_dropped_connections()


def on_session_destroyed(session_context) -> None:
    """A browser session was freed (its tab closed a while ago): give its memory back soon."""
    from rouser_app.serving import schedule_release

    schedule_release()


def on_server_unloaded(server_context) -> None:
    from rouser_app.worker import LIVE, shutdown

    jobs = len(LIVE.jobs)
    if jobs:
        print(f"Rouser Lab: stopping {jobs} run(s) before their next batch", flush=True)
    shutdown()
