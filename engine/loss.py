"""The van Rossum loss of eq 6, its target spike trains, and the prediction rule."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["fir_kernel", "van_rossum_loss", "target_spikes", "predict"]


def fir_kernel(tau: float = 5.0, length: int | None = None, dtype=torch.float32, device=None) -> torch.Tensor:
    """The filter H of eq 6: a second-order (alpha) kernel h[k] ∝ (k+1)/tau * exp(-(k+1)/tau), truncated to FIR.

    The alpha kernel is the impulse response of two identical first-order low-pass stages in
    series, a second-order filter; it is cut after ``length`` taps (default ceil(6 tau)) and
    normalised to unit sum, so H * S is a smoothed firing rate in spikes per step.
    """
    if tau <= 0:
        raise ValueError(f"loss kernel tau must be > 0, got {tau}")
    length = length or max(2, math.ceil(6 * tau))
    k = torch.arange(1, length + 1, dtype=torch.float64)
    h = k / tau * torch.exp(-k / tau)
    return (h / h.sum()).to(dtype=dtype, device=device)


def _filter(signal: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Causal convolution over time: (H * e)[t] = sum_k h[k] e[t - k], signal (T, batch, neurons)."""
    steps, batch, neurons = signal.shape
    x = signal.permute(1, 2, 0).reshape(batch * neurons, 1, steps)
    x = F.conv1d(F.pad(x, (kernel.numel() - 1, 0)), kernel.flip(0).view(1, 1, -1))
    return x.view(batch, neurons, steps).permute(2, 0, 1)


def van_rossum_loss(spikes: torch.Tensor, target: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Eq 6: L = 1/2 sum_t (H * (S[t] - Ŝ[t]))^2, summed over output neurons, averaged over the batch."""
    error = _filter(spikes - target, kernel)
    return 0.5 * error.pow(2).sum() / spikes.shape[1]


def target_spikes(labels: torch.Tensor, num_classes: int, time_steps: int, true_rate: float = 0.5,
                  false_rate: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    """Target trains Ŝ (T, batch, classes): the labelled neuron spikes on ``true_rate`` of the steps, evenly
    spaced (at least half by default, as in the paper), the others on ``false_rate`` (silent by default)."""
    for name, rate in (("true_rate", true_rate), ("false_rate", false_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {rate}")
    t = torch.arange(time_steps, dtype=torch.float64, device=labels.device)

    def regular(rate: float) -> torch.Tensor:  # a spike where floor((t+1) r) steps up
        return (torch.floor((t + 1) * rate) > torch.floor(t * rate)).to(dtype)

    onehot = F.one_hot(labels, num_classes).to(dtype)  # (batch, classes)
    return regular(true_rate)[:, None, None] * onehot + regular(false_rate)[:, None, None] * (1 - onehot)


def predict(output_spikes: torch.Tensor) -> torch.Tensor:
    """The predicted class: the output neuron with most spikes (ties to the lowest index)."""
    return output_spikes.sum(0).argmax(-1)
