"""The training steps `rouser bench` times: the engine, snntorch, spikingjelly and the dense-GEMM bound.

All of them train the same network from the same initial weights (the engine's default kaiming-uniform
draw, copied into the peers' layers), thresholds 1.0, decays 0.75/0.97 and a subtractive reset, on the
same batches, with the van Rossum loss (eq 6) and Adam. Each builder returns ``forward(batch) -> loss``
and the optimizer; ``saved_bytes`` measures what autograd keeps for backward.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from .loss import target_spikes, van_rossum_loss
from .network import RouserNetwork
from .neuron import NeuronParams

__all__ = ["BUILDERS", "PEERS", "available", "saved_bytes"]

PEERS = {  # kind: (module, how it is built)
    "snntorch": ("snntorch", "snntorch 1.0 `Synaptic` (learnable threshold, subtractive reset), step by step"),
    "spikingjelly": ("spikingjelly", "spikingjelly 2.0 `CUBALIFNode` (v_reset=None: subtractive; fixed threshold), "
                                     "multi-step mode after a time-parallel nn.Linear (its fastest CPU set-up)"),
}


def available(kind: str) -> bool:
    """Whether the library a peer kind needs is installed."""
    return kind not in PEERS or importlib.util.find_spec(PEERS[kind][0]) is not None


def _engine(sizes, device) -> RouserNetwork:
    return RouserNetwork(sizes, 1.0, NeuronParams(), seed=0).to(device)


def _linears(sizes, device) -> nn.ModuleList:
    """nn.Linear layers holding the engine's initial weights."""
    linears = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in zip(sizes[:-1], sizes[1:]))
    with torch.no_grad():
        for linear, w in zip(linears, _engine(sizes, "cpu").weights()):
            linear.weight.copy_(w)
    return linears.to(device)


def _loss(out, batch, sizes, kernel):
    return van_rossum_loss(out, target_spikes(batch.labels, sizes[-1], batch.time_steps), kernel)


def rouser(sizes, device, kernel):
    """The engine: sparse input, fused layers (x and V recomputed in backward), hand-written BPTT."""
    model = _engine(sizes, device)

    def forward(batch):
        return _loss(model(batch)[-1], batch, sizes, kernel)
    return forward, torch.optim.Adam(model.parameters(), lr=1e-3)


def snntorch(sizes, device, kernel):
    """The usual snntorch way: nn.Linear + snn.Synaptic per layer, a Python loop over time, autograd BPTT."""
    import snntorch as snn

    linears = _linears(sizes, device)
    neurons = nn.ModuleList(snn.Synaptic(alpha=0.75, beta=0.97, threshold=1.0, learn_threshold=True,
                                         reset_mechanism="subtract") for _ in sizes[1:]).to(device)

    def forward(batch):
        x = batch.dense()
        states = [n.init_synaptic() for n in neurons]
        out = []
        for t in range(batch.time_steps):
            s = x[t]
            for k, (fc, lif) in enumerate(zip(linears, neurons)):
                s, syn, mem = lif(fc(s), *states[k])
                states[k] = (syn, mem)
            out.append(s)
        return _loss(torch.stack(out), batch, sizes, kernel)
    return forward, torch.optim.Adam(list(linears.parameters()) + list(neurons.parameters()), lr=1e-3)


def spikingjelly(sizes, device, kernel):
    """spikingjelly 2.0: per layer one nn.Linear over all T * batch rows, then CUBALIFNode in multi-step mode.

    The surrogate is its PiecewiseExp with alpha = 1 / tau, the width of eq 4.
    """
    from spikingjelly.activation_based import neuron, surrogate

    linears = _linears(sizes, device)
    nodes = nn.ModuleList()
    for _ in sizes[1:]:
        node = neuron.CUBALIFNode(c_decay=0.75, v_decay=0.97, v_threshold=1.0, v_reset=None,
                                  surrogate_function=surrogate.PiecewiseExp(alpha=1 / NeuronParams().surrogate_tau))
        node.step_mode = "m"
        nodes.append(node)

    def forward(batch):
        s = batch.dense()
        for fc, node in zip(linears, nodes):
            node.reset()
            s = node(fc(s.flatten(0, 1)).view(batch.time_steps, batch.batch_size, -1))
        return _loss(s, batch, sizes, kernel)
    return forward, torch.optim.Adam(linears.parameters(), lr=1e-3)


def dense_gemm(sizes, device, kernel):
    """Only the dense matmuls of a training step: forward, input gradient and weight gradient per layer."""
    weights = [torch.randn(o, i, device=device) for i, o in zip(sizes[:-1], sizes[1:])]

    def forward(batch):
        rows = batch.time_steps * batch.batch_size
        for w in weights:
            x = torch.ones(rows, w.shape[1], device=device)
            y = x @ w.t()
            _ = y @ w
            _ = y.t() @ x
        return None
    return forward, None


BUILDERS = {"rouser": rouser, "snntorch": snntorch, "spikingjelly": spikingjelly, "dense_gemm": dense_gemm}


def saved_bytes(forward, batch, parameters) -> int:
    """Bytes autograd keeps for backward over one forward: distinct storages saved, parameters excluded."""
    skip = {p.untyped_storage().data_ptr() for p in parameters}
    seen: dict[int, int] = {}

    def pack(t):
        if t.layout == torch.strided:
            storage = t.untyped_storage()
            if storage.data_ptr() not in skip:
                seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward(batch)
    del loss
    return sum(seen.values())
