"""Fully connected LIF networks with per-neuron learnable thresholds, and the paper's presets."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .data.base import SpikeBatch
from .errors import RouserError
from .fused_layer import lif_layer
from .neuron import NeuronParams
from .sparse import spike_store, synaptic_input

__all__ = ["INITS", "INPUT_MODES", "LIFLayer", "Preset", "PRESETS", "RouserNetwork", "WEIGHT_QUANTS", "get_preset",
           "initial_weights", "quantize_8bit"]

INPUT_MODES = ("auto", "dense", "sparse")  # how synaptic input is computed; auto picks by spike density
INITS = ("kaiming-uniform", "he-normal")  # initial weight distributions (see initial_weights)
WEIGHT_QUANTS = ("none", "8bit")  # forward-pass weight quantisation (see quantize_8bit)
QUANT_STEP = 2.0 / 64  # lava-dl's 8-bit weights: steps of 2/64 ...
QUANT_RANGE = (-256.0 / 64, 254.0 / 64)  # ... clamped to [-256/64, 254/64]


def initial_weights(out_features: int, in_features: int, init: str, scale: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Initial W (paper Table 2: "Kaiming"), times ``scale``.

    ``kaiming-uniform`` (default): U(-b, b) with b = 1/sqrt(fan_in), std 1/sqrt(3 fan_in). It is PyTorch's
    default for linear and convolution layers (``kaiming_uniform_(a=sqrt(5))``), so it is what lava-dl's
    ``Dense`` synapse (a Conv3d with no explicit initialisation), the paper's SLAYER 2.0 code base, starts
    from. ``he-normal``: N(0, 2/fan_in), He et al.'s Kaiming normal, 2.45x wider; with it the paper's
    2312-500-500-10 network over-fires on its first batch and its output layer dies for good.
    """
    if init == "kaiming-uniform":
        bound = scale / math.sqrt(in_features)
        return (torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound
    if init == "he-normal":
        return torch.randn(out_features, in_features, generator=generator) * (scale * math.sqrt(2.0 / in_features))
    raise RouserError(f"init must be one of {', '.join(INITS)}, got {init!r}")


class _StraightThrough(torch.autograd.Function):
    """Forward: the 8-bit weight; backward: the gradient passes unchanged to the float weight."""

    @staticmethod
    def forward(ctx, weight):
        low, high = QUANT_RANGE
        return torch.round(weight / QUANT_STEP).mul_(QUANT_STEP).clamp_(low, high)

    @staticmethod
    def backward(ctx, grad):
        return grad


def quantize_8bit(weight: torch.Tensor) -> torch.Tensor:
    """lava-dl's default CUBA weight quantisation: round to steps of 2/64 (ties to even), clamp to
    [-256/64, 254/64]; the gradient goes straight through to the float weights."""
    return _StraightThrough.apply(weight)


@dataclass(frozen=True)
class Preset:
    """Hidden layer sizes and time steps of a network; input and output sizes follow the dataset."""

    name: str
    hidden: tuple[int, ...]
    time_steps: int
    dataset: str
    description: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("quick", (64,), 60, "nmnist-sim", "small and fast for live classroom demos: 64 hidden neurons, 60 steps of 5 ms"),
        Preset("nmnist", (500, 500), 300, "nmnist-sim", "the paper's NMNIST network 2312-500-500-10, 300 steps of 1 ms"),
        Preset("dvs128", (64,), 300, "gestures-sim", "the paper's DVS128 network (2x32x32 downsampled or 2x128x128)-64-11"),
        Preset("shd", (200, 200), 250, "randman", "the paper's SHD network 700-200-200-20"),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise RouserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


class LIFLayer(nn.Module):
    """Synaptic weights W (eq 1's w_ji) and per-neuron thresholds Th_i feeding LIF neurons (eqs 1-3)."""

    def __init__(self, in_features: int, out_features: int, threshold: float, neuron: NeuronParams,
                 generator: torch.Generator, weight_scale: float = 1.0, weight_norm: bool = False,
                 init: str = "kaiming-uniform", weight_quant: str = "none"):
        super().__init__()
        if weight_quant not in WEIGHT_QUANTS:
            raise RouserError(f"weight_quant must be one of {', '.join(WEIGHT_QUANTS)}, got {weight_quant!r}")
        self.neuron = neuron
        self.weight_quant = weight_quant
        self.linear = nn.Linear(in_features, out_features, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(initial_weights(out_features, in_features, init, weight_scale, generator))
        if weight_norm:  # w = g v / ||v||, per output neuron (paper Fig. 5)
            self.linear = nn.utils.parametrizations.weight_norm(self.linear)
        self.threshold = nn.Parameter(torch.full((out_features,), float(threshold)))

    @property
    def weight(self) -> torch.Tensor:
        """The trained float weights W."""
        return self.linear.weight

    @property
    def synaptic_weight(self) -> torch.Tensor:
        """The weights the forward pass uses: W, or W quantised to 8 bits."""
        return quantize_8bit(self.weight) if self.weight_quant == "8bit" else self.weight

    def synaptic_input(self, spikes: torch.Tensor | SpikeBatch, mode: str = "auto") -> torch.Tensor:
        """x[t] = sum_j w_ji S_j[t] for all T steps at once (eq 1's input), shape (T, batch, out).

        One product over T*batch rows from the spike store ``spike_store`` picks: CSR (only the spikes are
        touched) for a SpikeBatch of input events or for spikes sparser than SPARSE_DENSITY, else dense.
        ``mode`` forces one path.
        """
        weight = self.synaptic_weight
        steps, dense = _steps(spikes)
        return synaptic_input(spike_store(spikes, mode, weight.dtype), weight, dense).view(steps, -1, weight.shape[0])

    def forward(self, spikes: torch.Tensor | SpikeBatch, mode: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
        """Spikes and voltage (T, batch, out) of the layer's LIF neurons (eqs 1-3); backward keeps only the
        input spikes and recomputes x and V (``fused_layer.py``)."""
        weight = self.synaptic_weight
        steps, dense = _steps(spikes)
        return lif_layer(spike_store(spikes, mode, weight.dtype), weight, self.threshold, self.neuron, steps, dense)


def _steps(spikes: torch.Tensor | SpikeBatch) -> tuple[int, torch.Tensor | None]:
    """T, and the dense spike tensor when the input is one (it then receives a gradient)."""
    if isinstance(spikes, SpikeBatch):
        return spikes.time_steps, None
    return spikes.shape[0], spikes


class RouserNetwork(nn.Module):
    """A stack of LIF layers computed layer by layer over all time steps."""

    def __init__(self, sizes: list[int], threshold: float, neuron: NeuronParams, seed: int,
                 weight_scale: float = 1.0, weight_norm: bool = False, input_mode: str = "auto",
                 init: str = "kaiming-uniform", weight_quant: str = "none"):
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise RouserError(f"input mode must be one of {', '.join(INPUT_MODES)}, got {input_mode!r}")
        self.input_mode = input_mode
        if len(sizes) < 2 or min(sizes) < 1:
            raise RouserError(f"layer sizes must be positive, got {sizes}")
        generator = torch.Generator().manual_seed(seed)
        self.sizes = list(sizes)
        self.layers = nn.ModuleList(
            LIFLayer(i, o, threshold, neuron, generator, weight_scale, weight_norm, init, weight_quant)
            for i, o in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, batch: SpikeBatch) -> list[torch.Tensor]:
        """Spikes (T, batch, neurons) of every layer, input layer excluded."""
        spikes, out = batch, []
        for layer in self.layers:
            spikes = layer(spikes, self.input_mode)[0]  # V is let go at once: one layer's fewer in memory
            out.append(spikes)
        return out

    def thresholds(self) -> list[torch.Tensor]:
        return [layer.threshold for layer in self.layers]

    def weights(self) -> list[torch.Tensor]:
        return [layer.weight for layer in self.layers]
