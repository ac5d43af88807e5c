"""The LIF scan (eqs 1-5) on CUDA as two Triton kernels: one program per block of neurons runs all T steps.

Forward writes V[t] and S[t]; backward runs the BPTT recursion of ``neuron._backward_loop`` backwards in
time with the surrogate of eqs 4-5 computed in place, both in the loop's arithmetic order with floating-point
contraction off. Without Triton (or without CUDA) ``neuron.py`` falls back to the PyTorch loop. With
``TRITON_INTERPRET=1`` the kernels run on CPU tensors (slowly): the tests check them that way.
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = ["gpu_lif_backward", "gpu_lif_forward", "gpu_scan_available", "triton_kernels"]

BLOCK = 256  # neurons (batch x neurons, flattened) per program


@functools.lru_cache(maxsize=2)
def _build(interpret: bool):
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def forward(x_ptr, th_ptr, c_ptr, v_ptr, s_ptr, steps, rows, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < rows
        h = tl.load(th_ptr + offs % n, mask=mask, other=1.0)
        a_i = tl.load(c_ptr)
        a_v = tl.load(c_ptr + 1)
        zero = tl.full([BLOCK], 0, h.dtype)
        cur, v = zero, zero
        s = tl.where(v >= h, zero + 1, zero)  # eq 3 at t = 0
        tl.store(v_ptr + offs, v, mask=mask)
        tl.store(s_ptr + offs, s, mask=mask)
        for t in range(1, steps):
            xp = tl.load(x_ptr + (t - 1) * rows + offs, mask=mask, other=0.0)
            vn = v * a_v  # V[t] = a_v V[t-1] + I[t-1] - Th S[t-1]   (eq 2)
            vn = vn + cur
            vn = vn - s * h
            cn = cur * a_i  # I[t] = a_i I[t-1] + x[t-1]   (eq 1)
            cur = cn + xp
            v = vn
            s = tl.where(v >= h, zero + 1, zero)  # eq 3
            tl.store(v_ptr + t * rows + offs, v, mask=mask)
            tl.store(s_ptr + t * rows + offs, s, mask=mask)

    @triton.jit
    def backward(v_ptr, th_ptr, c_ptr, gs_ptr, gv_ptr, gx_ptr, gth_ptr, steps, rows, n,
                 BLOCK: tl.constexpr, HAS_GV: tl.constexpr, DETACH: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < rows
        h = tl.load(th_ptr + offs % n, mask=mask, other=1.0)
        a_i = tl.load(c_ptr)
        a_v = tl.load(c_ptr + 1)
        steep = tl.load(c_ptr + 2)
        k = tl.load(c_ptr + 3)
        zero = tl.full([BLOCK], 0, h.dtype)
        gvn, gin, acc = zero, zero, zero
        for i in range(0, steps):
            t = steps - 1 - i
            v = tl.load(v_ptr + t * rows + offs, mask=mask, other=0.0)
            g = tl.exp(-tl.abs(v - h) / steep) * k  # eq 4
            s = tl.where(v >= h, zero + 1, zero)
            gs = tl.load(gs_ptr + t * rows + offs, mask=mask, other=0.0)
            if not DETACH:
                gs = gs + (-h) * gvn  # S[t] -> V[t+1] through the reset term
            gi = gvn + a_i * gin  # I[t] -> V[t+1], I[t+1]
            tl.store(gx_ptr + t * rows + offs, gin, mask=mask)  # x[t] -> I[t+1]
            gv = g * gs  # V[t] -> S[t]
            if HAS_GV:
                gv = tl.load(gv_ptr + t * rows + offs, mask=mask, other=0.0) + gv
            gv = gv + a_v * gvn  # and V[t+1]
            acc += -(g * gs) - s * gvn  # eq 5 and the reset term
            gvn = gv
            gin = gi
        tl.store(gth_ptr + offs, acc, mask=mask)

    return triton, forward, backward


def triton_kernels():
    """(triton, forward, backward), built for the current TRITON_INTERPRET setting, or None without Triton."""
    return _build(os.environ.get("TRITON_INTERPRET") == "1")


def gpu_scan_available(x: torch.Tensor) -> bool:
    """True for CUDA tensors when Triton is importable and the kernels are not disabled (ROUSER_NO_KERNEL=1)."""
    return x.is_cuda and os.environ.get("ROUSER_NO_KERNEL") != "1" and triton_kernels() is not None


def _setup(x: torch.Tensor, threshold: torch.Tensor, p) -> tuple:
    kernels = triton_kernels()
    if kernels is None:
        raise RuntimeError("Triton is not installed")
    consts = torch.tensor([p.current_decay, p.voltage_decay, p.surrogate_tau, p.surrogate_scale / p.surrogate_tau],
                          dtype=x.dtype, device=x.device)
    th = threshold.to(x.dtype).expand(x.shape[2]).contiguous()
    rows = x[0].numel()
    options = {} if os.environ.get("TRITON_INTERPRET") == "1" else {"enable_fp_fusion": False}
    return kernels, consts, th, rows, (-(-rows // BLOCK),), options


def gpu_lif_forward(x: torch.Tensor, threshold: torch.Tensor, p) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs 1-3 for x (T, batch, neurons): (spikes, voltage)."""
    (_, forward, _), consts, th, rows, grid, options = _setup(x, threshold, p)
    x = x.contiguous()
    voltage, spikes = torch.empty_like(x), torch.empty_like(x)
    forward[grid](x, th, consts, voltage, spikes, x.shape[0], rows, x.shape[2], BLOCK=BLOCK, **options)
    return spikes, voltage


def gpu_lif_backward(voltage: torch.Tensor, threshold: torch.Tensor, grad_spikes, grad_voltage, p):
    """BPTT of eqs 1-3 with the surrogate of eqs 4-5 from the stored V: (grad_x, grad_threshold (neurons,))."""
    (_, _, backward), consts, th, rows, grid, options = _setup(voltage, threshold, p)
    voltage = voltage.contiguous()
    gs = torch.zeros_like(voltage) if grad_spikes is None else grad_spikes.contiguous()
    gv = gs if grad_voltage is None else grad_voltage.contiguous()
    grad_x = torch.empty_like(voltage)
    per_row = torch.empty(rows, dtype=voltage.dtype, device=voltage.device)
    backward[grid](voltage, th, consts, gs, gv, grad_x, per_row, voltage.shape[0], rows, voltage.shape[2],
                   BLOCK=BLOCK, HAS_GV=grad_voltage is not None, DETACH=p.reset_grad == "detach", **options)
    return grad_x, per_row.view(voltage.shape[1], voltage.shape[2]).sum(0)
