"""Cross-validation of the engine's LIF neuron (``lif_scan``, eqs 1-3) against the same model built in Brian2.

Both sides get identical inputs and run in float64. Brian2 (2.9, numpy code generation) models eqs 1-3 as::

    run_regularly(when='groups'):  v = a_v*v + I - th*int(v >= th)*int(t > 0*second)   (eq 2)
                                   I = a_i*I                                           (eq 1, decay part)
    threshold: 'v >= th', reset: ''                                                    (eq 3)
    synapses:  on_pre='I_post += w', delay=dt                                          (eq 1, + x[t-1])

Brian2's schedule within step n is groups -> thresholds -> synapses -> resets -> end. ``groups`` turns
(V[n-1], I[n-1]) into V[n] and a_i*I[n-1]; ``thresholds`` emits S[n]; ``synapses`` adds the spikes of step n-1
(delayed by one dt), completing I[n] = a_i*I[n-1] + x[n-1]; a StateMonitor at ``end`` records V[n] and I[n].
The factor ``int(t > 0*second)`` is S[-1] = 0: states are zero before t = 0, so V[0] = 0 even for Th <= 0.
A subtractive ``reset='v -= th'`` would be wrong here: the next step's decay would make it a_v*Th.

Brian2 is imported lazily, so the rest of the project works without it; when it cannot be imported,
``Brian2Unavailable`` says what to install.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .errors import RouserError
from .neuron import NeuronParams, lif_scan

__all__ = [
    "MODELS",
    "Brian2Unavailable",
    "compare_network",
    "compare_single_neuron",
    "current_trace",
    "format_report",
    "neuron_traces",
    "random_network",
    "run_crossval",
    "simulate_brian2",
    "simulate_engine",
]

INSTALL_HINT = 'pip install "brian2>=2.9" "numpy<2.4"'
TOLERANCE = 1e-9  # largest accepted |dV| and |dI| between the engine and Brian2
PAPER = NeuronParams()  # the paper's neuron (Table 2): the defaults below are its values

# Brian2's per-step update of eq 2 (then eq 1's decay), by model. "subtract" is the paper's neuron;
# "reset_to_zero" is a deliberately wrong variant (V restarts from 0 after a spike) that must disagree.
_PREVIOUS_SPIKE = "int(v >= th)*int(t > 0*second)"  # S[t-1], zero before t = 0
MODELS = {
    "subtract": f"v = a_v*v + I - th*{_PREVIOUS_SPIKE}\nI = a_i*I",
    "reset_to_zero": f"v = a_v*v*(1 - {_PREVIOUS_SPIKE}) + I\nI = a_i*I",
}
_EQUATIONS = """
v : 1
I : 1
th : 1 (constant)
a_v : 1 (shared, constant)
a_i : 1 (shared, constant)
"""
_QUIET_MODULES = r"(brian2|pyparsing)(\.|$)"  # their pyparsing deprecation warnings are noise here


class Brian2Unavailable(RouserError):
    """Brian2 cannot be imported; the message names the install command."""


def _brian2():
    """Import Brian2 lazily, quiet its INFO log, or raise Brian2Unavailable with a one-line message."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=_QUIET_MODULES)
            import brian2
    except Exception as error:  # ImportError, or AttributeError ('ptp') from Brian2 <= 2.9 with numpy >= 2.4
        detail = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise Brian2Unavailable(f"the Brian2 cross-validation needs Brian2 ({detail}); install it: {INSTALL_HINT}") from None
    brian2.BrianLogger.log_level_warn()
    return brian2


@contextlib.contextmanager
def _float64_numpy_codegen(brian2):
    """Brian2 prefs for one run (numpy code generation, float64), restored afterwards; Brian2's pyparsing
    deprecation warnings silenced."""
    names = ("codegen.target", "core.default_float_dtype")
    saved = {name: brian2.prefs[name] for name in names}
    brian2.prefs["codegen.target"] = "numpy"
    brian2.prefs["core.default_float_dtype"] = np.float64
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=_QUIET_MODULES)
            yield
    finally:
        for name, value in saved.items():
            brian2.prefs[name] = value


