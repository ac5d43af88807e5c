"""`rouser` command line: train, datasets, crossval, bench, reproduce.

User errors (bad values, missing files) print one line and exit with code 2; a run that fails
(NaN loss) prints one line and exits with code 1. SIGTERM stops `train` and `reproduce` before the next batch,
keeping the last epoch checkpoint: one line, exit code 143 (128 + SIGTERM, what the shell reports for it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .allocator import keep_freed_memory
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import TrainConfig
from .errors import RouserError
from .settings import add_arguments, given_arguments
from .stopping import Stopped, stop_on_sigterm

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a network (Rouser, or with --compare also the fixed-threshold baseline)")
    add_arguments(p, TrainConfig)  # one flag per TrainConfig field, from its declaration
    p.add_argument("--compare", action="store_true", help="also train the fixed-threshold baseline from the same weights")
    p.add_argument("--out", default=None, help="folder for history.jsonl, summary.json and checkpoints")
    p.add_argument("--resume", default=None, help="continue the run(s) saved in this --out folder with their saved "
                   "settings (only --epochs may change)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)


def _train_config(args) -> tuple[TrainConfig, bool]:
    """The run's settings and whether it is a comparison; a resumed run takes its saved settings."""
    if args.resume:
        folder = Path(args.resume)
        is_compare = (folder / "rouser" / CHECKPOINT_NAME).exists()
        state = load_checkpoint(folder / "rouser" if is_compare else folder)
        config = TrainConfig.from_dict(state["config"])
        if args.epochs is not None:
            config = config.with_(epochs=args.epochs)
        return config.validate(), is_compare
    config = TrainConfig(**given_arguments(args, TrainConfig))
    return config.validate(), args.compare


def _train(args) -> int:
    from .distributed import shutdown
    from .records import RunState
    from .report import ProgressBars, format_summary
    from .train import Trainer, compare

    config, is_compare = _train_config(args)
    keep_freed_memory()  # a training process: reuse each batch's large tensors (engine/allocator.py)
    warning = config.stability_warning()
    if warning and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone
        print(f"rouser train: warning: {warning}", file=sys.stderr)
    out = Path(args.out) if args.out else (Path(args.resume) if args.resume else None)
    if is_compare:
        trainers, events = compare(config, out=out, resume=args.resume)
    else:
        trainer = Trainer(config, out=out, resume=args.resume)
        trainers, events = [trainer], trainer.events()
    main_rank = trainers[0].world.is_main  # under torchrun only rank 0 reports and writes
    started = time.perf_counter()
    state = RunState()
    with ProgressBars(disable=args.quiet or not main_rank) as bars:
        try:
            for event in events:
                bars.update(event)
                state.apply(event)
        except KeyboardInterrupt:
            for t in trainers:
                t.cancel()
            state.errors.append("interrupted; the checkpoints of completed epochs are kept")
    shutdown()
    result = state.summary(time.perf_counter() - started)
    if not main_rank:
        return 1 if result.errors else 0
    if out:
        result.write(out)
    print(json.dumps(result.to_json(), indent=2) if args.json else format_summary(result))
    for message in result.errors:
        print(f"rouser train: error: {message}", file=sys.stderr)
    return 1 if result.errors else 0


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list every dataset with its status, sizes and shapes")
    p.add_argument("--data-root", default=None, help="folder holding real datasets (default: $ROUSER_DATA)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_datasets)


def _datasets(args) -> int:
    from .data import format_datasets, list_datasets

    rows = list_datasets(args.data_root)
    print(json.dumps(rows, indent=2) if args.json else format_datasets(rows))
    return 0


def _add_crossval(sub) -> None:
    p = sub.add_parser("crossval", help="check the engine's LIF dynamics against Brian2, spike for spike")
    p.add_argument("--seed", type=int, default=0, help="seed of the random networks (default %(default)s)")
    p.add_argument("--trials", type=int, default=5, help="random networks to compare (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=_crossval)


def _crossval(args) -> int:
    from .crossval import format_report, run_crossval

    if args.trials < 1:
        raise RouserError(f"--trials must be >= 1, got {args.trials}")
    report = run_crossval(seed=args.seed, trials=args.trials)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "per_trial"}))
    else:
        print(format_report(report))
    return 0 if report["agree"] else 1


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="training throughput and memory against snntorch and the dense-GEMM bound")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    p.add_argument("--batches", type=int, default=4, help="timed batches per round and kind (default %(default)s)")
    p.add_argument("--no-snntorch", action="store_true", help="skip the snntorch comparison")
    p.add_argument("--no-spikingjelly", action="store_true", help="skip the spikingjelly comparison")
    p.add_argument("--scaling", action="store_true", help="samples/s and training memory against T, batch and width")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    from .bench import format_bench, run_bench

    if args.rounds < 1 or args.batches < 1:
        raise RouserError("--rounds and --batches must be >= 1")
    if not args.no_snntorch:
        try:
            import snntorch  # noqa: F401
        except ImportError:
            raise RouserError('snntorch is not installed; pip install -e ".[bench]" or pass --no-snntorch') from None
    progress = lambda m: print(f"bench: {m}", file=sys.stderr)  # noqa: E731
    if args.scaling:
        from .bench_scaling import format_scaling, run_scaling

        result = run_scaling(snntorch=not args.no_snntorch, progress=progress)
        print(json.dumps(result, indent=2) if args.json else format_scaling(result))
        return 0
    result = run_bench(args.rounds, args.batches, snntorch=not args.no_snntorch,
                       spikingjelly=not args.no_spikingjelly, progress=progress)
    print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return 0


