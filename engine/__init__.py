"""Rouser engine: LIF networks with learnable per-neuron thresholds (pure PyTorch + numpy)."""

from .neuron import NeuronParams, lif_scan, surrogate

__all__ = ["NeuronParams", "lif_scan", "surrogate"]
