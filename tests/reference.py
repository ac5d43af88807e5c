"""A plain step-by-step autograd implementation of the paper's eqs 1-5: the reference for every fast path."""

from __future__ import annotations

import torch


class SurrogateSpike(torch.autograd.Function):
    """S = H(V - Th) (eq 3) with dS/dV = (s/tau) exp(-|V-Th|/tau) (eq 4) and dS/dTh = -dS/dV (eq 5)."""

    @staticmethod
    def forward(ctx, v, th, tau, scale):
        ctx.save_for_backward(v, th)
        ctx.tau, ctx.scale = tau, scale
        return (v >= th).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        v, th = ctx.saved_tensors
        d = (ctx.scale / ctx.tau) * torch.exp(-(v - th).abs() / ctx.tau) * grad
        grad_th = -d
        while grad_th.dim() > th.dim():
            grad_th = grad_th.sum(0)
        return d, grad_th, None, None


def reference_lif(x, th, a_i=0.75, a_v=0.97, tau=3.75, scale=1.5, reset_grad="full"):
    """Eqs 1-3 literally, one step at a time, letting autograd do BPTT (reset path included).

    ``reset_grad="detach"``: S[t-1] in the reset term is a constant for autograd (Th's factor -S[t-1] stays).
    """
    current = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    s = torch.zeros_like(x[0])
    x_prev = torch.zeros_like(x[0])
    spikes, voltages = [], []
    for t in range(x.shape[0]):
        if t > 0:
            reset = s.detach() if reset_grad == "detach" else s
            v_new = v * a_v + current - reset * th  # eq 2 uses I[t-1] and S[t-1]
            current = current * a_i + x_prev  # eq 1 uses x[t-1]
            v = v_new
        s = SurrogateSpike.apply(v, th, tau, scale)  # eq 3
        spikes.append(s)
        voltages.append(v)
        x_prev = x[t]
    return torch.stack(spikes), torch.stack(voltages)


def reference_network(inputs, weights, thresholds, **neuron):
    """Layer after layer, step by step: x[t] = W S_in[t], then reference_lif."""
    s = inputs
    outs = []
    for w, th in zip(weights, thresholds):
        s, v = reference_lif(torch.einsum("tbi,oi->tbo", s, w), th, **neuron)
        outs.append((s, v))
    return outs