def _add_reproduce(sub) -> None:
    from .reproduce import BUDGETS, EXPERIMENTS, RUNNABLE

    p = sub.add_parser("reproduce", help="reproduce the paper's experiments: runs, CSV/JSON tables and PNG figures")
    p.add_argument("experiment", help=f"one of: {', '.join(RUNNABLE)}; all (every one of {', '.join(EXPERIMENTS)} "
                   "on --dataset); "
                   "report (the runs of docs/results.md, then the page itself)")
    p.add_argument("--dataset", default="nmnist-sim", help="dataset name (see `rouser datasets`); default %(default)s")
    p.add_argument("--data-root", default=None, help="folder holding real datasets (default: $ROUSER_DATA)")
    p.add_argument("--budget", default="quick", help=f"{', '.join(BUDGETS)}: how long each run trains (default %(default)s)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per run (mean and min-max band); default: the "
                   "budget's (tiny, quick: 1; paper: 2, threshold-sweep 1; rousing-map: at least 3); report: the page's own, 3")
    p.add_argument("--out", default="runs/reproduce", help="folder for runs and results (default %(default)s); "
                   "finished runs found there are not trained again")
    p.add_argument("--thresholds", default=None, help="threshold-sweep: comma-separated Th values "
                   "(default 0,0.25,0.5,0.75,1,1.25,1.5,2; paper budget: 0.25,0.5,1,1.25,2)")
    p.add_argument("--docs", default="docs", help="report only: folder receiving results.md and results/ (default %(default)s)")
    p.add_argument("--maps", default=None, help="report only: also write each rousing map's JSON into this folder "
                   "(default: rouser_app/maps when that folder is here, as in a checkout; the dashboard ships them)")
    p.add_argument("--jobs", type=int, default=1, help="train independent runs in this many processes (default 1)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    p.set_defaults(func=_reproduce)


def _reproduce(args) -> int:
    from .reproduce import RUNNABLE, run_all, run_experiment

    keep_freed_memory()  # as in `rouser train`; worker processes (--jobs) do the same

    if args.seeds is not None and args.seeds < 1:
        raise RouserError(f"--seeds must be >= 1, got {args.seeds}")
    if args.jobs < 1:
        raise RouserError(f"--jobs must be >= 1, got {args.jobs}")
    thresholds = None
    if args.thresholds is not None:
        try:
            thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
        except ValueError:
            raise RouserError(f"--thresholds must be comma-separated numbers, got {args.thresholds!r}") from None
    if args.experiment == "report":
        from .reproduce import write_report

        maps = args.maps or ("rouser_app/maps" if Path("rouser_app/maps").is_dir() else None)
        path = write_report(args.out, args.docs, budget=args.budget, seeds=args.seeds, data_root=args.data_root,
                            quiet=args.quiet, thresholds=thresholds, jobs=args.jobs, maps=maps)
        print(f"wrote {path}")
        return 0
    if args.experiment == "all":
        records = run_all(args.dataset, args.budget, args.seeds, args.out, args.data_root, args.quiet,
                          thresholds=thresholds, jobs=args.jobs)
    elif args.experiment in RUNNABLE:
        records = {args.experiment: run_experiment(args.experiment, args.dataset, args.budget, args.seeds, args.out,
                                                   args.data_root, args.quiet, thresholds=thresholds,
                                                   jobs=args.jobs)}
    else:
        raise RouserError(f"unknown experiment {args.experiment!r}; choose one of: {', '.join(RUNNABLE)}, all, report")
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for name, r in records.items():
            print(f"{name}: {r['runs_trained']} runs trained, {r['runs_skipped']} already done, {r['seconds']:.0f} s; "
                  f"figures: {', '.join(r['figures'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rouser", description="Rouser Lab: spiking networks with learnable firing thresholds.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_datasets, _add_crossval, _add_bench, _add_reproduce):
        add(sub)
    return parser


def _stopped_message(args) -> str:
    """The one line printed when SIGTERM stopped ``train`` or ``reproduce``."""
    out = getattr(args, "out", None) or getattr(args, "resume", None)
    if args.command == "train":
        kept = f"the checkpoints of completed epochs are kept in {out}; continue with --resume {out}" if out else \
            "nothing was saved (no --out)"
    else:
        kept = f"finished runs and the checkpoints of completed epochs are kept in {out}; run the same command to continue"
    return f"rouser {args.command}: stopped by SIGTERM before the next batch; {kept}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stoppable = stop_on_sigterm() if args.command in ("train", "reproduce") else contextlib.nullcontext(Stopped())
    with stoppable as stopped:
        try:
            status = args.func(args)
        except RouserError as exc:  # under SIGTERM: a run that stopped early, reported below instead
            if not stopped.signal:
                print(f"rouser {args.command}: error: {exc}", file=sys.stderr)
                return 2
        except Exception:
            if not stopped.signal:  # under SIGTERM: a worker process ended by it (reproduce --jobs)
                raise
    if stopped.signal:
        print(_stopped_message(args), file=sys.stderr)
        return stopped.exit_status  # 143, as a process killed by SIGTERM reports to the shell
    return status


if __name__ == "__main__":
    sys.exit(main())