def _check_inputs(input_spikes, weights, thresholds) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Validate and convert: input_spikes (T, n_in) of 0/1, weights[k] (n_k, n_{k-1}), thresholds[k] (n_k,)."""
    spikes = np.asarray(input_spikes, dtype=np.float64)
    if spikes.ndim != 2:
        raise ValueError(f"input_spikes must have shape (T, inputs), got {spikes.shape}")
    if not np.isin(spikes, (0.0, 1.0)).all():
        raise ValueError("input_spikes must hold only 0 and 1 (one spike per step at most)")
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    thresholds = [np.asarray(th, dtype=np.float64).reshape(-1) for th in thresholds]
    if len(weights) != len(thresholds) or not weights:
        raise ValueError(f"need one threshold vector per weight matrix, got {len(weights)} and {len(thresholds)}")
    fan_in = spikes.shape[1]
    for k, (w, th) in enumerate(zip(weights, thresholds)):
        if w.ndim != 2 or w.shape[1] != fan_in or w.shape[0] != th.shape[0]:
            raise ValueError(f"layer {k}: weights {w.shape} and thresholds {th.shape} do not fit {fan_in} inputs")
        fan_in = w.shape[0]
    return spikes, weights, thresholds


def current_trace(x: np.ndarray, current_decay: float) -> np.ndarray:
    """Synaptic current of eq 1, I[t] = a_i * I[t-1] + x[t-1] with I[0] = 0, for x of shape (T, ...).

    ``lif_scan`` does not return I; this linear filter of its input gives the current it integrates.
    """
    x = np.asarray(x, dtype=np.float64)
    current = np.zeros_like(x)
    for t in range(1, x.shape[0]):
        current[t] = current_decay * current[t - 1] + x[t - 1]
    return current


def simulate_engine(input_spikes, weights, thresholds, current_decay=PAPER.current_decay,
                    voltage_decay=PAPER.voltage_decay, tau=PAPER.surrogate_tau, scale=PAPER.surrogate_scale):
    """Run the engine's layers in float64: x_k = S_{k-1} W_k^T over all T at once, then ``lif_scan`` (eqs 1-3).

    Returns one dict per layer with ``spikes``, ``voltage`` (V[t], eq 2) and ``current`` (I[t], eq 1), each (T, n_k).
    """
    spikes, weights, thresholds = _check_inputs(input_spikes, weights, thresholds)
    layers = []
    previous = torch.from_numpy(spikes)
    with torch.no_grad():
        for w, th in zip(weights, thresholds):
            x = previous @ torch.from_numpy(w).T  # x[t] = sum_j w_ji S_j[t], one matmul over all steps
            s, v = lif_scan(x.unsqueeze(1), torch.from_numpy(th), NeuronParams(current_decay, voltage_decay, tau, scale))
            previous = s[:, 0]
            layers.append({"spikes": previous.numpy(), "voltage": v[:, 0].numpy(), "current": current_trace(x.numpy(), current_decay)})
    return layers


def simulate_brian2(input_spikes, weights, thresholds, current_decay=PAPER.current_decay,
                    voltage_decay=PAPER.voltage_decay, model="subtract"):
    """Run the same layers as Brian2 NeuronGroups in a fresh Network (numpy codegen, float64).

    Inputs enter as a SpikeGeneratorGroup; every layer follows MODELS[model] (see the module docstring).
    Returns one dict per layer with ``spikes``, ``voltage`` and ``current``, each (T, n_k), as recorded at step end.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    spikes, weights, thresholds = _check_inputs(input_spikes, weights, thresholds)
    b2 = _brian2()
    steps = spikes.shape[0]
    dt = 1 * b2.ms
    with _float64_numpy_codegen(b2):
        spike_steps, spike_neurons = np.nonzero(spikes)
        source = b2.SpikeGeneratorGroup(spikes.shape[1], spike_neurons, spike_steps * dt, dt=dt)
        objects, monitors = [source], []
        for w, th in zip(weights, thresholds):
            group = b2.NeuronGroup(len(th), _EQUATIONS, threshold="v >= th", reset="", dt=dt)
            group.th = th
            group.a_v = voltage_decay
            group.a_i = current_decay
            group.run_regularly(MODELS[model], when="groups", dt=dt)
            synapses = b2.Synapses(source, group, "w : 1", on_pre="I_post += w", delay=dt, dt=dt)
            post, pre = np.nonzero(np.ones_like(w))  # all-to-all, zero weights included
            synapses.connect(i=pre, j=post)
            synapses.w = w[post, pre]
            state = b2.StateMonitor(group, ["v", "I"], record=True, when="end", dt=dt)
            fired = b2.SpikeMonitor(group)
            objects += [group, synapses, state, fired]  # the group brings its run_regularly
            monitors.append((state, fired, len(th)))
            source = group
        b2.Network(*objects).run(steps * dt, namespace={})
    layers = []
    for state, fired, size in monitors:
        raster = np.zeros((steps, size))
        raster[np.rint(np.asarray(fired.t / dt)).astype(int), np.asarray(fired.i)] = 1.0
        layers.append({"spikes": raster, "voltage": np.asarray(state.v).T.copy(), "current": np.asarray(state.I).T.copy()})
    return layers


