"""Binary spikes kept for eq 1's synaptic input x[t] = sum_j w_ji S_j[t] and its gradients.

Spikes form a (T * batch, neurons) 0/1 matrix S, row t * batch + b. Two stores hold it:
``SpikeMatrix`` (CSR indices: a spike selects a row of W^T to add, so the forward product and the weight
gradient touch only the spikes; on the CPU a compiled gather-add kernel does it) and ``SpikeBits`` (packed
8 to a byte; dense products). ``spike_store`` picks per layer and batch from the measured spike density:
CSR below ``SPARSE_DENSITY``, else dense. Input-layer spikes come straight from a batch's event indices and
are never densified. The input gradient dL/dS = dL/dx W is dense either way (dL/dx is dense).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .data.base import SpikeBatch
from .kernels import cpu_kernel

__all__ = ["SPARSE_DENSITY", "SpikeBits", "SpikeMatrix", "batch_to_csr", "dense_to_csr", "linear", "spike_store",
           "synaptic_input"]

# Below this fraction of ones the CSR path (the scan kernels summing x from the spikes, forward and backward,
# and the gather-add weight gradient) beat the dense products for a 500 x 500 hidden layer with T * batch =
# 9600 on this project's 2-core CPU (one layer's forward and backward, CPU time: equal near 0.25; at 0.03
# the CSR path took half the time). Hidden layers of the NMNIST network start near 0.03 and pass 0.15
# within a few Adam steps.
SPARSE_DENSITY = 0.25


def linear(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """a @ weight^T. float32 on the CPU goes to oneDNN (exact float32, several times faster than BLAS here)."""
    if a.dtype == torch.float32 and a.device.type == "cpu" and torch.backends.mkldnn.is_available():
        try:
            return torch.ops.mkldnn._linear_pointwise(a.contiguous(), weight.contiguous(), None, "none", [], "")
        except (RuntimeError, AttributeError):
            pass
    return a @ weight.t()


def _stable_order(keys: torch.Tensor, bound: int) -> torch.Tensor:
    """Stable argsort of small non-negative integers: numpy's radix sort on the CPU, torch on GPUs."""
    if keys.is_cuda:
        return torch.argsort(keys, stable=True)
    small = np.int16 if bound <= np.iinfo(np.int16).max else np.int32
    return torch.from_numpy(np.argsort(keys.numpy().astype(small), kind="stable"))


