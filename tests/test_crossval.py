"""The engine's lif_scan (eqs 1-3) against the same neuron built in Brian2, float64 (engine/crossval.py)."""

import builtins
import subprocess
import sys

import numpy as np
import pytest

from engine import crossval
from engine.crossval import (
    Brian2Unavailable,
    compare_network,
    compare_single_neuron,
    current_trace,
    format_report,
    neuron_traces,
    run_crossval,
)
from engine.errors import RouserError

T = 16


def _train(*steps, length=T):
    """A 0/1 input spike train of ``length`` steps with spikes at ``steps``."""
    spikes = np.zeros(length)
    spikes[list(steps)] = 1.0
    return spikes


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_networks_agree_spike_for_spike(seed):
    result = compare_network(seed, current_decay=0.75 if seed < 2 else 0.5, voltage_decay=0.97 if seed < 2 else 0.8)
    assert result["agree"], result
    assert result["mismatches"] == 0
    assert result["max_abs_voltage_error"] <= 1e-9 and result["max_abs_current_error"] <= 1e-9
    assert 0 < result["engine_spike_count"] == result["brian2_spike_count"] < result["bins_compared"]


def test_run_crossval_report():
    report = run_crossval(seed=5, trials=3)
    for key in ("trials", "neurons", "steps", "spikes_compared", "mismatches", "max_abs_voltage_error",
                "max_abs_current_error", "agree"):
        assert key in report
    assert report["agree"] and report["trials"] == 3 and report["mismatches"] == 0 and report["spikes_compared"] > 0
    text = format_report(report)
    assert "AGREE" in text and "DISAGREE" not in text and "spikes compared" in text and "max |dV|" in text


def test_consecutive_spikes():
    """Strong drive on every step: the neuron fires on consecutive steps, each reset subtracting Th (eq 2)."""
    result = neuron_traces(0.5, 0.75, 0.97, np.ones(T), 0.8)
    spikes = result["engine_spikes"]
    assert (spikes[1:] * spikes[:-1]).sum() >= 3
    assert result["agree"] and np.array_equal(spikes, result["brian2_spikes"])


@pytest.mark.parametrize("weight, threshold", [(-0.7, 0.5), (0.3, 50.0)])
def test_never_spikes(weight, threshold):
    result = compare_single_neuron(_train(0, 2, 3, 7, 8, 9), weight, threshold)
    assert result["engine_spike_count"] == result["brian2_spike_count"] == 0
    assert result["agree"]


def test_voltage_exactly_at_threshold_spikes_in_both():
    """a_i = 0.5, a_v = 1, w = 1 from t = 0 gives I = 1, 0.5, 0.25 and V[4] = 1.75 exactly: V >= Th fires (eq 3)."""
    result = neuron_traces(1.75, 0.5, 1.0, _train(0), 1.0)
    assert result["engine_voltage"][4] == 1.75 and result["engine_spikes"].tolist().index(1.0) == 4
    assert result["agree"] and np.array_equal(result["engine_spikes"], result["brian2_spikes"])
    later = neuron_traces(1.75 + 1e-12, 0.5, 1.0, _train(0), 1.0)  # a hair above V[4]: first spike at t = 5
    assert later["engine_spikes"].tolist().index(1.0) == later["brian2_spikes"].tolist().index(1.0) == 5
    assert later["agree"]


def test_inputs_at_first_and_last_step_and_spike_at_last_step():
    """Input at t = 0 reaches I at t = 1 and V at t = 2 (eqs 1-2); input at T-3 makes V cross at T-1."""
    weight = 1.2
    result = neuron_traces(1.0, 0.75, 0.97, _train(0, T - 3, T - 1), weight)
    for side in ("engine", "brian2"):
        assert result[f"{side}_current"][0] == 0 and result[f"{side}_current"][1] == weight
        assert result[f"{side}_voltage"][1] == 0 and result[f"{side}_voltage"][2] == weight
        assert result[f"{side}_spikes"][2] == 1 and result[f"{side}_spikes"][-1] == 1
    assert result["agree"]


@pytest.mark.parametrize("threshold", [0.0, -0.5])
def test_non_positive_threshold_at_t0(threshold):
    """States are zero before t = 0 (S[-1] = 0), so V[0] = 0 in both even when Th <= 0 fires at once."""
    result = neuron_traces(threshold, 0.75, 0.9, _train(3), 0.4)
    assert result["engine_voltage"][0] == result["brian2_voltage"][0] == 0
    assert result["engine_spikes"][0] == result["brian2_spikes"][0] == 1
    assert result["agree"]


def test_wrong_model_reset_to_zero_disagrees():
    network = compare_network(0, model="reset_to_zero")
    assert not network["agree"] and network["mismatches"] > 0 and network["max_abs_voltage_error"] > 1e-3
    single = compare_single_neuron(np.ones(T), 0.8, 0.5, model="reset_to_zero")
    assert not single["agree"] and single["max_abs_voltage_error"] > 1e-3
    report = run_crossval(trials=1, model="reset_to_zero")
    assert not report["agree"] and "DISAGREE" in format_report(report)


def test_neuron_traces_overlay():
    spikes = (np.random.default_rng(3).random(60) < 0.3).astype(float)
    result = neuron_traces(1.1, 0.75, 0.97, spikes, 0.6, tau=1.0, scale=0.5)
    for name in ("voltage", "spikes", "current"):
        engine, brian2 = result[f"engine_{name}"], result[f"brian2_{name}"]
        assert isinstance(engine, np.ndarray) and engine.shape == brian2.shape == (60,)
        assert np.allclose(engine, brian2, atol=1e-12, rtol=0)
    assert result["engine_spikes"].sum() > 0 and result["agree"]
    assert np.array_equal(result["input_spikes"], spikes)
    assert np.allclose(result["engine_current"], current_trace(0.6 * spikes, 0.75))


def test_current_trace_is_eq1():
    assert current_trace(np.array([2.0, 0.0, 1.0, 0.0]), 0.5).tolist() == [0.0, 2.0, 1.0, 1.5]


def test_bad_inputs():
    with pytest.raises(ValueError, match="0 and 1"):
        compare_single_neuron(np.array([0.0, 2.0, 1.0]), 1.0, 1.0)
    with pytest.raises(ValueError, match="model"):
        compare_single_neuron(np.ones(4), 1.0, 1.0, model="nope")


def test_brian2_prefs_restored():
    import brian2

    brian2.prefs["codegen.target"] = "auto"
    compare_single_neuron(_train(1), 1.0, 0.5)
    assert brian2.prefs["codegen.target"] == "auto"


@pytest.mark.parametrize("failure", [ImportError("No module named 'brian2'"), AttributeError("'ndarray' has no attribute 'ptp'")])
def test_missing_brian2_one_line_message(monkeypatch, failure):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "brian2" or name.startswith("brian2."):
            raise failure
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(Brian2Unavailable) as info:
        neuron_traces(1.0, 0.75, 0.97, _train(0), 1.0)
    message = str(info.value)
    assert isinstance(info.value, RouserError)
    assert "\n" not in message and 'pip install "brian2>=2.9" "numpy<2.4"' in message


def test_engine_imports_without_brian2():
    code = "import sys; sys.modules['brian2'] = None; import engine.crossval, engine; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
    assert crossval.MODELS.keys() >= {"subtract", "reset_to_zero"}