def _agreement(engine_layers, brian2_layers, tolerance) -> dict:
    """Spike mismatches (steps x neurons bins that differ) and max |dV|, |dI| over all layers."""
    mismatches = sum(int((e["spikes"] != b["spikes"]).sum()) for e, b in zip(engine_layers, brian2_layers))
    dv = max(float(np.abs(e["voltage"] - b["voltage"]).max(initial=0.0)) for e, b in zip(engine_layers, brian2_layers))
    di = max(float(np.abs(e["current"] - b["current"]).max(initial=0.0)) for e, b in zip(engine_layers, brian2_layers))
    return {
        "steps": engine_layers[0]["spikes"].shape[0],
        "neurons": sum(e["spikes"].shape[1] for e in engine_layers),
        "bins_compared": sum(e["spikes"].size for e in engine_layers),
        "spikes_compared": int(sum(np.maximum(e["spikes"], b["spikes"]).sum() for e, b in zip(engine_layers, brian2_layers))),
        "engine_spike_count": int(sum(e["spikes"].sum() for e in engine_layers)),
        "brian2_spike_count": int(sum(b["spikes"].sum() for b in brian2_layers)),
        "mismatches": mismatches,
        "max_abs_voltage_error": dv,
        "max_abs_current_error": di,
        "tolerance": tolerance,
        "agree": mismatches == 0 and dv <= tolerance and di <= tolerance,
    }


def _compare(input_spikes, weights, thresholds, current_decay, voltage_decay, model, tolerance,
             tau=PAPER.surrogate_tau, scale=PAPER.surrogate_scale):
    """Engine and Brian2 layers on identical inputs, and how well they agree."""
    engine = simulate_engine(input_spikes, weights, thresholds, current_decay, voltage_decay, tau, scale)
    brian2 = simulate_brian2(input_spikes, weights, thresholds, current_decay, voltage_decay, model)
    return engine, brian2, _agreement(engine, brian2, tolerance)


def neuron_traces(threshold, current_decay, voltage_decay, input_spikes, weight, tau=PAPER.surrogate_tau,
                  scale=PAPER.surrogate_scale, model="subtract", tolerance=TOLERANCE) -> dict:
    """One neuron driven by a 0/1 spike train (T,) through one synapse ``weight``: both sides' traces (eqs 1-3).

    Returns numpy arrays ``engine_voltage``, ``engine_spikes``, ``engine_current``, ``brian2_voltage``,
    ``brian2_spikes``, ``brian2_current`` (each (T,)), ``input_spikes``, and the agreement numbers
    (``mismatches``, ``max_abs_voltage_error``, ``max_abs_current_error``, ``agree``, ...).
    """
    train = np.asarray(input_spikes, dtype=np.float64).reshape(-1, 1)
    weights, thresholds = [np.array([[float(weight)]])], [np.array([float(threshold)])]
    engine, brian2, agreement = _compare(train, weights, thresholds, current_decay, voltage_decay, model, tolerance, tau, scale)
    traces = {"input_spikes": train[:, 0]}
    for side, layers in (("engine", engine), ("brian2", brian2)):
        traces |= {f"{side}_{name}": layers[0][name][:, 0] for name in ("voltage", "spikes", "current")}
    return traces | agreement


def compare_single_neuron(input_spikes, weight, threshold, current_decay=PAPER.current_decay,
                          voltage_decay=PAPER.voltage_decay, model="subtract", tolerance=TOLERANCE) -> dict:
    """Case (a): one neuron, one input spike train (T,) through one synapse ``weight``; agreement numbers only."""
    traces = neuron_traces(threshold, current_decay, voltage_decay, input_spikes, weight, model=model, tolerance=tolerance)
    return {key: value for key, value in traces.items() if not isinstance(value, np.ndarray)}


