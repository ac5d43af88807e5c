"""The fused LIF scan against the step-by-step reference of eqs 1-5 (float64)."""


import pytest
import torch

from engine.neuron import NeuronParams, lif_scan, reset_stability_warning
from reference import reference_lif, reference_network

TOL = 1e-10


pytestmark = pytest.mark.usefixtures("backend")  # every test on the kernel and on the loop (conftest)


def _inputs(seed, steps=40, batch=3, neurons=7, near=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, neurons, generator=g, dtype=torch.float64) * 0.6 + 0.1
    th = torch.rand(neurons, generator=g, dtype=torch.float64) * 1.5 + 0.2
    if near:  # a constant drive that parks some neurons within a hair of threshold
        x[:, :, 0] = 0.0
        x[:, :, 1] = 0.0
        x[0, :, 0] = 1.0
    return x, th


def _params(p):
    return NeuronParams(p["a_i"], p["a_v"], p["tau"], p["scale"], p["reset_grad"])


@pytest.mark.parametrize("reset_grad", ["full", "detach"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("params", [dict(), dict(a_i=0.5, a_v=0.9, tau=1.0, scale=1.0), dict(a_i=1.0, a_v=1.0, tau=0.3, scale=0.7)])
def test_scan_matches_reference_spikes_voltage_and_gradients(seed, params, reset_grad):
    p = dict(a_i=0.75, a_v=0.97, tau=3.75, scale=1.5, reset_grad=reset_grad) | params
    x, th = _inputs(seed)
    x_ref, th_ref = x.clone().requires_grad_(), th.clone().requires_grad_()
    x_fast, th_fast = x.clone().requires_grad_(), th.clone().requires_grad_()
    s_ref, v_ref = reference_lif(x_ref, th_ref, **p)
    s_fast, v_fast = lif_scan(x_fast, th_fast, _params(p))
    assert torch.equal(s_ref, s_fast)
    assert s_fast.sum() > 0 and (1 - s_fast).sum() > 0
    assert torch.allclose(v_ref, v_fast, atol=TOL, rtol=0)
    g = torch.Generator().manual_seed(seed + 100)
    gs, gv = torch.randn(s_ref.shape, generator=g, dtype=torch.float64), torch.randn(s_ref.shape, generator=g, dtype=torch.float64)
    ((s_ref * gs).sum() + (v_ref * gv).sum()).backward()
    ((s_fast * gs).sum() + (v_fast * gv).sum()).backward()
    assert torch.allclose(x_ref.grad, x_fast.grad, atol=TOL, rtol=0)
    assert torch.allclose(th_ref.grad, th_fast.grad, atol=TOL, rtol=0)
    assert x_fast.grad.abs().max() > 0 and th_fast.grad.abs().max() > 0


def test_time_indices_as_written():
    """Input at t=0 reaches I at t=1 and V at t=2; a spike at t resets V at t+1 by Th."""
    x = torch.zeros(6, 1, 1, dtype=torch.float64)
    x[0] = 2.0
    s, v = lif_scan(x, torch.tensor([1.5], dtype=torch.float64), NeuronParams(current_decay=0.5, voltage_decay=1.0))
    # I = [0, 2, 1, 0.5, 0.25, ...]; V[3] = 2 + 1 - 1.5; V[4] = 1.5 + 0.5 - 1.5; V[5] = 0.5 + 0.25
    assert v[:, 0, 0].tolist() == [0.0, 0.0, 2.0, 1.5, 0.5, 0.75]
    assert s[:, 0, 0].tolist() == [0, 0, 1, 1, 0, 0]


def test_non_positive_threshold_spikes_at_t0():
    s, v = lif_scan(torch.zeros(3, 1, 2, dtype=torch.float64), torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert s[0, 0].tolist() == [1.0, 0.0]


def test_several_layers_match_reference():
    g = torch.Generator().manual_seed(7)
    inputs = (torch.rand(30, 4, 12, generator=g) < 0.3).double()
    weights = [torch.randn(9, 12, generator=g, dtype=torch.float64) * 0.8, torch.randn(5, 9, generator=g, dtype=torch.float64) * 0.8]
    ths = [torch.rand(9, generator=g, dtype=torch.float64) + 0.3, torch.rand(5, generator=g, dtype=torch.float64) + 0.3]
    ref_w = [w.clone().requires_grad_() for w in weights]
    ref_th = [t.clone().requires_grad_() for t in ths]
    fast_w = [w.clone().requires_grad_() for w in weights]
    fast_th = [t.clone().requires_grad_() for t in ths]
    ref = reference_network(inputs, ref_w, ref_th)
    s = inputs
    fast = []
    for w, th in zip(fast_w, fast_th):
        x = (s.reshape(-1, s.shape[-1]) @ w.T).reshape(s.shape[0], s.shape[1], -1)
        s, v = lif_scan(x, th)
        fast.append((s, v))
    for (sr, vr), (sf, vf) in zip(ref, fast):
        assert torch.equal(sr, sf)
        assert torch.allclose(vr, vf, atol=TOL, rtol=0)
    target = torch.rand(ref[-1][0].shape, generator=g, dtype=torch.float64)
    ((ref[-1][0] - target) ** 2).sum().backward()
    ((fast[-1][0] - target) ** 2).sum().backward()
    for a, b in zip(ref_w + ref_th, fast_w + fast_th):
        assert torch.allclose(a.grad, b.grad, atol=TOL, rtol=0)
        assert a.grad.abs().max() > 0


def test_scalar_threshold_gradient():
    x = torch.randn(10, 2, 3, dtype=torch.float64, requires_grad=True)
    th = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    s, _ = lif_scan(x, th)
    s.sum().backward()
    assert th.grad.shape == ()


@pytest.mark.parametrize("kwargs, word", [(dict(current_decay=0.0), "current_decay"), (dict(voltage_decay=1.5), "voltage_decay"),
                                          (dict(surrogate_tau=0.0), "tau"), (dict(surrogate_scale=-1.0), "scale"),
                                          (dict(reset_grad="half"), "reset_grad")])
def test_bad_hyperparameters_name_the_parameter(kwargs, word):
    with pytest.raises(ValueError, match=word):
        lif_scan(torch.zeros(2, 1, 1), torch.ones(1), NeuronParams(**kwargs))


def test_detach_drops_only_the_reset_loop():
    """Detached and full backward differ only through S[t] -> V[t+1]; without spikes they agree exactly."""
    x, th = _inputs(5)
    grads = {}
    for mode in ("full", "detach"):
        xg, tg = x.clone().requires_grad_(), th.clone().requires_grad_()
        s, v = lif_scan(xg, tg, NeuronParams(reset_grad=mode))
        (s.sum() + v.sum()).backward()
        grads[mode] = (xg.grad, tg.grad)
    assert not torch.allclose(grads["full"][0], grads["detach"][0])
    silent = torch.full_like(th, 1e6)  # nobody spikes: the reset term is zero in both
    for mode in ("full", "detach"):
        xg = x.clone().requires_grad_()
        _, v = lif_scan(xg, silent, NeuronParams(reset_grad=mode))
        v.sum().backward()
        grads[mode] = xg.grad
    assert torch.equal(grads["full"], grads["detach"])


def test_reset_gradient_grows_past_the_stability_bound_unless_detached():
    """Th * s / tau > 1 + a_v: the full reset gradient explodes over T, the detached one stays bounded."""
    p = NeuronParams()  # s = 1.5, tau = 3.75: stable for Th < 4.93
    assert reset_stability_warning(8.0, p) is not None and reset_stability_warning(4.0, p) is None
    assert reset_stability_warning(8.0, NeuronParams(reset_grad="detach")) is None
    g = torch.Generator().manual_seed(0)
    noise = 1 + torch.randn(300, 16, 1, generator=g, dtype=torch.float64)
    norms = {}
    for th in (4.0, 8.0):
        drive = (1 - p.voltage_decay) * (1 - p.current_decay) * th  # DC input that holds V near Th
        for mode in ("full", "detach"):
            xg = (drive * noise).requires_grad_()
            s, _ = lif_scan(xg, torch.tensor([th], dtype=torch.float64), NeuronParams(reset_grad=mode))
            assert s.sum() > 10
            s.sum().backward()
            norms[th, mode] = xg.grad.abs().max().item()
    assert max(norms[4.0, "full"], norms[4.0, "detach"], norms[8.0, "detach"]) < 1e3
    assert norms[8.0, "full"] > 1e12


@pytest.mark.parametrize("mode", ["sparse", "dense", "auto"])
def test_network_paths_match_the_reference(mode):
    """Sparse (events -> CSR) and dense synaptic input give the reference's spikes and gradients in float64."""
    from engine.data.base import SpikeSplit
    from engine.network import RouserNetwork
    from engine.neuron import NeuronParams

    g = torch.Generator().manual_seed(3)
    steps, batch, channels = 25, 3, 40
    dense = (torch.rand(steps, batch, channels, generator=g) < 0.05).double()
    samples = [(torch.nonzero(dense[:, b], as_tuple=True)[0].numpy(), torch.nonzero(dense[:, b], as_tuple=True)[1].numpy()) for b in range(batch)]
    events = SpikeSplit.from_samples(samples, [0, 1, 2], steps, channels).batch([0, 1, 2])
    assert torch.equal(events.dense(torch.float64), dense)
    net = RouserNetwork([channels, 30, 6], 0.3, NeuronParams(), seed=0, weight_scale=3.0, input_mode=mode).double()
    ref_w = [w.detach().clone().requires_grad_() for w in net.weights()]
    ref_th = [t.detach().clone().requires_grad_() for t in net.thresholds()]
    out = net(events)
    ref = reference_network(dense, ref_w, ref_th)
    for s, (sr, _) in zip(out, ref):
        assert torch.equal(s, sr)
    assert 0 < out[0].mean() and 0 < out[1].mean()
    target = torch.rand(out[-1].shape, generator=g, dtype=torch.float64)
    ((out[-1] - target) ** 2).sum().backward()
    ((ref[-1][0] - target) ** 2).sum().backward()
    for a, b in zip(net.weights() + net.thresholds(), ref_w + ref_th):
        assert torch.allclose(a.grad, b.grad, atol=TOL, rtol=0)
        assert b.grad.abs().max() > 0
