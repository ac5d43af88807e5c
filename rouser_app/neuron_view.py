"""One LIF neuron (eqs 1-3) driven by a random input spike train, with eq 4's surrogate window and Brian2 beside it."""

from __future__ import annotations

from functools import lru_cache

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import numpy as np
import panel as pn
import param
import torch

from engine.crossval import simulate_engine
from engine.neuron import NeuronParams, surrogate

__all__ = ["NeuronView", "simulate_neuron", "input_train"]

_PAPER = NeuronParams()  # the paper's neuron (Table 2): the sliders start there


def input_train(rate: float, steps: int, seed: int) -> np.ndarray:
    """A 0/1 spike train: each step spikes with probability ``rate`` (seeded, so it is reproducible)."""
    return (np.random.default_rng(seed).random(steps) < rate).astype(np.float64)


def simulate_neuron(spikes: np.ndarray, weight: float, threshold: float, current_decay: float, voltage_decay: float,
                    tau: float, scale: float) -> dict:
    """The engine's neuron on x = weight * spikes: V, S and I (``crossval.simulate_engine``) and eq 4's dS/dV."""
    train = np.asarray(spikes, dtype=np.float64).reshape(-1, 1)
    layer = simulate_engine(train, [np.array([[float(weight)]])], [np.array([float(threshold)])], current_decay,
                            voltage_decay, tau, scale)[0]
    voltage = layer["voltage"][:, 0]
    dspike_dv = surrogate(torch.from_numpy(voltage), torch.tensor(float(threshold), dtype=torch.float64), tau, scale)
    return dict(voltage=voltage, spikes=layer["spikes"][:, 0], current=layer["current"][:, 0],
                surrogate=dspike_dv.numpy())


@lru_cache(maxsize=32)
def _brian2(threshold, current_decay, voltage_decay, train: tuple, weight, tau, scale) -> dict:
    from engine.crossval import neuron_traces  # lazy: Brian2 is slow to import and optional

    return neuron_traces(threshold, current_decay, voltage_decay, np.array(train), weight, tau=tau, scale=scale)


def brian2_traces(spikes, weight, threshold, current_decay, voltage_decay, tau, scale) -> dict:
    """Brian2's simulation of the same neuron, or ``{"error": message}`` when Brian2 is unavailable."""
    try:
        return _brian2(float(threshold), float(current_decay), float(voltage_decay), tuple(np.asarray(spikes).tolist()),
                       float(weight), float(tau), float(scale))
    except ImportError as exc:
        return {"error": f"Brian2 cannot be imported here ({exc}); pip install \"brian2>=2.9\" \"numpy<2.4\""}
    except Exception as exc:  # Brian2Unavailable and anything Brian2 raises: a message, never a crash
        name = type(exc).__name__
        return {"error": f"Brian2 unavailable: {exc}" if name == "Brian2Unavailable" else f"Brian2 failed: {name}: {exc}"}


