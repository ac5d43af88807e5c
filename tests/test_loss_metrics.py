"""The van Rossum loss (eq 6), targets, prediction and the per-layer metrics, against literal computations."""

import pytest
import torch

from engine.loss import fir_kernel, predict, target_spikes, van_rossum_loss
from engine.metrics import EpochActivity, batch_activity, layer_metrics, probe_raster, threshold_sample_indices
from engine.records import LayerRaster


def test_kernel_is_a_normalised_second_order_kernel():
    h = fir_kernel(tau=4.0, dtype=torch.float64)
    assert h.numel() == 24
    assert torch.isclose(h.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert int(h.argmax()) == 3  # the alpha kernel (k/tau) exp(-k/tau) peaks at k = tau
    with pytest.raises(ValueError, match="tau"):
        fir_kernel(tau=0)


def test_van_rossum_matches_literal_eq6():
    g = torch.Generator().manual_seed(0)
    s = (torch.rand(30, 3, 4, generator=g) < 0.3).double()
    target = (torch.rand(30, 3, 4, generator=g) < 0.5).double()
    h = fir_kernel(3.0, dtype=torch.float64)
    expected = 0.0
    for b in range(3):
        for n in range(4):
            e = s[:, b, n] - target[:, b, n]
            for t in range(30):
                filtered = sum(h[k] * e[t - k] for k in range(len(h)) if t - k >= 0)
                expected += 0.5 * float(filtered) ** 2
    assert van_rossum_loss(s, target, h).item() == pytest.approx(expected / 3, rel=1e-12)
    assert van_rossum_loss(target, target, h).item() == 0.0


def test_targets_and_prediction():
    labels = torch.tensor([2, 0])
    target = target_spikes(labels, 3, 10, true_rate=0.5, false_rate=0.0)
    assert target.shape == (10, 2, 3)
    assert target[:, 0, 2].sum() == 5 and target[:, 0, :2].sum() == 0
    assert target[:, 1, 0].tolist() == [0, 1] * 5
    assert target_spikes(labels, 3, 300, true_rate=0.6, false_rate=0.1)[:, 0].sum(0).tolist() == [30, 30, 180]
    spikes = torch.zeros(5, 2, 3)
    spikes[:3, 0, 1] = 1
    spikes[:, 1, 2] = 1
    assert predict(spikes).tolist() == [1, 2]
    with pytest.raises(ValueError, match="true_rate"):
        target_spikes(labels, 3, 10, true_rate=1.5)


def test_layer_metrics_by_hand():
    spikes = torch.zeros(4, 2, 5)
    spikes[0, 0, 0] = 1
    spikes[1, 1, 0] = 1
    spikes[3, 1, 3] = 1
    activity = EpochActivity([5])
    fired, counts = batch_activity([spikes])
    assert counts[0].item() == 3
    activity.update(fired)
    later = torch.zeros(4, 2, 5)
    later[2, 0, 4] = 1
    activity.update(batch_activity([later])[0])
    th = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    w0 = torch.ones(5, 3)
    w = w0 * 2
    row = layer_metrics(fired, [100 * 3 / 40], activity, [th], [w], [w0], [[0, 4]], [spikes[:, :1]])[0]
    assert row.active_fraction == pytest.approx(2 / 5)  # neurons 0 and 3 spiked on the batch
    assert row.dead_percent == pytest.approx(40.0)  # 0, 3, 4 spiked in the epoch so far
    assert row.spike_percent == pytest.approx(100 * 3 / 40)
    assert (row.threshold_mean, row.threshold_min, row.threshold_max) == (3.0, 1.0, 5.0)
    assert row.threshold_sample == (1.0, 5.0)
    assert row.weight_change == pytest.approx(1.0)
    assert row.probe_active_fraction == pytest.approx(1 / 5)
    assert probe_raster([spikes])[0] == LayerRaster(t=(0,), neuron=(0,))


def test_threshold_sample_indices():
    assert threshold_sample_indices(500, 8)[0] == 0 and threshold_sample_indices(500, 8)[-1] == 499
    assert threshold_sample_indices(3, 8) == [0, 1, 2]
