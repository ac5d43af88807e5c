"""The spike stores and kernels (engine/sparse.py, spike_kernel.cpp, fused_layer.py, gpu_scan.py) against plain references.

Every fast path must give the reference's spikes exactly, and V and gradients within 1e-10 in float64, for both
reset_grad modes. Sizes are small: these run in CI on 2 cores.
"""

import os
from pathlib import Path

import pytest
import torch

from engine.data.base import SpikeSplit
from engine.fused_layer import lif_layer
from engine.neuron import NeuronParams, scan_backward, scan_forward
from engine.sparse import SpikeBits, batch_to_csr, dense_to_csr, linear, spike_store
from reference import reference_lif

TOL = 1e-10




def _spikes(seed, shape, density, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("width", [7, 64, 150])  # under one vector, whole chunks, chunks and a scalar tail
def test_sparse_products_equal_dense_products(backend, dtype, width):
    s = _spikes(0, (37, 45), 0.2, dtype)
    s[3] = 0  # an empty row
    g = torch.Generator().manual_seed(1)
    w = torch.randn(width, 45, generator=g, dtype=dtype)
    grad = torch.randn(37, width, generator=g, dtype=dtype)
    m = dense_to_csr(s)
    assert m.idx.numel() == int(s.sum())
    tol = TOL if dtype == torch.float64 else 1e-4
    assert torch.allclose(m.product(w), s @ w.t(), atol=tol, rtol=0)
    assert torch.allclose(m.weight_grad(grad), grad.t() @ s, atol=tol, rtol=0)
    assert torch.equal(m.transpose().transpose().idx, m.idx)


def test_csr_from_events_equals_csr_from_dense(backend):
    dense = _spikes(2, (20, 3, 30), 0.1)
    samples = [tuple(x.numpy() for x in torch.nonzero(dense[:, b], as_tuple=True)) for b in range(3)]
    batch = SpikeSplit.from_samples(samples, [0, 1, 2], 20, 30).batch([0, 1, 2])
    a, b = batch_to_csr(batch), dense_to_csr(dense)
    assert torch.equal(a.ptr, b.ptr) and torch.equal(a.idx, b.idx) and a.shape == b.shape


def test_bits_round_trip_and_store_choice():
    s = _spikes(3, (11, 13), 0.3)
    bits = SpikeBits.pack(s)
    assert bits.bits.shape == (11, 2) and torch.equal(bits.unpack(), s)
    assert isinstance(spike_store(_spikes(4, (5, 2, 40), 0.01), "auto"), type(dense_to_csr(s)))
    assert isinstance(spike_store(_spikes(4, (5, 2, 40), 0.5), "auto"), SpikeBits)


def test_onednn_linear_is_float32_exact_arithmetic():
    """The float32 product may sum in another order than BLAS, but never in a lower precision."""
    g = torch.Generator().manual_seed(5)
    a, w = torch.randn(300, 70, generator=g), torch.randn(40, 70, generator=g)
    exact = a.double() @ w.double().t()
    assert (linear(a, w).double() - exact).abs().max() < 1e-4
    assert torch.equal(linear(a.double(), w.double()), a.double() @ w.double().t())


@pytest.mark.parametrize("reset_grad", ["full", "detach"])
def test_backward_recomputing_v_equals_backward_from_stored_v(backend, reset_grad):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(50, 3, 300, generator=g, dtype=torch.float64) * 0.6 + 0.1  # 900 rows: several blocks
    th = torch.rand(300, generator=g, dtype=torch.float64) + 0.2
    p = NeuronParams(reset_grad=reset_grad)
    spikes, v = scan_forward(x, th, p)
    assert 0 < spikes.mean() < 1
    gs, gv = torch.randn(x.shape, generator=g, dtype=torch.float64), torch.randn(x.shape, generator=g, dtype=torch.float64)
    for grad_v in (gv, None):  # the same V; the surrogate's exp may differ in the last bits between the vector
        stored = scan_backward(v, th, gs, grad_v, p)  # and scalar libm routines, which blocks take which
        rerun = scan_backward(x, th, gs, grad_v, p, recompute=True)
        for a, b in zip(stored, rerun):
            assert torch.allclose(a, b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("reset_grad", ["full", "detach"])
@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_fused_layer_matches_the_reference(backend, mode, reset_grad):
    """Spikes in -> x = S W^T -> eqs 1-3, with x and V recomputed in backward: reference spikes, V and gradients."""
    p = NeuronParams(reset_grad=reset_grad)
    s_in = _spikes(7, (40, 3, 30), 0.15)
    g = torch.Generator().manual_seed(8)
    w = torch.randn(20, 30, generator=g, dtype=torch.float64) * 0.8
    th = torch.rand(20, generator=g, dtype=torch.float64) + 0.3
    leaves = [t.clone().requires_grad_() for t in (s_in, w, th)] + [t.clone().requires_grad_() for t in (s_in, w, th)]
    s_ref, v_ref = reference_lif(torch.einsum("tbi,oi->tbo", leaves[0], leaves[1]), leaves[2], reset_grad=reset_grad)
    s_fast, v_fast = lif_layer(spike_store(leaves[3], mode), leaves[4], leaves[5], p, 40, leaves[3])
    assert torch.equal(s_ref, s_fast) and 0 < s_fast.mean() < 1
    assert torch.allclose(v_ref, v_fast, atol=TOL, rtol=0)
    gs, gv = torch.randn(s_ref.shape, generator=g, dtype=torch.float64), torch.randn(s_ref.shape, generator=g, dtype=torch.float64)
    ((s_ref * gs).sum() + (v_ref * gv).sum()).backward()
    ((s_fast * gs).sum() + (v_fast * gv).sum()).backward()
    for ref, fast in zip(leaves[:3], leaves[3:]):
        assert torch.allclose(ref.grad, fast.grad, atol=TOL, rtol=0)
        assert fast.grad.abs().max() > 0


@pytest.mark.parametrize("reset_grad", ["full", "detach"])
def test_triton_scan_matches_the_reference_in_the_interpreter(monkeypatch, reset_grad):
    """The GPU kernels run on the CPU under TRITON_INTERPRET=1: same spikes, V and gradients as the reference."""
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    from engine.gpu_scan import gpu_lif_backward, gpu_lif_forward

    p = NeuronParams(current_decay=0.5, voltage_decay=0.9, surrogate_tau=1.0, reset_grad=reset_grad)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(30, 3, 100, generator=g, dtype=torch.float64) * 0.6 + 0.1  # 300 rows: two blocks, one partial
    th = torch.rand(100, generator=g, dtype=torch.float64) + 0.2
    xr, tr = x.clone().requires_grad_(), th.clone().requires_grad_()
    s_ref, v_ref = reference_lif(xr, tr, 0.5, 0.9, 1.0, 1.5, reset_grad)
    spikes, voltage = gpu_lif_forward(x, th, p)
    assert torch.equal(spikes, s_ref) and torch.allclose(voltage, v_ref, atol=TOL, rtol=0)
    gs, gv = torch.randn(x.shape, generator=g, dtype=torch.float64), torch.randn(x.shape, generator=g, dtype=torch.float64)
    want_x, want_th = torch.autograd.grad((s_ref * gs).sum() + (v_ref * gv).sum(), (xr, tr), retain_graph=True)
    grad_x, grad_th = gpu_lif_backward(voltage, th, gs, gv, p)
    assert torch.allclose(grad_x, want_x, atol=TOL, rtol=0) and torch.allclose(grad_th, want_th, atol=TOL, rtol=0)
    (want_x,) = torch.autograd.grad((s_ref * gs).sum(), xr)
    assert torch.allclose(gpu_lif_backward(voltage, th, gs, None, p)[0], want_x, atol=TOL, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("width", [5, 70, 150])  # a partial vector only; a whole chunk and a partial one; several
def test_scan_from_spikes_equals_product_then_scan_bit_for_bit(backend, dtype, width):
    """The fused kernels (x summed inside the scan) against x = S W^T stored, then the scan: forward to the bit;
    backward to the last few bits (the surrogate's exp may take the scalar or the vector libm routine)."""
    p = NeuronParams()
    s_in = _spikes(10, (25, 3, 40), 0.2, dtype)
    g = torch.Generator().manual_seed(11)
    w = (torch.randn(width, 40, generator=g) * 0.5).to(dtype).requires_grad_()
    th = (torch.rand(width, generator=g) + 0.3).to(dtype).requires_grad_()
    out, v = lif_layer(dense_to_csr(s_in), w, th, p, 25)
    x = dense_to_csr(s_in).product(w.detach()).view(25, 3, width)
    ref_out, ref_v = scan_forward(x, th.detach(), p)
    assert torch.equal(out, ref_out) and torch.equal(v, ref_v) and 0 < out.mean() < 1
    gs = torch.randn(out.shape, generator=g).to(dtype)
    (out * gs).sum().backward()
    grad_x, grad_th = scan_backward(ref_v, th.detach(), gs, None, p)
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else dict(atol=1e-5, rtol=1e-5)
    assert torch.allclose(th.grad, grad_th, **tol)
    assert torch.allclose(w.grad, dense_to_csr(s_in).weight_grad(grad_x.view(-1, width)), **tol)


def test_build_name_follows_the_sources_and_a_stale_lock_is_removed(tmp_path, monkeypatch):
    import warnings

    from engine import kernels

    assert kernels._build_name(["a"]) == kernels._build_name(["a"]) != kernels._build_name(["b"])
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    lock = tmp_path / "mod" / "lock"
    lock.parent.mkdir()
    lock.touch()  # left by a process killed while it held PyTorch's build lock
    with pytest.warns(UserWarning, match="kernel build lock"):
        with kernels._build_lock("mod"):
            assert not lock.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with kernels._build_lock("mod"):  # nothing left behind: nothing to say
            pass


def test_a_process_loads_the_kernel_past_a_lock_left_in_its_real_build_folder():
    """End to end, where PyTorch really keeps the build: a `lock` file left there by a killed process (found by
    where the built module lies, not by asking the code under test) must not make the next process wait."""
    import subprocess
    import sys

    from engine import kernels
    from torch.utils.cpp_extension import get_default_build_root

    module = kernels.cpu_kernel()
    if module is None:
        pytest.skip(f"the kernel cannot be built here: {kernels.kernel_error()}")
    name = module.__name__
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    (built,) = root.rglob(f"{name}/{name}.so")
    lock = built.parent / "lock"
    lock.touch()
    try:
        done = subprocess.run([sys.executable, "-c", "from engine.kernels import cpu_kernel, kernel_error\n"
                               "assert cpu_kernel() is not None, kernel_error()"],
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
        assert done.returncode == 0, done.stderr
        assert "removed a kernel build lock" in done.stderr and not lock.exists()
    finally:
        lock.unlink(missing_ok=True)
