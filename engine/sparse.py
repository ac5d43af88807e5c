"""Event-sparse synaptic input x[t] = sum_j w_ji S_j[t] (eq 1) for spike trains that are mostly zeros.

Spikes are held as a CSR matrix with one row per (t, sample) and one column per input neuron, so the
forward product and the weight gradient touch only the spikes. Input-layer spikes are built straight
from a batch's event indices and never densified; hidden layers switch to this path when their
measured spike density is below ``SPARSE_DENSITY`` (see ``rouser bench`` for the crossover).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .data.base import SpikeBatch

__all__ = ["SPARSE_DENSITY", "batch_to_csr", "dense_to_csr", "sparse_synaptic_input"]

# Below this fraction of ones, CSR (conversion included) beat dense matmul for the 500 x 500 hidden
# layer of the NMNIST network on 2 CPU cores (forward and weight gradient; measured at T*batch = 9600).
SPARSE_DENSITY = 0.03

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)


def batch_to_csr(batch: SpikeBatch, dtype=torch.float32) -> torch.Tensor:
    """The batch's input spikes as a (T * batch, channels) CSR matrix; row t * batch + b, built from indices.

    A batch's events come sorted by (sample, t, channel), so a stable sort on the row alone leaves the
    columns of every row sorted. On the CPU numpy's radix sort of small integers does it in a few ms.
    """
    num_rows = batch.time_steps * batch.batch_size
    rows = batch.times * batch.batch_size + batch.samples
    if rows.is_cuda:
        order = torch.argsort(rows, stable=True)
    else:
        small = np.int16 if num_rows <= np.iinfo(np.int16).max else np.int32
        order = torch.from_numpy(np.argsort(rows.numpy().astype(small), kind="stable"))
    rows, cols = rows[order], batch.channels[order]
    crow = torch.zeros(num_rows + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    values = torch.ones(rows.numel(), dtype=dtype, device=rows.device)
    return torch.sparse_csr_tensor(crow, cols, values, (num_rows, batch.num_channels), check_invariants=False)


def dense_to_csr(spikes: torch.Tensor) -> torch.Tensor:
    """(T, batch, neurons) spikes as a (T * batch, neurons) CSR matrix."""
    return spikes.detach().reshape(-1, spikes.shape[-1]).to_sparse_csr()


class _SparseSynapticInput(torch.autograd.Function):
    """x = S W^T with S sparse; grad W = (S^T grad_x)^T on the spikes only; grad S = grad_x W (dense)."""

    @staticmethod
    def forward(ctx, weight, spikes, csr):
        ctx.save_for_backward(weight)
        ctx.csr = csr
        ctx.spikes_need_grad = spikes is not None and spikes.requires_grad
        return torch.sparse.mm(csr, weight.t())

    @staticmethod
    def backward(ctx, grad_x):
        (weight,) = ctx.saved_tensors
        grad_weight = torch.sparse.mm(ctx.csr.t(), grad_x).t() if ctx.needs_input_grad[0] else None
        grad_spikes = grad_x @ weight if ctx.spikes_need_grad else None
        return grad_weight, grad_spikes, None


def sparse_synaptic_input(csr: torch.Tensor, weight: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
    """x (rows, out) = csr @ weight^T. Pass the dense ``spikes`` the CSR came from when they need a gradient."""
    flat = None if spikes is None else spikes.reshape(csr.shape)
    return _SparseSynapticInput.apply(weight, flat, csr)