@dataclass
class SpikeMatrix:
    """0/1 spikes as CSR indices: row r's spikes are in columns idx[ptr[r]:ptr[r+1]] (ascending)."""

    ptr: torch.Tensor  # int64, rows + 1
    idx: torch.Tensor  # int32, one per spike
    shape: tuple[int, int]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.ptr, self.idx

    def rebuild(self, tensors) -> "SpikeMatrix":
        return SpikeMatrix(*tensors, self.shape)

    def for_backward(self) -> "SpikeMatrix":
        return self

    def transpose(self) -> "SpikeMatrix":
        """S^T as CSR (rows ascending in each column), for the products without the kernel."""
        rows = torch.repeat_interleave(torch.arange(self.shape[0], device=self.ptr.device), self.ptr.diff())
        order = torch.argsort(self.idx, stable=True)
        ptr = torch.zeros(self.shape[1] + 1, dtype=torch.int64, device=self.ptr.device)
        ptr[1:] = torch.cumsum(torch.bincount(self.idx.long(), minlength=self.shape[1]), 0)
        return SpikeMatrix(ptr, rows[order].to(torch.int32), (self.shape[1], self.shape[0]))

    def times(self, table: torch.Tensor) -> torch.Tensor:
        """S @ table for a dense (columns, width) table."""
        kernel = _kernel_for(self.ptr)
        if kernel is not None:
            return kernel.spike_product(self.ptr, self.idx, table.contiguous())
        values = torch.ones(self.idx.numel(), dtype=table.dtype, device=table.device)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the operations used here are tested
            warnings.simplefilter("ignore", UserWarning)
            csr = torch.sparse_csr_tensor(self.ptr, self.idx.long(), values, self.shape, check_invariants=False)
            return torch.sparse.mm(csr, table)

    def product(self, weight: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
        """x = S W^T (eq 1), (rows, out): each spike adds a row of W^T."""
        return self.times(weight.t())

    def weight_grad(self, grad_x: torch.Tensor) -> torch.Tensor:
        """dL/dW = (S^T dL/dx)^T, (out, in): each spike adds a row of dL/dx."""
        kernel = _kernel_for(self.ptr)
        if kernel is not None:
            return kernel.spike_weight_grad(self.ptr, self.idx, grad_x.contiguous(), self.shape[1]).t()
        return self.transpose().times(grad_x).t()

    @property
    def nbytes(self) -> int:
        return self.ptr.nbytes + self.idx.nbytes


@dataclass
class SpikeBits:
    """0/1 spikes packed 8 to a byte along the neurons (the dense path's store; one bit per neuron-step)."""

    bits: torch.Tensor  # uint8, (rows, ceil(columns / 8))
    shape: tuple[int, int]
    dtype: torch.dtype

    @classmethod
    def pack(cls, spikes: torch.Tensor) -> "SpikeBits":
        rows, cols = spikes.shape
        padded = torch.zeros(rows, -(-cols // 8) * 8, dtype=torch.uint8, device=spikes.device)
        padded[:, :cols] = spikes != 0
        lanes = padded.view(rows, -1, 8)
        bits = lanes[..., 0].clone()
        for k in range(1, 8):
            bits |= lanes[..., k] << k
        return cls(bits, (rows, cols), spikes.dtype)

    def unpack(self) -> torch.Tensor:
        shifts = torch.arange(8, dtype=torch.uint8, device=self.bits.device)
        lanes = (self.bits.unsqueeze(-1) >> shifts) & 1
        return lanes.view(self.shape[0], -1)[:, :self.shape[1]].to(self.dtype)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.bits,)

    def rebuild(self, tensors) -> "SpikeBits":
        return SpikeBits(tensors[0], self.shape, self.dtype)

    def for_backward(self) -> "DenseSpikes":
        return DenseSpikes(self.unpack())

    def product(self, weight: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
        return linear(self.unpack() if spikes is None else spikes.reshape(self.shape), weight)

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes


@dataclass
class DenseSpikes:
    """Spikes unpacked to a float (rows, columns) matrix, for the products of one backward pass."""

    spikes: torch.Tensor

    def product(self, weight: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
        return linear(self.spikes, weight)

    def weight_grad(self, grad_x: torch.Tensor) -> torch.Tensor:
        return linear(grad_x.t().contiguous(), self.spikes.t().contiguous())


def _kernel_for(t: torch.Tensor):
    return cpu_kernel() if t.device.type == "cpu" else None


def batch_to_csr(batch: SpikeBatch) -> SpikeMatrix:
    """The batch's input spikes as a (T * batch, channels) CSR matrix, row t * batch + b, built from indices.

    A batch's events come sorted by (sample, t, channel), so a stable sort on the row alone leaves the
    columns of every row sorted.
    """
    num_rows = batch.time_steps * batch.batch_size
    rows = batch.times.long() * batch.batch_size + batch.samples.long()
    shape = (num_rows, batch.num_channels)
    kernel = _kernel_for(rows)
    if kernel is not None:
        return SpikeMatrix(*kernel.pairs_to_csr(rows, batch.channels.long(), num_rows), shape)
    order = _stable_order(rows, num_rows)
    ptr = torch.zeros(num_rows + 1, dtype=torch.int64, device=rows.device)
    ptr[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    return SpikeMatrix(ptr, batch.channels[order].to(torch.int32), shape)


def dense_to_csr(spikes: torch.Tensor) -> SpikeMatrix:
    """(..., neurons) 0/1 spikes as a (rows, neurons) CSR matrix."""
    flat = spikes.detach().reshape(-1, spikes.shape[-1])
    kernel = _kernel_for(flat)
    if kernel is not None:
        return SpikeMatrix(*kernel.dense_to_csr(flat.contiguous()), tuple(flat.shape))
    rows, cols = torch.nonzero(flat, as_tuple=True)  # row-major: sorted by row, then column
    ptr = torch.zeros(flat.shape[0] + 1, dtype=torch.int64, device=flat.device)
    ptr[1:] = torch.cumsum(torch.bincount(rows, minlength=flat.shape[0]), 0)
    return SpikeMatrix(ptr, cols.to(torch.int32), tuple(flat.shape))


def spike_store(spikes: torch.Tensor | SpikeBatch, mode: str = "auto", dtype=torch.float32) -> SpikeMatrix | SpikeBits:
    """The store for a layer's input spikes: ``sparse`` (CSR), ``dense`` (bits), or ``auto``.

    ``auto``: a batch of input events stays CSR; a spike tensor goes CSR when its measured density is below
    SPARSE_DENSITY on the CPU (the gather-add kernel's crossover), dense on GPUs (their GEMMs are cheap).
    """
    if isinstance(spikes, SpikeBatch):
        if mode == "dense":
            return SpikeBits.pack(spikes.dense(dtype).view(-1, spikes.num_channels))
        return batch_to_csr(spikes)
    if mode == "sparse" or (mode == "auto" and spikes.device.type == "cpu"):
        matrix = dense_to_csr(spikes)  # counts the spikes on the way
        if mode == "sparse" or matrix.idx.numel() < SPARSE_DENSITY * spikes.numel():
            return matrix
    return SpikeBits.pack(spikes.detach().reshape(-1, spikes.shape[-1]))


class _SynapticInput(torch.autograd.Function):
    """x = S W^T (eq 1) from a spike store; dL/dW from the store, dL/dS = dL/dx W (dense)."""

    @staticmethod
    def forward(ctx, weight, spikes, store):
        ctx.save_for_backward(weight, *store.tensors())
        ctx.rebuild = store.rebuild
        ctx.spikes_shape = None if spikes is None else spikes.shape
        return store.product(weight, spikes)

    @staticmethod
    def backward(ctx, grad_x):
        weight, *saved = ctx.saved_tensors
        store = ctx.rebuild(saved).for_backward()
        grad_weight = store.weight_grad(grad_x) if ctx.needs_input_grad[0] else None
        grad_spikes = linear(grad_x, weight.t()).view(ctx.spikes_shape) if ctx.needs_input_grad[1] else None
        return grad_weight, grad_spikes, None


def synaptic_input(store: SpikeMatrix | SpikeBits, weight: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
    """x (rows, out) = S @ weight^T. Pass the dense ``spikes`` the store came from when they need a gradient."""
    return _SynapticInput.apply(weight, spikes, store)
