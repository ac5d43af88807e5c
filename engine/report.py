"""Terminal output of a run: a progress bar per run and the closing summary table."""

from __future__ import annotations

from tqdm import tqdm

from .records import BatchRecord, Event, JobSummary, RunStart

__all__ = ["ProgressBars", "format_summary"]


class ProgressBars:
    """One tqdm bar per run, driven by the trainer's events (written to stderr)."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bars: dict[str, tqdm] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for bar in self.bars.values():
            bar.close()

    def update(self, event: Event) -> None:
        r = event.record
        if isinstance(r, RunStart):
            self.bars[event.run] = tqdm(total=(r.epochs - r.epoch) * r.num_batches, desc=f"{event.run:>6}",
                                        position=len(self.bars), unit="batch", disable=self.disable, leave=True)
        elif isinstance(r, BatchRecord) and event.run in self.bars:
            self.bars[event.run].set_postfix_str(
                f"epoch {r.epoch} loss {r.loss:.3g} acc {r.train_accuracy:.2f} "
                f"out active {100 * r.layers[-1].active_fraction:.0f}%", refresh=False)
            self.bars[event.run].update(1)


def _cells(values, fmt: str) -> str:
    return " / ".join(fmt.format(v) for v in values) if values else "-"


def format_summary(result: JobSummary) -> str:
    """A short table: accuracy, dead neurons per layer and final thresholds of each run."""
    header = f"{'run':<8}{'status':<11}{'test acc':>9}{'loss':>9}   {'dead % per layer':<24}threshold mean per layer"
    lines = [header, "-" * len(header)]
    for name, s in result.runs.items():
        acc = "-" if s.test_accuracy is None else f"{100 * s.test_accuracy:.1f}%"
        loss = "-" if s.final_loss is None else f"{s.final_loss:.3g}"
        dead = _cells(s.dead_percent, "{:.1f}")
        ths = _cells([t.mean for t in s.thresholds], "{:.3f}")
        lines.append(f"{name:<8}{s.status:<11}{acc:>9}{loss:>9}   {dead:<24}{ths}")
    lines.append(f"time: {result.seconds:.1f} s")
    return "\n".join(lines)
