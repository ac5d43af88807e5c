"""`python -m rouser_app [--port N] [--data-root DIR] [--runs DIR] [--max-runs N] [panel serve options]`.

Adds `serving.SESSION_CLEANUP` (a closed tab's session freed within half a minute) unless those flags are given.
Ctrl-C or SIGTERM stops it: runs are cancelled before their next batch, their threads joined, exit status 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .serving import SESSION_CLEANUP, passive_thread_waits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rouser_app", description="Serve the Rouser Lab dashboard.")
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--address", default="localhost")
    parser.add_argument("--data-root", help="folder of the real datasets (default: $ROUSER_DATA or ~/rouser-data)")
    parser.add_argument("--runs", help="folder the dashboard saves runs in (default: $ROUSER_RUNS or ./runs)")
    parser.add_argument("--max-runs", type=int, help="runs training at once on this server (default 2)")
    parser.add_argument("--show", action="store_true", help="open a browser tab")
    args, rest = parser.parse_known_args(argv)
    app_args = [f"--{name.replace('_', '-')}={value}" for name, value in
                (("data_root", args.data_root), ("runs", args.runs), ("max_runs", args.max_runs)) if value is not None]
    host = "localhost" if args.address in ("0.0.0.0", "") else args.address
    print(f"Rouser Lab dashboard: http://{host}:{args.port}/rouser_app", flush=True)
    cleanup = [item for flag, value in SESSION_CLEANUP.items()
               if not any(r.split("=")[0] == flag for r in rest) for item in (flag, value)]
    sys.argv = ["panel", "serve", str(Path(__file__).parent), "--port", str(args.port), "--address", args.address,
                *(["--show"] if args.show else []), *cleanup, *rest, *(["--args", *app_args] if app_args else [])]
    passive_thread_waits()  # runs share the cores with the server's event loop (see rouser_app.serving)
    from panel.command import main as panel_main

    try:
        panel_main()
    finally:  # the server's unload hook has done this already; a second call returns at once
        from .worker import shutdown

        shutdown()


if __name__ == "__main__":
    main()
