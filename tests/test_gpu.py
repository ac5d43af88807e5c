"""The CUDA paths (Triton scan, fused layers, network) against the step-by-step reference; skipped without a GPU.

Run by tools/gpu_check.sh. Same bar as on the CPU: identical spikes, V and gradients within 1e-10 in float64.
"""

import pytest
import torch

from engine.fused_layer import lif_layer
from engine.gpu_scan import gpu_scan_available
from engine.neuron import NeuronParams, lif_scan
from engine.sparse import spike_store
from reference import reference_lif, reference_network

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
TOL = 1e-10


def _close(a, b):
    return torch.allclose(a.cpu(), b.cpu(), atol=TOL, rtol=0)


def test_triton_is_used_on_cuda():
    pytest.importorskip("triton")
    assert gpu_scan_available(torch.zeros(1, device="cuda"))


@pytest.mark.parametrize("reset_grad", ["full", "detach"])
def test_cuda_scan_matches_the_reference(reset_grad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, 300, generator=g, dtype=torch.float64) * 0.6 + 0.1
    th = torch.rand(300, generator=g, dtype=torch.float64) + 0.2
    p = NeuronParams(reset_grad=reset_grad)
    xr, tr = x.clone().requires_grad_(), th.clone().requires_grad_()
    xc, tc = x.cuda().requires_grad_(), th.cuda().requires_grad_()
    s_ref, v_ref = reference_lif(xr, tr, reset_grad=reset_grad)
    s, v = lif_scan(xc, tc, p)
    assert torch.equal(s.cpu(), s_ref) and _close(v, v_ref)
    gs, gv = torch.randn(x.shape, generator=g, dtype=torch.float64), torch.randn(x.shape, generator=g, dtype=torch.float64)
    ((s_ref * gs).sum() + (v_ref * gv).sum()).backward()
    ((s * gs.cuda()).sum() + (v * gv.cuda()).sum()).backward()
    assert _close(xc.grad, xr.grad) and _close(tc.grad, tr.grad)


@pytest.mark.parametrize("reset_grad", ["full", "detach"])
@pytest.mark.parametrize("mode", ["auto", "sparse", "dense"])
def test_cuda_fused_layer_matches_the_reference(mode, reset_grad):
    g = torch.Generator().manual_seed(1)
    s_in = (torch.rand(100, 4, 60, generator=g) < 0.1).double()
    w = torch.randn(40, 60, generator=g, dtype=torch.float64) * 0.8
    th = torch.rand(40, generator=g, dtype=torch.float64) + 0.3
    ref = [t.clone().requires_grad_() for t in (s_in, w, th)]
    fast = [t.cuda().requires_grad_() for t in (s_in, w, th)]
    s_ref, v_ref = reference_lif(torch.einsum("tbi,oi->tbo", ref[0], ref[1]), ref[2], reset_grad=reset_grad)
    s, v = lif_layer(spike_store(fast[0], mode), fast[1], fast[2], NeuronParams(reset_grad=reset_grad), 100, fast[0])
    assert torch.equal(s.cpu(), s_ref) and _close(v, v_ref) and 0 < s_ref.mean() < 1
    target = torch.rand(s_ref.shape, generator=g, dtype=torch.float64)
    ((s_ref - target) ** 2 + v_ref).sum().backward()
    ((s - target.cuda()) ** 2 + v).sum().backward()
    for a, b in zip(ref, fast):
        assert _close(b.grad, a.grad)


def test_cuda_network_from_events_matches_the_reference():
    from engine.data.base import SpikeSplit
    from engine.network import RouserNetwork

    g = torch.Generator().manual_seed(3)
    steps, batch, channels = 60, 3, 40
    dense = (torch.rand(steps, batch, channels, generator=g) < 0.05).double()
    samples = [tuple(x.numpy() for x in torch.nonzero(dense[:, b], as_tuple=True)) for b in range(batch)]
    events = SpikeSplit.from_samples(samples, [0, 1, 2], steps, channels).batch([0, 1, 2])
    net = RouserNetwork([channels, 30, 6], 0.3, NeuronParams(), seed=0, weight_scale=3.0).double()
    ref_w = [w.detach().clone().requires_grad_() for w in net.weights()]
    ref_th = [t.detach().clone().requires_grad_() for t in net.thresholds()]
    net = net.cuda()
    out = net(events.to("cuda"))
    ref = reference_network(dense, ref_w, ref_th)
    for s, (sr, _) in zip(out, ref):
        assert torch.equal(s.cpu(), sr)
    (out[-1].sum() + out[0].sum()).backward()
    (ref[-1][0].sum() + ref[0][0].sum()).backward()
    for a, b in zip(net.weights() + net.thresholds(), ref_w + ref_th):
        assert _close(a.grad, b.grad)