def random_network(seed: int, steps: int = 150, sizes: Sequence[int] = (20, 25, 10), input_rate: float = 0.1,
                   near_threshold: int = 2, current_decay: float = PAPER.current_decay,
                   voltage_decay: float = PAPER.voltage_decay):
    """A random case for (b): input spike trains (T, sizes[0]), weights and per-neuron thresholds per layer.

    In every layer ``near_threshold`` neurons get Th just below the peak of the voltage they would reach without
    spiking (they fire once, barely) and as many get Th just above it (they never fire, but come within 1e-7).
    """
    rng = np.random.default_rng(seed)
    input_spikes = (rng.random((steps, sizes[0])) < input_rate).astype(np.float64)
    weights, thresholds = [], []
    layer_input = input_spikes
    for fan_in, size in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0.0, 0.5, (size, fan_in)) / np.sqrt(fan_in * input_rate)
        th = rng.uniform(0.5, 3.0, size)
        free = simulate_engine(layer_input, [w], [np.full(size, np.finfo(np.float64).max)], current_decay, voltage_decay)[0]
        peak = free["voltage"].max(axis=0)
        candidates = [i for i in rng.permutation(size) if peak[i] > 0.1][: 2 * near_threshold]
        for k, i in enumerate(candidates):
            th[i] = peak[i] + (1e-7 if k % 2 else -1e-7)
        layer_input = simulate_engine(layer_input, [w], [th], current_decay, voltage_decay)[0]["spikes"]
        weights.append(w)
        thresholds.append(th)
    return input_spikes, weights, thresholds


def compare_network(seed: int, steps: int = 150, sizes: Sequence[int] = (20, 25, 10),
                    current_decay: float = PAPER.current_decay, voltage_decay: float = PAPER.voltage_decay,
                    model: str = "subtract", tolerance: float = TOLERANCE) -> dict:
    """Case (b): input spike trains -> hidden -> output (``sizes``), random weights and thresholds from ``seed``.

    Spike trains must match in every layer; V (eq 2) and I (eq 1) within ``tolerance``.
    """
    case = random_network(seed, steps, sizes, current_decay=current_decay, voltage_decay=voltage_decay)
    _, _, agreement = _compare(*case, current_decay, voltage_decay, model, tolerance)
    return agreement | {"seed": seed, "sizes": list(sizes), "current_decay": current_decay, "voltage_decay": voltage_decay}


def run_crossval(seed: int = 0, trials: int = 5, steps: int = 150, sizes: Sequence[int] = (20, 25, 10),
                 model: str = "subtract", tolerance: float = TOLERANCE) -> dict:
    """``trials`` random networks (compare_network with seeds seed, seed+1, ...) against Brian2.

    Trial 0 uses the paper's decays (a_i = 0.75, a_v = 0.97); later trials draw a_i in [0.3, 0.9] and a_v in [0.5, 0.99].
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    results = []
    for k in range(trials):
        if k == 0:
            decays = (PAPER.current_decay, PAPER.voltage_decay)
        else:
            decays = (float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.5, 0.99)))
        results.append(compare_network(seed + k, steps, sizes, *decays, model=model, tolerance=tolerance))
    return {
        "trials": trials,
        "seed": seed,
        "model": model,
        "sizes": list(sizes),
        "neurons": results[0]["neurons"],
        "steps": steps,
        "bins_compared": sum(r["bins_compared"] for r in results),
        "spikes_compared": sum(r["spikes_compared"] for r in results),
        "mismatches": sum(r["mismatches"] for r in results),
        "max_abs_voltage_error": max(r["max_abs_voltage_error"] for r in results),
        "max_abs_current_error": max(r["max_abs_current_error"] for r in results),
        "tolerance": tolerance,
        "agree": all(r["agree"] for r in results),
        "seconds": time.perf_counter() - start,
        "per_trial": results,
    }


def format_report(report: dict) -> str:
    """A short readable summary of ``run_crossval``'s report."""
    sizes = "-".join(str(n) for n in report.get("sizes", []))
    verdict = "AGREE" if report["agree"] else "DISAGREE"
    lines = [
        f"Brian2 cross-validation of lif_scan (eqs 1-3, float64), model {report.get('model', 'subtract')!r}",
        f"  trials            {report['trials']}  (network {sizes}, seed {report.get('seed', 0)})",
        f"  neurons           {report['neurons']} per trial, {report['steps']} steps",
        f"  spikes compared   {report['spikes_compared']}  ({report.get('bins_compared', 0)} step-neuron bins)",
        f"  spike mismatches  {report['mismatches']}",
        f"  max |dV|          {report['max_abs_voltage_error']:.3g}",
        f"  max |dI|          {report['max_abs_current_error']:.3g}",
        f"  verdict           {verdict} (exact spikes, |dV| and |dI| <= {report.get('tolerance', TOLERANCE):g})",
    ]
    if "seconds" in report:
        lines.append(f"  time              {report['seconds']:.1f} s")
    return "\n".join(lines)
