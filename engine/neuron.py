"""The LIF neuron of the paper (eqs 1-5) as one fused scan over time with a hand-written backward.

Time indices exactly as written in the paper (states are zero before t = 0)::

    I[t] = a_i * I[t-1] + x[t-1]                      (eq 1, x[t] = sum_j w_ji S_j[t])
    V[t] = a_v * V[t-1] + I[t-1] - Th * S[t-1]        (eq 2, subtractive reset by Th)
    S[t] = 1 if V[t] >= Th else 0                     (eq 3)

The spike function's derivative is replaced by the surrogate of eqs 4-5::

    dS/dV = (s / tau) * exp(-|V - Th| / tau)          (eq 4)
    dS/dTh = -dS/dV                                   (eq 5)

Backward is full backpropagation through time of eqs 1-3 including the reset path
(dV[t]/dS[t-1] = -Th and dV[t]/dTh = -S[t-1]), or, with ``reset_grad="detach"``, with S[t-1] in the
reset term taken as a constant (see ``NeuronParams``). ``lif_scan`` stores only the voltage for backward;
spikes and surrogate values are recomputed from it (``fused_layer.py`` stores not even that: it reruns eqs 1-3
from the synaptic input). On the CPU a compiled kernel (``kernels.py``) runs the same arithmetic, on CUDA
a Triton kernel (``gpu_scan.py``); elsewhere, or where neither can run, a loop of PyTorch ops does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .gpu_scan import gpu_lif_backward, gpu_lif_forward, gpu_scan_available
from .kernels import cpu_kernel

__all__ = ["NeuronParams", "RESET_GRADS", "lif_scan", "reset_stability_warning", "scan_backward", "scan_forward",
           "surrogate"]


RESET_GRADS = ("full", "detach")  # how backward treats the reset term -Th S[t-1] of eq 2


@dataclass(frozen=True)
class NeuronParams:
    """Hyperparameters of the LIF neuron and its surrogate (paper Table 2), passed whole to ``lif_scan``.

    ``reset_grad``: ``"full"`` backpropagates through the reset term -Th S[t-1] of eq 2, as the equations
    read; ``"detach"`` takes S[t-1] there as a constant (as lava-dl's backward, snntorch's and spikingjelly's
    ``detach_reset`` do). Under ``detach`` the threshold keeps its own reset derivative dV[t]/dTh = -S[t-1]:
    it uses the true spike (no surrogate), is bounded, and does not feed the backward recursion, while a
    higher threshold really does remove more charge per spike. What ``detach`` drops is the loop
    V[t] -> S[t] -> V[t+1], whose factor a_v - Th * dS/dV grows the gradient geometrically over T once
    Th * s / tau > 1 + a_v (see ``reset_stability_warning``).
    """

    current_decay: float = 0.75  # a_i = 1/tau_i in eq 1
    voltage_decay: float = 0.97  # a_v = 1/tau_v in eq 2
    surrogate_tau: float = 3.75  # tau, steepness of eq 4
    surrogate_scale: float = 1.5  # s, scale of eq 4
    reset_grad: str = "full"  # "full" or "detach"

    def validate(self) -> "NeuronParams":
        """Raise ValueError naming the parameter and its allowed range."""
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not (0.0 < value <= 1.0):
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if not self.surrogate_tau > 0.0:
            raise ValueError(f"surrogate tau must be > 0, got {self.surrogate_tau}")
        if not self.surrogate_scale >= 0.0:
            raise ValueError(f"surrogate scale s must be >= 0, got {self.surrogate_scale}")
        if self.reset_grad not in RESET_GRADS:
            raise ValueError(f"reset_grad must be one of {', '.join(RESET_GRADS)}, got {self.reset_grad!r}")
        return self

    @property
    def max_stable_threshold(self) -> float:
        """The largest Th for which backward through the reset stays bounded: Th * s / tau < 1 + a_v."""
        return math.inf if self.surrogate_scale == 0 else (1.0 + self.voltage_decay) * self.surrogate_tau / self.surrogate_scale


def reset_stability_warning(threshold: float, params: NeuronParams) -> str | None:
    """A one-line warning when ``reset_grad="full"`` and Th * s / tau >= 1 + a_v, else None.

    Near threshold backward multiplies dL/dV[t+1] by a_v - Th * s / tau per step (reset path, eqs 2 and 4);
    past the bound its magnitude exceeds 1 and gradients grow geometrically over the T steps.
    """
    bound = params.max_stable_threshold
    if params.reset_grad != "full" or threshold < bound:
        return None
    return (f"Th {threshold:g} * s {params.surrogate_scale:g} / tau {params.surrogate_tau:g} >= 1 + a_v "
            f"({1 + params.voltage_decay:g}): gradients through the reset can grow without bound (stable for "
            f"Th < {bound:.3g}); lower s, raise tau, or use reset_grad detach")


def surrogate(voltage: torch.Tensor, threshold: torch.Tensor, tau: float, scale: float) -> torch.Tensor:
    """dS/dV of eq 4: (s / tau) * exp(-|V - Th| / tau)."""
    return torch.exp(-(voltage - threshold).abs() / tau) * (scale / tau)


def scan_forward(x: torch.Tensor, threshold: torch.Tensor, p: NeuronParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs 1-3 over all T steps: (spikes, voltage). Compiled kernel on the CPU, Triton on CUDA, else the loop."""
    kernel = cpu_kernel() if x.device.type == "cpu" else None
    if kernel is not None:
        return tuple(kernel.lif_forward(x.contiguous(), threshold.expand(x.shape[2]).contiguous(),
                                        p.current_decay, p.voltage_decay))
    if gpu_scan_available(x):
        return gpu_lif_forward(x, threshold, p)
    return _forward_loop(x, threshold, p.current_decay, p.voltage_decay)


