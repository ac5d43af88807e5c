"""Per-layer activity metrics of the paper: active and dead neurons, spike rates, thresholds, weight change."""

from __future__ import annotations

import torch

from .records import LayerRaster, LayerStats, ThresholdStats

__all__ = ["EpochActivity", "batch_activity", "layer_metrics", "threshold_sample_indices", "threshold_stats",
           "probe_raster"]


def threshold_sample_indices(neurons: int, count: int = 8) -> list[int]:
    """Evenly spaced neuron indices whose thresholds are tracked individually (Figs. 7-8)."""
    count = min(count, neurons)
    return sorted({round(k * (neurons - 1) / max(1, count - 1)) for k in range(count)})


def threshold_stats(thresholds: list[torch.Tensor]) -> tuple[ThresholdStats, ...]:
    """Mean, min and max of each layer's thresholds."""
    return tuple(ThresholdStats(mean=t.mean().item(), min=t.min().item(), max=t.max().item()) for t in thresholds)


def batch_activity(spikes: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer: which neurons spiked at least once on the batch, and the layer's spike count."""
    with torch.no_grad():
        return [s.amax(dim=(0, 1)) > 0 for s in spikes], [s.sum() for s in spikes]


class EpochActivity:
    """Which neurons of each layer have spiked so far in the epoch; the rest are dead (paper Table 3)."""

    def __init__(self, sizes: list[int], device=None):
        self.fired = [torch.zeros(n, dtype=torch.bool, device=device) for n in sizes]

    def update(self, batch_fired: list[torch.Tensor]) -> None:
        """Record which neurons of each layer spiked on a batch."""
        for seen, now in zip(self.fired, batch_fired):
            seen |= now

    def dead_percent(self) -> list[float]:
        return [100.0 * (1.0 - f.float().mean().item()) for f in self.fired]


def layer_metrics(batch_fired: list[torch.Tensor], spike_percent: list[float], activity: EpochActivity,
                  thresholds: list[torch.Tensor], weights: list[torch.Tensor], initial_weights: list[torch.Tensor],
                  sample_indices: list[list[int]], probe_spikes: list[torch.Tensor] | None) -> list[LayerStats]:
    """One `LayerStats` per layer with the metrics every batch logs.

    active_fraction: neurons with >= 1 spike on the batch (Fig. 10); probe_active_fraction: the same on the
    fixed probe sample; dead_percent: no spike so far in the epoch (Table 3); spike_percent: spikes as % of
    the maximum T x batch x neurons (Fig. 9); threshold mean/min/max and a fixed sample (Figs. 7-8);
    weight_change: ||W - W0|| / ||W0|| (Fig. 6).
    """
    dead = activity.dead_percent()
    rows = []
    with torch.no_grad():
        for k, (fired, th, w, w0, idx) in enumerate(zip(batch_fired, thresholds, weights, initial_weights, sample_indices)):
            stats = torch.stack([
                fired.float().mean(), th.mean(), th.min(), th.max(),
                torch.linalg.vector_norm(w - w0) / torch.linalg.vector_norm(w0).clamp_min(1e-12),
            ]).tolist()
            probe = None if probe_spikes is None else (probe_spikes[k].amax(dim=(0, 1)) > 0).float().mean().item()
            rows.append(LayerStats(active_fraction=stats[0], probe_active_fraction=probe, dead_percent=dead[k],
                                   spike_percent=spike_percent[k], threshold_mean=stats[1], threshold_min=stats[2],
                                   threshold_max=stats[3], threshold_sample=tuple(th[idx].tolist()),
                                   weight_change=stats[4]))
    return rows


def probe_raster(probe_spikes: list[torch.Tensor]) -> tuple[LayerRaster, ...]:
    """Spike raster of the probe sample per layer as (time step, neuron index) pairs."""
    rows = []
    for s in probe_spikes:
        t, n = torch.nonzero(s[:, 0], as_tuple=True)
        rows.append(LayerRaster(t=tuple(t.tolist()), neuron=tuple(n.tolist())))
    return tuple(rows)
