"""Initial weights (kaiming-uniform, he-normal) and lava-dl-style 8-bit weight quantisation (engine/network.py)."""

import math

import pytest
import torch

from engine.errors import RouserError
from engine.network import QUANT_RANGE, QUANT_STEP, RouserNetwork, initial_weights, quantize_8bit
from engine.neuron import NeuronParams


def _reference_quantize(w: float) -> float:
    """Plain Python: nearest multiple of 2/64 (ties to the even multiple), then clamp to [-256/64, 254/64]."""
    q = round(w / QUANT_STEP) * QUANT_STEP  # Python's round() rounds ties to even
    return min(max(q, QUANT_RANGE[0]), QUANT_RANGE[1])


def test_8bit_quantiser_equals_the_plain_reference():
    step = QUANT_STEP
    ties = [0.5 * step, 1.5 * step, 2.5 * step, -0.5 * step, -1.5 * step]  # exact halves: even multiple wins
    edges = [-5.0, -4.0, -4.01, 3.96875, 3.97, 4.0, 10.0, 0.0, 1e-9, -1e-9]
    g = torch.Generator().manual_seed(0)
    values = torch.cat([torch.tensor(ties + edges, dtype=torch.float64), torch.randn(2000, generator=g, dtype=torch.float64) * 2])
    got = quantize_8bit(values)
    want = torch.tensor([_reference_quantize(v) for v in values.tolist()], dtype=torch.float64)
    assert torch.equal(got, want)
    assert got[:5].tolist() == [0.0, 2 * step, 2 * step, -0.0, -2 * step]
    assert got.min().item() == -4.0 and got.max().item() == 254 / 64
    assert len(torch.unique(got)) <= 256  # 8 bits


def test_8bit_quantiser_passes_the_gradient_straight_through():
    w = (torch.randn(50, dtype=torch.float64) * 3).requires_grad_()
    upstream = torch.randn(50, dtype=torch.float64)
    (quantize_8bit(w) * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)  # also outside the clamped range


def test_quantised_network_uses_8bit_weights_and_trains_the_float_ones():
    net = RouserNetwork([20, 8, 3], 0.5, NeuronParams(), seed=1, weight_scale=3.0, weight_quant="8bit").double()
    layer = net.layers[0]
    w = layer.synaptic_weight
    assert torch.equal(w, quantize_8bit(layer.weight)) and not torch.equal(w, layer.weight)
    x = (torch.rand(10, 2, 20, dtype=torch.float64) < 0.3).double()
    expected = (x.reshape(-1, 20) @ w.T).reshape(10, 2, 8)
    assert torch.allclose(layer.synaptic_input(x, "dense"), expected)
    spikes, _ = layer(x, "dense")
    spikes.sum().backward()
    assert layer.linear.weight.grad is not None and layer.linear.weight.grad.abs().max() > 0


@pytest.mark.parametrize("init, std", [("kaiming-uniform", lambda n: 1 / math.sqrt(3 * n)), ("he-normal", lambda n: math.sqrt(2 / n))])
def test_initial_weights_bounds_std_and_scale(init, std):
    fan_in, scale = 400, 0.5
    w = initial_weights(300, fan_in, init, 1.0, torch.Generator().manual_seed(0))
    assert abs(w.std().item() / std(fan_in) - 1) < 0.02
    assert abs(w.mean().item()) < 0.05 * std(fan_in)
    if init == "kaiming-uniform":
        bound = 1 / math.sqrt(fan_in)
        assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
        # PyTorch's own default for nn.Linear has the same bound
        assert abs(bound - torch.nn.init._calculate_correct_fan(torch.empty(1, fan_in), "fan_in") ** -0.5) < 1e-12
    scaled = initial_weights(300, fan_in, init, scale, torch.Generator().manual_seed(0))
    assert torch.allclose(scaled, w * scale)


@pytest.mark.parametrize("init", ["kaiming-uniform", "he-normal"])
def test_initial_weights_reproducible_from_the_seed(init):
    a = RouserNetwork([30, 10, 4], 1.0, NeuronParams(), seed=5, init=init)
    b = RouserNetwork([30, 10, 4], 1.0, NeuronParams(), seed=5, init=init)
    c = RouserNetwork([30, 10, 4], 1.0, NeuronParams(), seed=6, init=init)
    assert all(torch.equal(x, y) for x, y in zip(a.weights(), b.weights()))
    assert not torch.equal(a.weights()[0], c.weights()[0])


def test_unknown_init_and_quantisation_are_refused():
    with pytest.raises(RouserError, match="init must be one of"):
        RouserNetwork([3, 2], 1.0, NeuronParams(), seed=0, init="xavier")
    with pytest.raises(RouserError, match="weight_quant must be one of"):
        RouserNetwork([3, 2], 1.0, NeuronParams(), seed=0, weight_quant="4bit")
