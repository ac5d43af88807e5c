"""Event-sparse synaptic input x[t] = sum_j w_ji S_j[t] (eq 1) for spike trains that are mostly zeros.

Spikes are held as a CSR matrix with one row per (t, sample) and one column per input neuron, so the
forward product and the weight gradient touch only the spikes. Input-layer spikes are built straight
from a batch's event indices and never densified; hidden layers switch to this path when their
measured spike density is below ``SPARSE_DENSITY`` (see ``rouser bench`` for the crossover).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .data.base import SpikeBatch

__all__ = ["SPARSE_DENSITY", "SpikeMatrix", "batch_to_csr", "dense_to_csr", "sparse_synaptic_input", "binary_synaptic_input"]

# Below this fraction of ones, CSR (conversion included) beat dense matmul for the 500 x 500 hidden
# layer of the NMNIST network on 2 CPU cores (forward and weight gradient; measured at T*batch = 9600).
SPARSE_DENSITY = 0.03



def _stable_order(keys: torch.Tensor, bound: int) -> torch.Tensor:
    """Stable argsort of small non-negative integers: numpy's radix sort on the CPU, torch on GPUs."""
    if keys.is_cuda:
        return torch.argsort(keys, stable=True)
    small = np.int16 if bound <= np.iinfo(np.int16).max else np.int32
    return torch.from_numpy(np.argsort(keys.numpy().astype(small), kind="stable"))


def _csr(major: torch.Tensor, minor: torch.Tensor, shape: tuple[int, int], dtype) -> torch.Tensor:
    """A CSR matrix of ones from (row, column) pairs already sorted by row, then column."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=major.device)
    crow[1:] = torch.cumsum(torch.bincount(major, minlength=shape[0]), 0)
    values = torch.ones(major.numel(), dtype=dtype, device=major.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the operations used here are tested
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, minor, values, shape, check_invariants=False)


@dataclass
class SpikeMatrix:
    """0/1 spikes as a (T * batch, neurons) CSR matrix and its transpose (for the weight gradient)."""

    csr: torch.Tensor
    csr_t: torch.Tensor

    @classmethod
    def from_pairs(cls, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int], dtype) -> "SpikeMatrix":
        """From (row, column) pairs sorted by row, then column; two stable sorts give both layouts."""
        by_col = _stable_order(cols, shape[1])
        return cls(_csr(rows, cols, shape, dtype), _csr(cols[by_col], rows[by_col], (shape[1], shape[0]), dtype))


def batch_to_csr(batch: SpikeBatch, dtype=torch.float32) -> SpikeMatrix:
    """The batch's input spikes as a (T * batch, channels) spike matrix, row t * batch + b, built from indices.

    A batch's events come sorted by (sample, t, channel), so a stable sort on the row alone leaves the
    columns of every row sorted.
    """
    num_rows = batch.time_steps * batch.batch_size
    rows = batch.times * batch.batch_size + batch.samples
    order = _stable_order(rows, num_rows)
    return SpikeMatrix.from_pairs(rows[order], batch.channels[order], (num_rows, batch.num_channels), dtype)


def dense_to_csr(spikes: torch.Tensor) -> SpikeMatrix:
    """(T, batch, neurons) 0/1 spikes as a (T * batch, neurons) spike matrix."""
    flat = spikes.detach().reshape(-1, spikes.shape[-1])
    rows, cols = torch.nonzero(flat, as_tuple=True)  # row-major: sorted by row, then column
    return SpikeMatrix.from_pairs(rows, cols, tuple(flat.shape), spikes.dtype)


class _SparseSynapticInput(torch.autograd.Function):
    """x = S W^T with S sparse; grad W = (S^T grad_x)^T on the spikes only; grad S = grad_x W (dense)."""

    @staticmethod
    def forward(ctx, weight, spikes, matrix):
        ctx.save_for_backward(weight)
        ctx.matrix = matrix
        ctx.spikes_need_grad = spikes is not None and spikes.requires_grad
        return torch.sparse.mm(matrix.csr, weight.t())

    @staticmethod
    def backward(ctx, grad_x):
        (weight,) = ctx.saved_tensors
        grad_weight = torch.sparse.mm(ctx.matrix.csr_t, grad_x).t() if ctx.needs_input_grad[0] else None
        grad_spikes = grad_x @ weight if ctx.spikes_need_grad else None
        return grad_weight, grad_spikes, None


def sparse_synaptic_input(matrix: SpikeMatrix, weight: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
    """x (rows, out) = S @ weight^T. Pass the dense ``spikes`` the matrix came from when they need a gradient."""
    flat = None if spikes is None else spikes.reshape(matrix.csr.shape)
    return _SparseSynapticInput.apply(weight, flat, matrix)


class _BinarySynapticInput(torch.autograd.Function):
    """x = S W^T for dense 0/1 spikes S, keeping S for the weight gradient as one byte per spike slot."""

    @staticmethod
    def forward(ctx, weight, spikes):
        ctx.save_for_backward(weight, spikes.to(torch.bool))
        return spikes @ weight.t()

    @staticmethod
    def backward(ctx, grad_x):
        weight, spikes = ctx.saved_tensors
        grad_weight = grad_x.t() @ spikes.to(grad_x.dtype) if ctx.needs_input_grad[0] else None
        grad_spikes = grad_x @ weight if ctx.needs_input_grad[1] else None
        return grad_weight, grad_spikes


def binary_synaptic_input(spikes: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (rows, out) = spikes @ weight^T for spikes that are exactly 0 or 1 (a quarter of the saved memory)."""
    return _BinarySynapticInput.apply(weight, spikes.reshape(-1, spikes.shape[-1]))
