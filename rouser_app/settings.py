"""Server-side configuration: data root, runs folder, run limits. Never taken from the page.

Sources, first one wins: ``panel serve rouser_app --args --data-root DIR --runs DIR --max-runs N``,
then the environment (``ROUSER_DATA``, ``ROUSER_RUNS``, ``ROUSER_MAX_RUNS``, ``ROUSER_MAX_EPOCHS``,
``ROUSER_MAX_BATCH_SIZE``, ``ROUSER_DEFAULT_DATASET``), then the defaults below.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True)
class Settings:
    """What the server allows and where it keeps things; the page only ever sees names inside these folders."""

    data_root: str | None = None  # None: the engine's default ($ROUSER_DATA or ~/rouser-data)
    runs_dir: str = "runs"  # every run the dashboard starts writes a folder here
    max_runs: int = 2  # concurrent runs on the whole server; further requests wait in a queue
    max_epochs: int = 50
    max_batch_size: int = 256
    default_dataset: str | None = None  # None: the engine's default dataset

    @property
    def caps(self) -> dict[str, int]:
        """The highest value this server allows for TrainConfig settings it limits (name -> cap)."""
        return {"epochs": self.max_epochs, "batch_size": self.max_batch_size}

    @property
    def runs_path(self) -> Path:
        return Path(self.runs_dir).expanduser().resolve()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rouser_app", add_help=False)
    p.add_argument("--data-root")
    p.add_argument("--runs")
    p.add_argument("--max-runs", type=int)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--max-batch-size", type=int)
    p.add_argument("--dataset")
    return p


def load_settings(argv: list[str] | None = None, environ: dict | None = None) -> Settings:
    """Settings from command-line ``argv`` (the part after ``--args``) and ``environ``; unknown flags are ignored."""
    env = os.environ if environ is None else environ
    args, _ = _parser().parse_known_args(argv or [])

    def pick(flag, name, default, cast=str):
        value = flag if flag is not None else env.get(name)
        if value in (None, ""):
            return default
        return cast(value)

    return Settings(
        data_root=pick(args.data_root, "ROUSER_DATA", None),
        runs_dir=pick(args.runs, "ROUSER_RUNS", "runs"),
        max_runs=max(1, pick(args.max_runs, "ROUSER_MAX_RUNS", 2, int)),
        max_epochs=max(1, pick(args.max_epochs, "ROUSER_MAX_EPOCHS", 50, int)),
        max_batch_size=max(1, pick(args.max_batch_size, "ROUSER_MAX_BATCH_SIZE", 256, int)),
        default_dataset=pick(args.dataset, "ROUSER_DEFAULT_DATASET", None),
    )
