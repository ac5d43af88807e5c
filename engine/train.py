"""The Trainer: Adam on weights and thresholds, one stream of events for the CLI, dashboard and notebooks.

A run with threshold learning rate 0 is the fixed-threshold baseline (the paper's SLAYER-style control).
Runs with the same seed start from identical weights and see batches in identical order: the weights
come from a generator seeded with ``seed`` and epoch e's batch order from ``default_rng([seed, e])``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .data import SpikeDataset, SpikeSplit, load_dataset
from .distributed import current_world
from .loss import fir_kernel, predict, target_spikes, van_rossum_loss
from .metrics import (EpochActivity, batch_activity, layer_metrics, probe_raster, threshold_sample_indices,
                      threshold_stats)
from .network import RouserNetwork, get_preset
from .provenance import run_provenance
from .records import (BatchRecord, EpochRecord, Event, EventKind, HistoryRecord, LayerRaster, RunStart, RunSummary,
                      history_record, write_history)
from .stopping import STOP

__all__ = ["Event", "Trainer", "compare", "resolve_device", "run_name", "run_time_steps"]

EVAL_BATCH = 128


@dataclass(frozen=True)
class BatchResult:
    """One trained batch: its record, its correct predictions, and the probe's raster when one was taken."""

    record: BatchRecord
    correct: int
    raster: tuple[LayerRaster, ...] | None = None


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; asking for CUDA without it is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name} requested but CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


def run_name(config: TrainConfig) -> str:
    return "rouser" if config.lr_th > 0 else "fixed"


def run_time_steps(config: TrainConfig) -> int:
    """The run's time grid: ``time_steps`` when set, else the preset's."""
    return config.time_steps or get_preset(config.preset).time_steps


def prepare_dataset(config: TrainConfig) -> SpikeDataset:
    """The run's dataset on the run's time grid."""
    return load_dataset(config.dataset, config.data_root, time_steps=run_time_steps(config))


def adam(model: RouserNetwork, config: TrainConfig) -> torch.optim.Adam:
    """Adam with one learning rate for the weights and one for the thresholds (0: thresholds fixed)."""
    weights = [p for n, p in model.named_parameters() if not n.endswith("threshold")]
    groups = [dict(params=weights, lr=config.lr)]
    if config.lr_th > 0:
        groups.append(dict(params=model.thresholds(), lr=config.lr_th))
    else:
        for th in model.thresholds():
            th.requires_grad_(False)
    return torch.optim.Adam(groups)


def gradients_finite(model: torch.nn.Module) -> bool:
    """False when BPTT produced NaN or infinity (the step is then skipped, the weights stay good)."""
    grads = [p.grad.abs().amax() for p in model.parameters() if p.grad is not None]
    return bool(torch.isfinite(torch.stack(grads).sum()))