class NeuronView(pn.viewable.Viewer):
    """Sliders for one neuron and its input; plots V with Th, spikes, I and the surrogate window of eq 4."""

    threshold = param.Number(1.0, bounds=(0.05, 3.0), step=0.05, doc="firing threshold Th")
    current_decay = param.Number(_PAPER.current_decay, bounds=(0.01, 1.0), step=0.01, doc="a_i = 1/tau_i (eq 1)")
    voltage_decay = param.Number(_PAPER.voltage_decay, bounds=(0.01, 1.0), step=0.01, doc="a_v = 1/tau_v (eq 2)")
    tau = param.Number(_PAPER.surrogate_tau, bounds=(0.1, 10.0), step=0.05, doc="surrogate steepness tau (eq 4)")
    scale = param.Number(_PAPER.surrogate_scale, bounds=(0.1, 10.0), step=0.1, doc="surrogate scale s (eq 4)")
    rate = param.Number(0.2, bounds=(0.0, 1.0), step=0.01, doc="input spike probability per step")
    weight = param.Number(0.5, bounds=(-2.0, 3.0), step=0.05, doc="synaptic weight w")
    seed = param.Integer(0, bounds=(0, 10_000), doc="seed of the input spike train")
    steps = param.Integer(100, bounds=(10, 300), doc="time steps T")
    brian2 = param.Boolean(False, doc="overlay Brian2's simulation of the same neuron")

    def __init__(self, **params):
        super().__init__(**params)
        self._view = None

    def traces(self) -> dict:
        """Input, the engine's traces and (when the toggle is on) Brian2's."""
        spikes = input_train(self.rate, self.steps, self.seed)
        out = simulate_neuron(spikes, self.weight, self.threshold, self.current_decay, self.voltage_decay,
                              self.tau, self.scale)
        out["input"] = spikes
        if self.brian2:
            out["brian2"] = brian2_traces(spikes, self.weight, self.threshold, self.current_decay, self.voltage_decay,
                                          self.tau, self.scale)
        return out

    @param.depends("threshold", "current_decay", "voltage_decay", "tau", "scale", "rate", "weight", "seed", "steps",
                   "brian2")
    def _figure(self):
        tr = self.traces()
        t = np.arange(self.steps)
        tdim, vdim = hv.Dimension("neuron_t", label="time step"), hv.Dimension("V", label="membrane voltage V")
        th, tau = self.threshold, self.tau
        fired = t[tr["spikes"] > 0]
        # eq 4's window, graded: where dS/dV is at least 25%, 50% and 75% of its peak s/tau (|V - Th| < tau ln 1/q)
        window = [hv.HSpan(th - tau * np.log(1 / q), th + tau * np.log(1 / q)).opts(color="#fdae6b", alpha=0.12)
                  for q in (0.25, 0.5, 0.75)]
        voltage = hv.Overlay([
            hv.Curve((t, tr["voltage"]), tdim, vdim, label="V (engine)").opts(color="#3b4cc0", line_width=2),
            *window,
            hv.HLine(th, label="Th").opts(color="black", line_dash="dashed", line_width=1),
            hv.Scatter((fired, tr["voltage"][tr["spikes"] > 0]), tdim, vdim, label="spike").opts(
                color="#d62728", marker="triangle", size=9),
        ])
        note = ""
        b2 = tr.get("brian2")
        if b2 is not None and "error" in b2:
            note = b2["error"]
        elif b2 is not None:
            voltage = voltage * hv.Curve((t, b2["brian2_voltage"]), tdim, vdim, label="V (Brian2)").opts(
                color="#f4a582", line_dash="dotted", line_width=3)
            verdict = "agree" if b2["agree"] else "DISAGREE"
            note = (f"Brian2 {verdict}: {b2['mismatches']} spike mismatches in {b2['steps']} steps, "
                    f"max |ΔV| = {b2['max_abs_voltage_error']:.2g}, max |ΔI| = {b2['max_abs_current_error']:.2g}")
        ymax = max(float(np.max(tr["voltage"], initial=0)), th + 0.2)
        ymin = min(float(np.min(tr["voltage"], initial=0)), 0) - 0.1
        voltage = voltage.opts(title=f"membrane voltage · {int(tr['spikes'].sum())} output spikes · "
                                     f"shaded: dS/dV >= 25/50/75% of s/tau", ylim=(ymin, ymax * 1.1), height=260,
                               xlabel="time step", ylabel="membrane voltage V",
                               responsive=True, legend_position="top_left", show_grid=True)
        surrogate = hv.Area((t, tr["surrogate"]), tdim, hv.Dimension("dS/dV", label="dS/dV (eq 4)")).opts(
            color="#fdae6b", alpha=0.6, height=140, responsive=True,
            title="surrogate gradient (s/tau) exp(-|V - Th|/tau)")
        inputs = (hv.Spikes(t[tr["input"] > 0], tdim).opts(color="black", spike_length=1, line_width=1)).opts(
            height=90, responsive=True, yaxis=None, title=f"input spikes (x = {self.weight:g} per spike)")
        current = hv.Curve((t, tr["current"]), tdim, hv.Dimension("I", label="current I")).opts(
            color="#7f7f7f", height=130, responsive=True, title="synaptic current I (eq 1)")
        layout = (inputs + current + voltage + surrogate).cols(1).opts(shared_axes=True)
        return pn.Column(pn.pane.HoloViews(layout, sizing_mode="stretch_width", linked_axes=False),
                         pn.pane.Str(note, css_classes=["rouser-brian2-note"], visible=bool(note)),
                         sizing_mode="stretch_width")

    def __panel__(self):
        if self._view is None:
            sliders = pn.Param(
                self.param, show_name=False, width=280,
                parameters=["threshold", "current_decay", "voltage_decay", "tau", "scale", "rate", "weight", "seed",
                            "steps", "brian2"],
                widgets={name: {"type": pn.widgets.FloatSlider, "throttled": True}
                         for name in ("threshold", "current_decay", "voltage_decay", "tau", "scale", "rate", "weight")}
                | {name: {"type": pn.widgets.IntSlider, "throttled": True} for name in ("seed", "steps")}
                | {"brian2": {"type": pn.widgets.Toggle, "name": "overlay Brian2"}},
            )
            self._view = pn.Row(pn.Column(pn.pane.HTML("One neuron (eqs 1-4)", styles={"font-weight": "600", "font-size": "14px"}), sliders), pn.panel(self._figure),
                                sizing_mode="stretch_width")
        return self._view
