"""The LIF neuron of the paper (eqs 1-5) as one fused scan over time with a hand-written backward.

Time indices exactly as written in the paper (states are zero before t = 0)::

    I[t] = a_i * I[t-1] + x[t-1]                      (eq 1, x[t] = sum_j w_ji S_j[t])
    V[t] = a_v * V[t-1] + I[t-1] - Th * S[t-1]        (eq 2, subtractive reset by Th)
    S[t] = 1 if V[t] >= Th else 0                     (eq 3)

The spike function's derivative is replaced by the surrogate of eqs 4-5::

    dS/dV = (s / tau) * exp(-|V - Th| / tau)          (eq 4)
    dS/dTh = -dS/dV                                   (eq 5)

Backward is full backpropagation through time of eqs 1-3 including the reset path
(dV[t]/dS[t-1] = -Th and dV[t]/dTh = -S[t-1]). Only the voltage is stored for backward;
spikes and surrogate values are recomputed from it. On the CPU a compiled kernel (``kernels.py``)
runs the same arithmetic; elsewhere, or where it cannot be built, a loop of PyTorch ops does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .kernels import cpu_kernel

__all__ = ["NeuronParams", "lif_scan", "surrogate"]


@dataclass(frozen=True)
class NeuronParams:
    """Hyperparameters of the LIF neuron and its surrogate (paper Table 2)."""

    current_decay: float = 0.75  # a_i = 1/tau_i in eq 1
    voltage_decay: float = 0.97  # a_v = 1/tau_v in eq 2
    surrogate_tau: float = 3.75  # tau, steepness of eq 4
    surrogate_scale: float = 1.5  # s, scale of eq 4

    def validate(self) -> None:
        """Raise ValueError naming the parameter and its allowed range."""
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not (0.0 < value <= 1.0):
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if not self.surrogate_tau > 0.0:
            raise ValueError(f"surrogate tau must be > 0, got {self.surrogate_tau}")
        if not self.surrogate_scale >= 0.0:
            raise ValueError(f"surrogate scale s must be >= 0, got {self.surrogate_scale}")


def surrogate(voltage: torch.Tensor, threshold: torch.Tensor, tau: float, scale: float) -> torch.Tensor:
    """dS/dV of eq 4: (s / tau) * exp(-|V - Th| / tau)."""
    return torch.exp(-(voltage - threshold).abs() / tau) * (scale / tau)


class _LIFScan(torch.autograd.Function):
    """Eqs 1-3 forward over all T steps; BPTT with the surrogate of eqs 4-5 backward."""

    @staticmethod
    def forward(ctx, x, threshold, current_decay, voltage_decay, tau, scale):
        kernel = cpu_kernel() if x.device.type == "cpu" else None
        if kernel is not None:
            voltage = kernel.lif_forward(x.contiguous(), threshold.expand(x.shape[2]).contiguous(), current_decay, voltage_decay)
            spikes = (voltage >= threshold).to(x.dtype)  # eq 3
        else:
            spikes, voltage = _forward_loop(x, threshold, current_decay, voltage_decay)
        ctx.save_for_backward(voltage, threshold)
        ctx.constants = (current_decay, voltage_decay, tau, scale)
        return spikes, voltage

    @staticmethod
    def backward(ctx, grad_spikes, grad_voltage):
        voltage, threshold = ctx.saved_tensors
        current_decay, voltage_decay, tau, scale = ctx.constants
        kernel = cpu_kernel() if voltage.device.type == "cpu" else None
        if kernel is not None:
            grad_x, per_row = kernel.lif_backward(
                voltage, threshold.expand(voltage.shape[2]).contiguous(),
                torch.zeros_like(voltage) if grad_spikes is None else grad_spikes.contiguous(),
                None if grad_voltage is None else grad_voltage.contiguous(),
                current_decay, voltage_decay, tau, scale)
            grad_threshold = per_row.view(voltage.shape[1], voltage.shape[2]).sum(0)
            return grad_x, grad_threshold.sum() if threshold.dim() == 0 else grad_threshold, None, None, None, None
        return _backward_loop(voltage, threshold, grad_spikes, grad_voltage, *ctx.constants)


def _forward_loop(x, threshold, current_decay, voltage_decay):
    """Eqs 1-3 step by step with PyTorch ops (GPUs, or CPUs without the compiled kernel)."""
    steps = x.shape[0]
    voltage = torch.empty_like(x)
    spikes = torch.empty_like(x)
    current = torch.zeros_like(x[0])  # I[t-1]
    v = torch.zeros_like(x[0])  # V[t-1]
    s = torch.zeros_like(x[0])  # S[t-1]
    for t in range(steps):
        if t > 0:
            # V[t] = a_v V[t-1] + I[t-1] - Th S[t-1]  (eq 2), then I[t] = a_i I[t-1] + x[t-1] (eq 1)
            v = (v * voltage_decay).add_(current).sub_(s * threshold)
            current = (current * current_decay).add_(x[t - 1])
        voltage[t] = v
        s = (v >= threshold).to(x.dtype)  # eq 3
        spikes[t] = s
    return spikes, voltage


def _backward_loop(voltage, threshold, grad_spikes, grad_voltage, current_decay, voltage_decay, tau, scale):
    """BPTT of eqs 1-3 with the surrogate of eqs 4-5, step by step with PyTorch ops."""
    steps = voltage.shape[0]
    if grad_spikes is None:
        grad_spikes = torch.zeros_like(voltage)
    dspike_dv = surrogate(voltage, threshold, tau, scale)  # eq 4
    # adjoints dL/dS[t], dL/dV[t], dL/dI[t]; index `steps` holds the zero state after the last step
    grad_s = torch.empty_like(voltage)
    grad_v = torch.empty((steps + 1,) + voltage.shape[1:], dtype=voltage.dtype, device=voltage.device)
    grad_i = torch.empty_like(grad_v)
    grad_v[steps] = 0
    grad_i[steps] = 0
    minus_threshold = -threshold
    for t in range(steps - 1, -1, -1):
        # S[t] feeds the output and V[t+1] through the reset term (factor -Th)
        torch.addcmul(grad_spikes[t], minus_threshold, grad_v[t + 1], out=grad_s[t])
        # I[t] feeds I[t+1] (factor a_i) and V[t+1] (factor 1)
        torch.add(grad_v[t + 1], grad_i[t + 1], alpha=current_decay, out=grad_i[t])
        # V[t] feeds the output, S[t] (surrogate) and V[t+1] (factor a_v)
        if grad_voltage is None:
            torch.mul(dspike_dv[t], grad_s[t], out=grad_v[t])
        else:
            torch.addcmul(grad_voltage[t], dspike_dv[t], grad_s[t], out=grad_v[t])
        grad_v[t].add_(grad_v[t + 1], alpha=voltage_decay)
    grad_x = grad_i[1:]  # x[t] feeds I[t+1] with factor 1
    # Th enters through S[t] (eq 5: dS/dTh = -dS/dV) and the reset term -Th S[t] of V[t+1]
    spikes = (voltage >= threshold).to(voltage.dtype)
    grad_threshold = -(dspike_dv * grad_s).sum(dim=(0, 1)) - (spikes * grad_v[1:]).sum(dim=(0, 1))
    if threshold.dim() == 0:
        grad_threshold = grad_threshold.sum()
    return grad_x, grad_threshold, None, None, None, None


def lif_scan(
    x: torch.Tensor,
    threshold: torch.Tensor | float,
    current_decay: float = 0.75,
    voltage_decay: float = 0.97,
    tau: float = 3.75,
    scale: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a layer of LIF neurons (eqs 1-3) over all time steps.

    Args:
        x: weighted input sum_j w_ji S_j[t], shape (T, batch, neurons).
        threshold: per-neuron firing threshold Th_i, shape (neurons,), or a scalar.
        current_decay: a_i of eq 1; voltage_decay: a_v of eq 2.
        tau, scale: steepness and scale s of the surrogate gradient (eqs 4-5).

    Returns:
        (spikes, voltage), both (T, batch, neurons); ``voltage[t]`` is V[t] as compared with Th.
        Differentiable in ``x`` and ``threshold`` through eqs 4-5.
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (T, batch, neurons), got {tuple(x.shape)}")
    if not torch.is_tensor(threshold):
        threshold = torch.tensor(float(threshold), dtype=x.dtype, device=x.device)
    if threshold.dim() == 1 and threshold.shape[0] != x.shape[2]:
        raise ValueError(f"threshold has {threshold.shape[0]} entries for {x.shape[2]} neurons")
    NeuronParams(current_decay, voltage_decay, tau, scale).validate()
    return _LIFScan.apply(x, threshold.to(x.dtype), float(current_decay), float(voltage_decay), float(tau), float(scale))
