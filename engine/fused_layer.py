"""A layer of LIF neurons fed by 0/1 spikes: eq 1's synaptic input and the scan of eqs 1-3 as one autograd step.

Backward keeps only the layer's input spikes (``sparse.py``: CSR indices or bits), the weights and the
thresholds. It recomputes x[t] = sum_j w_ji S_j[t] from the spikes (a gather-add when they are sparse) and V
from x (block by block inside the CPU kernel), then runs BPTT with the surrogate of eqs 4-5. The rerun is
the same arithmetic as forward, so V and the gradients equal those of storing everything. With CSR spikes on
the CPU the scan kernels sum x[t-1] at the step that uses it (``spike_scan.cpp``), so x is never stored.
"""

from __future__ import annotations

import torch

from .kernels import cpu_kernel
from .neuron import NeuronParams, scan_backward, scan_forward
from .sparse import SpikeBits, SpikeMatrix, linear

__all__ = ["lif_layer"]


class _LIFLayer(torch.autograd.Function):
    """Forward: x = S W^T, then eqs 1-3. Backward: x and V recomputed, BPTT, dL/dW from the spike store, dL/dS_in =
    dL/dx W (dense)."""

    @staticmethod
    def forward(ctx, weight, threshold, spikes, store, steps: int, params: NeuronParams):
        kernel = _spike_kernel(store)
        if kernel is not None:  # x summed at the step that uses it, never stored
            out, voltage = kernel.lif_forward_spikes(
                store.ptr, store.idx, weight.t().contiguous(), threshold.expand(weight.shape[0]).contiguous(), steps,
                store.shape[0] // steps, params.current_decay, params.voltage_decay)
        else:
            x = store.product(weight, spikes).view(steps, -1, weight.shape[0])
            out, voltage = scan_forward(x, threshold, params)
            del x
        ctx.save_for_backward(weight, threshold, *store.tensors())
        ctx.rebuild, ctx.steps, ctx.params = store.rebuild, steps, params
        ctx.spikes_shape = None if spikes is None else spikes.shape
        return out, voltage

    @staticmethod
    def backward(ctx, grad_spikes, grad_voltage):
        weight, threshold, *saved = ctx.saved_tensors
        store = ctx.rebuild(saved).for_backward()
        want_w, want_in = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        kernel = _spike_kernel(store)
        if kernel is not None:
            grad_x, grad_threshold, grad_weight = _spike_backward(kernel, store, weight, threshold, grad_spikes,
                                                                  grad_voltage, ctx.steps, ctx.params, want_in, want_w)
        else:
            x = store.product(weight).view(ctx.steps, -1, weight.shape[0])  # eq 1 again
            grad_x, grad_threshold = scan_backward(x, threshold, grad_spikes, grad_voltage, ctx.params, recompute=True)
            del x
            grad_weight = store.weight_grad(grad_x.view(-1, weight.shape[0])) if want_w else None
        grad_spikes_in = None
        if want_in:
            grad_spikes_in = linear(grad_x.view(-1, weight.shape[0]), weight.t()).view(ctx.spikes_shape)
        if threshold.dim() == 0:
            grad_threshold = grad_threshold.sum()
        return grad_weight, grad_threshold, grad_spikes_in, None, None, None


def _spike_kernel(store):
    """The compiled kernels when the store is CSR on the CPU (the scan then reads the spikes directly)."""
    return cpu_kernel() if isinstance(store, SpikeMatrix) and store.ptr.device.type == "cpu" else None


def _spike_backward(kernel, store, weight, threshold, grad_spikes, grad_voltage, steps, p: NeuronParams, want_x, want_w):
    """(dL/dx or None, dL/dTh, dL/dW or None) from the CSR spikes, x and V rerun inside the kernel; dL/dW is summed
    there while dL/dx is in cache, and dL/dx is kept only when the layer below needs it."""
    n, batch = weight.shape[0], store.shape[0] // steps
    grad_x, per_row, grad_wt = kernel.lif_backward_spikes(
        store.ptr, store.idx, weight.t().contiguous(), threshold.expand(n).contiguous(),
        torch.zeros(steps, batch, n, dtype=weight.dtype) if grad_spikes is None else grad_spikes.contiguous(),
        None if grad_voltage is None else grad_voltage.contiguous(), steps, batch, p.current_decay, p.voltage_decay,
        p.surrogate_tau, p.surrogate_scale, p.reset_grad == "detach", want_x, want_w)
    return grad_x if want_x else None, per_row.view(batch, n).sum(0), grad_wt.t() if want_w else None


def lif_layer(store: SpikeMatrix | SpikeBits, weight: torch.Tensor, threshold: torch.Tensor, params: NeuronParams,
              steps: int, spikes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and voltage (T, batch, out) of LIF neurons (eqs 1-3) driven through ``weight`` by the stored spikes.

    ``store`` holds the input spikes as a (T * batch, in) matrix; pass the dense ``spikes`` it came from when
    they need a gradient (hidden layers). Differentiable in ``weight``, ``threshold`` and ``spikes``.
    """
    return _LIFLayer.apply(weight, threshold.to(weight.dtype), spikes, store, steps, params.validate())
