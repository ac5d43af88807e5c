"""Binned spike data, stored sparsely: the one format every dataset is turned into.

A sample is a set of (time step, channel) pairs where the input spikes S_j^0[t] = 1.
Many samples are kept as flat index arrays with offsets, never as dense T x channels arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["SpikeBatch", "SpikeSplit", "SpikeDataset", "unique_spikes"]


def unique_spikes(sample: np.ndarray, times: np.ndarray, channels: np.ndarray, num_channels: int, time_steps: int):
    """Drop duplicate (sample, t, channel) triples (a bin holds at most one spike); sort by sample, t, channel."""
    key = (sample.astype(np.int64) * time_steps + times.astype(np.int64)) * num_channels + channels.astype(np.int64)
    key = np.sort(key)  # sort + neighbour test: much faster than np.unique's hashing on millions of keys
    if len(key) > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    channels = key % num_channels
    rest = key // num_channels
    return rest // time_steps, rest % time_steps, channels


@dataclass
class SpikeBatch:
    """A batch in sparse form: spike k is at (times[k], samples[k], channels[k])."""

    times: torch.Tensor
    samples: torch.Tensor
    channels: torch.Tensor
    labels: torch.Tensor
    time_steps: int
    num_channels: int

    @property
    def batch_size(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device) -> "SpikeBatch":
        move = lambda a: a.to(device, non_blocking=True)  # noqa: E731
        return SpikeBatch(move(self.times), move(self.samples), move(self.channels), move(self.labels), self.time_steps, self.num_channels)

    def dense(self, dtype=torch.float32, out: torch.Tensor | None = None) -> torch.Tensor:
        """The input spikes as a dense (T, batch, channels) tensor of zeros and ones.

        ``out``: a tensor of that shape and dtype to reuse (it is zeroed and filled), which saves
        allocating fresh pages for every batch; the caller must be done with its old content.
        """
        shape = (self.time_steps, self.batch_size, self.num_channels)
        if out is not None and tuple(out.shape) == shape and out.dtype == dtype and out.device == self.labels.device:
            out.zero_()
        else:
            out = torch.zeros(shape, dtype=dtype, device=self.labels.device)
        out[self.times, self.samples, self.channels] = 1
        return out


@dataclass
class SpikeSplit:
    """Binned spikes of many samples: sample k owns entries offsets[k]:offsets[k+1] of times/channels."""

    times: np.ndarray
    channels: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    time_steps: int
    num_channels: int

    def __post_init__(self):
        self.times = np.asarray(self.times, dtype=np.int32)
        self.channels = np.asarray(self.channels, dtype=np.int32)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.offsets) != len(self.labels) + 1:
            raise ValueError("offsets must have one entry more than labels")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_samples(cls, samples, labels, time_steps: int, num_channels: int) -> "SpikeSplit":
        """Build from a list of (times, channels) arrays, one pair per sample (duplicates are merged)."""
        counts = [len(t) for t, _ in samples]
        sample = np.repeat(np.arange(len(samples)), counts)
        times = np.concatenate([np.asarray(t) for t, _ in samples]) if samples else np.zeros(0, np.int64)
        channels = np.concatenate([np.asarray(c) for _, c in samples]) if samples else np.zeros(0, np.int64)
        keep = (times >= 0) & (times < time_steps) & (channels >= 0) & (channels < num_channels)
        sample, times, channels = unique_spikes(sample[keep], times[keep], channels[keep], num_channels, time_steps)
        offsets = np.searchsorted(sample, np.arange(len(samples) + 1))
        return cls(times, channels, offsets, np.asarray(labels), time_steps, num_channels)

    @classmethod
    def concatenate(cls, splits: list["SpikeSplit"]) -> "SpikeSplit":
        """One split holding the samples of ``splits`` in order (all on the same grid)."""
        first = splits[0]
        starts = np.cumsum([0] + [len(s.times) for s in splits[:-1]])
        offsets = np.concatenate([[0]] + [s.offsets[1:] + start for s, start in zip(splits, starts)])
        return cls(np.concatenate([s.times for s in splits]), np.concatenate([s.channels for s in splits]), offsets,
                   np.concatenate([s.labels for s in splits]), first.time_steps, first.num_channels)

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, channels) of sample k."""
        lo, hi = self.offsets[k], self.offsets[k + 1]
        return self.times[lo:hi], self.channels[lo:hi]

    def subset(self, indices) -> "SpikeSplit":
        """A new split holding the given samples, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        pairs = [self.sample(int(k)) for k in indices]
        return SpikeSplit.from_samples(pairs, self.labels[indices], self.time_steps, self.num_channels)

    def batch(self, indices) -> SpikeBatch:
        """Gather samples into one sparse batch (CPU tensors)."""
        indices = np.asarray(indices, dtype=np.int64)
        lo, hi = self.offsets[indices], self.offsets[indices + 1]
        counts = hi - lo
        pos = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        samples = np.repeat(np.arange(len(indices)), counts)
        return SpikeBatch(
            torch.from_numpy(self.times[pos].astype(np.int64)),
            torch.from_numpy(samples),
            torch.from_numpy(self.channels[pos].astype(np.int64)),
            torch.from_numpy(self.labels[indices]),
            self.time_steps,
            self.num_channels,
        )

    def rebin(self, time_steps: int) -> "SpikeSplit":
        """The same window on a coarser or finer grid of ``time_steps`` bins (t_new = t * T_new // T)."""
        if time_steps == self.time_steps:
            return self
        sample = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        times = self.times.astype(np.int64) * time_steps // self.time_steps
        sample, times, channels = unique_spikes(sample, times, self.channels, self.num_channels, time_steps)
        offsets = np.searchsorted(sample, np.arange(len(self) + 1))
        return SpikeSplit(times, channels, offsets, self.labels, time_steps, self.num_channels)

    def density(self) -> float:
        """Fraction of (t, channel) bins holding a spike, over all samples."""
        return len(self.times) / max(1, len(self) * self.time_steps * self.num_channels)

    def save(self, path: Path) -> None:
        np.savez(path, times=self.times, channels=self.channels, offsets=self.offsets, labels=self.labels,
                 time_steps=self.time_steps, num_channels=self.num_channels)

    @classmethod
    def load(cls, path: Path) -> "SpikeSplit":
        with np.load(path) as f:
            return cls(f["times"], f["channels"], f["offsets"], f["labels"], int(f["time_steps"]), int(f["num_channels"]))


@dataclass
class SpikeDataset:
    """A dataset ready for training: train and test splits on the same grid."""

    name: str
    train: SpikeSplit
    test: SpikeSplit
    num_classes: int
    input_shape: tuple[int, ...]
    bin_ms: float | None = None
    class_names: list[str] = field(default_factory=list)

    @property
    def num_channels(self) -> int:
        return self.train.num_channels

    @property
    def time_steps(self) -> int:
        return self.train.time_steps

    def rebin(self, time_steps: int) -> "SpikeDataset":
        """Both splits on a grid of ``time_steps`` bins over the same window."""
        if time_steps == self.time_steps:
            return self
        bin_ms = None if self.bin_ms is None else self.bin_ms * self.time_steps / time_steps
        return SpikeDataset(self.name, self.train.rebin(time_steps), self.test.rebin(time_steps), self.num_classes,
                            self.input_shape, bin_ms, self.class_names)