def scan_backward(source: torch.Tensor, threshold: torch.Tensor, grad_spikes, grad_voltage, p: NeuronParams,
                  recompute: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """BPTT of eqs 1-3 with the surrogate of eqs 4-5: (grad_x, grad_threshold of shape (neurons,)).

    ``source`` is the stored voltage, or with ``recompute`` the synaptic input x, from which V is rerun
    first (the CPU kernel does so block by block, never holding all of V; the result is the same V).
    """
    kernel = cpu_kernel() if source.device.type == "cpu" else None
    if kernel is not None:
        grad_x, per_row = kernel.lif_backward(
            source.contiguous(), threshold.expand(source.shape[2]).contiguous(),
            torch.zeros_like(source) if grad_spikes is None else grad_spikes.contiguous(),
            None if grad_voltage is None else grad_voltage.contiguous(),
            p.current_decay, p.voltage_decay, p.surrogate_tau, p.surrogate_scale, p.reset_grad == "detach", recompute)
        return grad_x, per_row.view(source.shape[1], source.shape[2]).sum(0)
    voltage = scan_forward(source, threshold, p)[1] if recompute else source
    if gpu_scan_available(voltage):
        return gpu_lif_backward(voltage, threshold, grad_spikes, grad_voltage, p)
    return _backward_loop(voltage, threshold, grad_spikes, grad_voltage, p)


class _LIFScan(torch.autograd.Function):
    """Eqs 1-3 forward over all T steps; BPTT with the surrogate of eqs 4-5 backward (V stored, it is returned)."""

    @staticmethod
    def forward(ctx, x, threshold, p: NeuronParams):
        spikes, voltage = scan_forward(x, threshold, p)
        ctx.save_for_backward(voltage, threshold)
        ctx.params = p
        return spikes, voltage

    @staticmethod
    def backward(ctx, grad_spikes, grad_voltage):
        voltage, threshold = ctx.saved_tensors
        grad_x, grad_threshold = scan_backward(voltage, threshold, grad_spikes, grad_voltage, ctx.params)
        return grad_x, grad_threshold.sum() if threshold.dim() == 0 else grad_threshold, None


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


def _backward_loop(voltage, threshold, grad_spikes, grad_voltage, p: NeuronParams):
    """BPTT of eqs 1-3 with the surrogate of eqs 4-5, step by step with PyTorch ops: (grad_x, grad_threshold)."""
    steps = voltage.shape[0]
    current_decay, voltage_decay = p.current_decay, p.voltage_decay
    if grad_spikes is None:
        grad_spikes = torch.zeros_like(voltage)
    dspike_dv = surrogate(voltage, threshold, p.surrogate_tau, p.surrogate_scale)  # eq 4
    # adjoints dL/dS[t], dL/dV[t], dL/dI[t]; index `steps` holds the zero state after the last step
    grad_s = torch.empty_like(voltage)
    grad_v = torch.empty((steps + 1,) + voltage.shape[1:], dtype=voltage.dtype, device=voltage.device)
    grad_i = torch.empty_like(grad_v)
    grad_v[steps] = 0
    grad_i[steps] = 0
    # S[t] feeds V[t+1] through the reset term (factor -Th), unless that term is detached
    minus_threshold = torch.zeros_like(threshold) if p.reset_grad == "detach" else -threshold
    for t in range(steps - 1, -1, -1):
        # S[t] feeds the output and V[t+1] through the reset term
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
    return grad_x, grad_threshold


def lif_scan(x: torch.Tensor, threshold: torch.Tensor | float,
             params: NeuronParams = NeuronParams()) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a layer of LIF neurons (eqs 1-3) over all time steps.

    Args:
        x: weighted input sum_j w_ji S_j[t], shape (T, batch, neurons).
        threshold: per-neuron firing threshold Th_i, shape (neurons,), or a scalar.
        params: decays a_i, a_v (eqs 1-2), surrogate tau and s (eqs 4-5) and the reset gradient.

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
    return _LIFScan.apply(x, threshold.to(x.dtype), params.validate())
