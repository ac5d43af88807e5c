"""`rouser` command line: train, datasets, crossval, bench.

User errors (bad values, missing files) print one line and exit with code 2; a run that fails
(NaN loss) prints one line and exits with code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import TrainConfig
from .errors import RouserError
from .network import PRESETS

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a network (Rouser, or with --compare also the fixed-threshold baseline)")
    d = TrainConfig()
    p.add_argument("--dataset", default=d.dataset, help="dataset name (see `rouser datasets`); default %(default)s")
    p.add_argument("--data-root", default=None, help="folder holding real datasets (default: $ROUSER_DATA)")
    p.add_argument("--preset", default=d.preset, help=f"network preset: {', '.join(PRESETS)}; default %(default)s")
    p.add_argument("--th-init", type=float, default=d.th_init, help="initial threshold Th_init (default %(default)s)")
    p.add_argument("--tau", type=float, default=d.tau, help="surrogate steepness tau, eq 4 (default %(default)s)")
    p.add_argument("--scale", type=float, default=d.scale, help="surrogate scale s, eq 4 (default %(default)s)")
    p.add_argument("--current-decay", type=float, default=d.current_decay, help="1/tau_i of eq 1 (default %(default)s)")
    p.add_argument("--voltage-decay", type=float, default=d.voltage_decay, help="1/tau_v of eq 2 (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate of the weights (default %(default)s)")
    p.add_argument("--lr-th", type=float, default=d.lr_th, help="learning rate of the thresholds; 0 = fixed (default %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs (default {d.epochs}; with --resume: the saved run's)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="batch size (default %(default)s)")
    p.add_argument("--time-steps", type=int, default=None, help="time steps T (default: the preset's)")
    p.add_argument("--max-batches", type=int, default=None, help="stop each epoch after this many batches")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of weights and batch order (default %(default)s)")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda[:N] (default %(default)s)")
    p.add_argument("--weight-norm", action="store_true", help="weight normalisation (paper Fig. 5)")
    p.add_argument("--weight-scale", type=float, default=d.weight_scale, help="multiplies the Kaiming std (default %(default)s)")
    p.add_argument("--compare", action="store_true", help="also train the fixed-threshold baseline from the same weights")
    p.add_argument("--out", default=None, help="folder for history.jsonl, summary.json and checkpoints")
    p.add_argument("--resume", default=None, help="continue the run(s) saved in this --out folder")
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
    config = TrainConfig(
        dataset=args.dataset, data_root=args.data_root, preset=args.preset, th_init=args.th_init, tau=args.tau,
        scale=args.scale, current_decay=args.current_decay, voltage_decay=args.voltage_decay, lr=args.lr,
        lr_th=args.lr_th, epochs=args.epochs or TrainConfig.epochs, batch_size=args.batch_size,
        time_steps=args.time_steps, seed=args.seed, device=args.device, weight_norm=args.weight_norm,
        weight_scale=args.weight_scale, max_batches=args.max_batches,
    )
    return config.validate(), args.compare


def _train(args) -> int:
    from .report import ProgressBars, format_summary
    from .train import Trainer, compare

    config, is_compare = _train_config(args)
    out = Path(args.out) if args.out else (Path(args.resume) if args.resume else None)
    if is_compare:
        trainers, events = compare(config, out=out, resume=args.resume)
    else:
        trainer = Trainer(config, out=out, resume=args.resume)
        trainers, events = [trainer], trainer.events()
    started = time.perf_counter()
    summaries, errors = {}, []
    with ProgressBars(disable=args.quiet) as bars:
        try:
            for event in events:
                bars.update(event)
                if event.kind == "end":
                    summaries[event.run] = event.data
                elif event.kind == "error":
                    errors.append(f"{event.run}: {event.data['message']}")
        except KeyboardInterrupt:
            for t in trainers:
                t.cancel()
            errors.append("interrupted; the checkpoints of completed epochs are kept")
    result = dict(runs=summaries, errors=errors, seconds=round(time.perf_counter() - started, 3))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_summary(result))
    for message in errors:
        print(f"rouser train: error: {message}", file=sys.stderr)
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rouser", description="Rouser Lab: spiking networks with learnable firing thresholds.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RouserError as exc:
        print(f"rouser {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