class Trainer:
    """Trains one network; iterate ``events()`` to run it, call ``cancel()`` from any thread to stop it.

    Under torchrun each rank trains on its shard of every global batch (``batch_size`` is the global
    size) through DistributedDataParallel, so weight and threshold gradients are all-reduced and all
    ranks keep identical parameters; metrics are reduced over ranks and only rank 0 writes files.
    """

    def __init__(self, config: TrainConfig, dataset: SpikeDataset | None = None, out: str | Path | None = None,
                 resume: str | Path | None = None, name: str | None = None):
        state = load_checkpoint(Path(resume)) if resume else None
        if state is not None:
            config = TrainConfig.from_dict({**state["config"], "epochs": max(config.epochs, state["config"]["epochs"])})
        self.config = config.validate()
        self.name = name or run_name(config)
        self.out = Path(out) if out else (Path(resume) if resume else None)
        requested = resolve_device(config.device)
        self.world = current_world(requested)
        self.device = self.world.device(requested)
        self.dataset = dataset if dataset is not None else prepare_dataset(config)
        steps = run_time_steps(config)
        if self.dataset.time_steps != steps:
            self.dataset = self.dataset.rebin(steps)
        self.sizes = [self.dataset.num_channels, *get_preset(config.preset).hidden, self.dataset.num_classes]
        self.model = RouserNetwork(self.sizes, config.th_init, config.neuron(), config.seed, config.weight_scale,
                                   config.weight_norm, init=config.init, weight_quant=config.weight_quant).to(self.device)
        self.initial_weights = [w.detach().clone() for w in self.model.weights()]
        self.optimizer = adam(self.model, config)
        # under torchrun: DistributedDataParallel all-reduces the gradients
        self.network = torch.nn.parallel.DistributedDataParallel(self.model) if self.world.distributed else self.model
        self.kernel = fir_kernel(config.loss_tau, device=self.device)
        self.probe = self.dataset.test.batch([0]).to(self.device)
        self.sample_indices = [threshold_sample_indices(n) for n in self.sizes[1:]]
        self.history: list[HistoryRecord] = []
        self.provenance = run_provenance(self.dataset, self.device, self.world.size)
        self.epoch = 0  # epochs completed
        self.step = 0  # batches trained
        self._cancel = threading.Event()
        if state is not None:
            self._restore(state)

    def cancel(self) -> None:
        """Ask the run to stop before its next batch."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """``cancel()`` was called, or the process was asked to stop (`engine.stopping.STOP`, set by SIGTERM)."""
        return self._cancel.is_set() or STOP.is_set()

    def batch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.config.seed, epoch]).permutation(len(self.dataset.train))

    # ---------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        return dict(config=self.config.to_dict(), epoch=self.epoch, model=self.model.state_dict(),
                    optimizer=self.optimizer.state_dict(), initial_weights=[w.cpu() for w in self.initial_weights],
                    history=[r.to_json() for r in self.history], torch_rng=torch.get_rng_state(), name=self.name, sizes=self.sizes)

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.initial_weights = [w.to(self.device) for w in state["initial_weights"]]
        self.history = [history_record(r) for r in state["history"]]
        self.epoch = int(state["epoch"])
        self.step = sum(isinstance(r, BatchRecord) for r in self.history)
        self.name = state.get("name", self.name)
        torch.set_rng_state(state["torch_rng"])

    def _log(self, record: HistoryRecord) -> None:
        self.history.append(record)
        if self.out and self.world.is_main:
            write_history(self.out / "history.jsonl", [record], append=True)

    def _start_files(self) -> None:
        """Rewrite history.jsonl from the (possibly resumed) history; write the first checkpoint."""
        if not self.out or not self.world.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        write_history(self.out / "history.jsonl", self.history)
        if self.epoch == 0:
            save_checkpoint(self.state(), self.out)

    # ---------------------------------------------------------------- training
    def forward(self, batch, network=None):
        """Spikes of every layer and the van Rossum loss (eq 6) against the label's target trains."""
        spikes = (network or self.model)(batch)
        target = target_spikes(batch.labels, self.sizes[-1], batch.time_steps, self.config.true_rate,
                               self.config.false_rate, spikes[-1].dtype)
        return spikes, van_rossum_loss(spikes[-1], target, self.kernel)

    @torch.no_grad()
    def evaluate(self, split: SpikeSplit, cancellable: bool = False) -> dict | None:
        """Loss and accuracy over a whole split, without gradients (each rank takes its shard).

        With ``cancellable``, None when the run is cancelled before one of the split's batches."""
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # summed loss, correct
        mine = self.world.shard(np.arange(len(split)))
        for start in range(0, len(mine), EVAL_BATCH):
            if cancellable and self.cancelled:
                return None
            batch = split.batch(mine[start:start + EVAL_BATCH]).to(self.device)
            spikes, batch_loss = self.forward(batch)
            totals[0] += batch_loss.double() * batch.batch_size
            totals[1] += (predict(spikes[-1]) == batch.labels).sum()
        loss, correct = self.world.sum(totals).tolist()
        return dict(loss=loss / max(1, len(split)), accuracy=correct / max(1, len(split)))

    def events(self) -> Iterator[Event]:
        """Run the remaining epochs, yielding start, batch, epoch and end (or error) events."""
        cfg = self.config
        self._start_files()
        train = self.dataset.train
        num_batches = -(-len(train) // cfg.batch_size)
        if cfg.max_batches:
            num_batches = min(num_batches, cfg.max_batches)
        yield Event(EventKind.START, self.name, RunStart(
            config=cfg.to_dict(), dataset=self.dataset.name, sizes=tuple(self.sizes), time_steps=self.dataset.time_steps,
            num_batches=num_batches, batch_size=cfg.batch_size, epoch=self.epoch, epochs=cfg.epochs,
            device=str(self.device), threshold_sample_indices=tuple(tuple(ix) for ix in self.sample_indices)))
        started = time.perf_counter()
        for epoch in range(self.epoch, cfg.epochs):
            activity = EpochActivity(self.sizes[1:], self.device)
            order = self.batch_order(epoch)
            correct = seen = 0
            for b in range(num_batches):
                if self.cancelled:
                    yield Event(EventKind.END, self.name, self.summary("cancelled", time.perf_counter() - started))
                    return
                indices = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                result = self._train_batch(train, indices, activity, epoch + 1, b + 1, num_batches)
                if result is None:
                    yield Event.error(self.name, _nan_message(self, epoch, b))
                    return
                correct += result.correct
                seen += len(indices)
                self._log(result.record)
                yield Event(EventKind.BATCH, self.name, result.record, result.raster)
            test = self.evaluate(self.dataset.test, cancellable=True)
            if test is None:  # cancelled while testing: the epoch is not complete, the last checkpoint stays
                yield Event(EventKind.END, self.name, self.summary("cancelled", time.perf_counter() - started))
                return
            self.epoch = epoch + 1
            record = EpochRecord(epoch=self.epoch, train_accuracy=correct / max(1, seen), test_accuracy=test["accuracy"],
                                 test_loss=test["loss"], dead_percent=tuple(activity.dead_percent()),
                                 thresholds=threshold_stats(self.model.thresholds()))
            self._log(record)
            if self.out and self.world.is_main:
                save_checkpoint(self.state(), self.out)
            yield Event(EventKind.EPOCH, self.name, record)
        yield Event(EventKind.END, self.name, self.summary("finished", time.perf_counter() - started))

    def _train_batch(self, train: SpikeSplit, indices: np.ndarray, activity: EpochActivity, epoch: int,
                     batch_number: int, num_batches: int) -> BatchResult | None:
        """One Adam step on one global batch (this rank's shard of it); None when loss or gradients are not finite."""
        t0 = time.perf_counter()
        local = self.world.shard(indices)
        batch = train.batch(local).to(self.device)
        spikes, loss = self.forward(batch, self.network)
        if self.world.max(torch.isfinite(loss).logical_not().float().reshape(1)).item():
            return None
        self.optimizer.zero_grad(set_to_none=True)
        # each rank's mean loss weighted by its share, so the all-reduced mean is the global batch's mean
        (loss * (len(local) * self.world.size / len(indices))).backward()
        if not gradients_finite(self.model):
            return None
        self.optimizer.step()
        fired, counts = batch_activity(spikes)
        fired = [f.bool() for f in self.world.max(torch.cat([f.float() for f in fired])).split(self.sizes[1:])]
        correct = (predict(spikes[-1]) == batch.labels).sum()
        totals = self.world.sum(torch.stack([loss.detach() * len(local), correct.to(loss.dtype), *counts]).double())
        loss_sum, correct, *counts = totals.tolist()
        activity.update(fired)
        steps = batch.time_steps
        spike_percent = [100.0 * c / (steps * len(indices) * n) for c, n in zip(counts, self.sizes[1:])]
        with torch.no_grad():
            probe = self.model(self.probe)
        layers = layer_metrics(fired, spike_percent, activity, self.model.thresholds(), self.model.weights(),
                               self.initial_weights, self.sample_indices, probe)
        self.step += 1
        record = BatchRecord(epoch=epoch, batch=batch_number, num_batches=num_batches, step=self.step,
                             loss=loss_sum / len(indices), train_accuracy=correct / len(indices),
                             samples_per_s=len(indices) / (time.perf_counter() - t0), layers=tuple(layers))
        every = self.config.raster_every
        raster = probe_raster(probe) if every and (self.step - 1) % every == 0 else None
        return BatchResult(record, int(correct), raster)

    def summary(self, status: str, seconds: float) -> RunSummary:
        """The run's outcome: accuracy, dead neurons and thresholds per layer, config and provenance."""
        return RunSummary.from_history(
            self.history, run=self.name, status=status, epochs_completed=self.epoch, seconds=round(seconds, 3),
            sizes=tuple(self.sizes), dataset=self.dataset.name, time_steps=self.dataset.time_steps,
            thresholds=threshold_stats(self.model.thresholds()), config=self.config.to_dict(), provenance=self.provenance)


def _nan_message(trainer: Trainer, epoch: int, batch: int) -> str:
    """The one-line error for a run whose loss or gradients stopped being finite, with the likely cause."""
    kept = f"; the last good checkpoint (epoch {trainer.epoch}) is kept in {trainer.out}" if trainer.out else ""
    neuron = trainer.config.neuron()
    highest = max(float(t.detach().max()) for t in trainer.model.thresholds())
    if neuron.reset_grad == "full" and highest >= neuron.max_stable_threshold:
        cause = (f"likely cause: gradients through the reset grow without bound once Th * s / tau >= 1 + a_v "
                 f"(Th up to {highest:.3g}, bounded below {neuron.max_stable_threshold:.3g}); lower s (--scale), "
                 f"raise tau (--tau), or use --reset-grad detach")
    else:
        cause = ("likely cause: too large a step for the weights or thresholds, or gradients through the reset "
                 "growing over the time steps; lower --lr/--lr-th or s (--scale), raise tau (--tau), "
                 "or use --reset-grad detach")
    return f"loss or gradients became NaN or infinite at epoch {epoch + 1}, batch {batch + 1}{kept}; {cause}"


def compare(config: TrainConfig, out: str | Path | None = None, dataset: SpikeDataset | None = None,
            resume: str | Path | None = None) -> tuple[list[Trainer], Iterator[Event]]:
    """A Rouser run and its fixed-threshold baseline (lr_th = 0) from the same seed, interleaved batch by batch.

    Returns the two trainers (rouser first) and one merged event stream.
    """
    config = config.validate()
    if config.lr_th == 0:
        raise ConfigError("lr_th must be > 0 for a comparison (the baseline is the run with lr_th = 0)")
    dataset = dataset if dataset is not None else prepare_dataset(config)
    trainers = []
    for name, cfg in (("rouser", config), ("fixed", config.with_(lr_th=0.0))):
        folder = Path(out) / name if out else None
        previous = Path(resume) / name if resume else None
        trainers.append(Trainer(cfg, dataset, folder, previous, name=name))
    return trainers, interleave([t.events() for t in trainers])


def interleave(streams: list[Iterator[Event]]) -> Iterator[Event]:
    """Take one event from each stream in turn until all are exhausted."""
    live = list(streams)
    while live:
        for stream in list(live):
            try:
                yield next(stream)
            except StopIteration:
                live.remove(stream)
