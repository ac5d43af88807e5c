"""Each training setting is declared once, on TrainConfig; the `rouser train` flags, `validate()` and the dashboard's
controls are generated from that declaration and agree on every range and choice (no browser needed)."""

from dataclasses import dataclass, fields

import pytest

from engine import cli
from engine.config import ConfigError, TrainConfig
from engine.neuron import NeuronParams
from engine.settings import Range, add_arguments, given_arguments, setting, settings
from rouser_app.controls import RunControls
from rouser_app.setting_controls import control_range, parameters, problem
from rouser_app.settings import Settings

SERVER = Settings(default_dataset="patterns", max_epochs=10**9, max_batch_size=10**9)  # server caps out of the way
ALL = settings(TrainConfig)
NUMBERS = [row for row in ALL if row[2] in (int, float)]
CHOICES = [row for row in ALL if row[1].choices]


def _train_parser():
    parser = cli._Parser(prog="rouser")
    sub = parser.add_subparsers(dest="command", parser_class=cli._Parser)
    cli._add_train(sub)
    return parser, sub.choices["train"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cli_config(*argv) -> TrainConfig:
    """The config `rouser train ARGV` would train with (ConfigError when refused)."""
    return cli._train_config(_train_parser()[0].parse_args(["train", *argv]))[0]


def _accepted(check) -> bool:
    try:
        check()
    except (ConfigError, ValueError):
        return False
    return True


def _probes(rng: Range, kind: type) -> list:
    """Each bound, and a step to either side of it."""
    step = 1 if kind is int else 1e-6
    return [b + d for b in (rng.low, rng.high) if b is not None for d in (-step, 0, step)]


@pytest.fixture(scope="module")
def controls():
    return RunControls(settings=SERVER, compare=False)


def test_every_field_is_declared_with_its_help_label_and_range_or_choices():
    for name, meta, kind, _ in ALL:
        assert meta.help and meta.label, name
        assert kind in (int, float, str, bool), name
        if kind in (int, float):
            assert meta.range is not None, f"{name}: a number needs a range"
        for reason in (meta.no_flag, meta.no_control):
            assert reason == "" or len(reason.split()) >= 4, f"{name}: say why it is left out"

    @dataclass(frozen=True)
    class Undeclared:
        x: int = 1

    with pytest.raises(TypeError, match="without setting"):
        settings(Undeclared)


def test_every_field_has_a_cli_flag_and_a_dashboard_control_unless_it_says_why_not(controls):
    _, train = _train_parser()
    flags = {a.dest: a for a in train._actions}
    for name, meta, kind, _ in ALL:
        if meta.no_flag:
            assert name not in flags
        else:
            assert _flag(name) in flags[name].option_strings and flags[name].help.startswith(meta.help[:30])
        if meta.no_control:
            assert name not in controls.param
        else:
            p = controls.param[name]
            assert (p.label, p.doc) == (meta.label, meta.help)  # the widget's label and tooltip
    assert len([r for r in ALL if not r[1].no_flag and not r[1].no_control]) >= len(ALL) - 3


@pytest.mark.parametrize("name", [row[0] for row in NUMBERS])
def test_a_number_has_the_same_range_on_the_command_line_in_validate_and_on_the_page(name, controls):
    _, meta, kind, optional = next(row for row in NUMBERS if row[0] == name)
    if not meta.no_control:
        assert controls.param[name].softbounds == (meta.range.low, meta.range.high)
    for value in _probes(meta.range, kind):
        expected = value in meta.range
        assert _accepted(lambda: TrainConfig().with_(**{name: value}).validate()) == expected, value
        if not meta.no_flag:
            assert _accepted(lambda: _cli_config(f"{_flag(name)}={value}")) == expected, value
        if not meta.no_control:
            assert (problem(name, value, SERVER) is None) == expected, value
            setattr(controls, name, value)
            assert (name not in controls.errors) == expected, (value, controls.errors)
            setattr(controls, name, getattr(TrainConfig(), name))
    # the same message everywhere: "<name> must be <range>, got <value>"
    low = meta.range.low if meta.range.low is not None else meta.range.high
    bad = low - (1 if kind is int else 0.5)
    with pytest.raises(ConfigError) as refused:
        TrainConfig().with_(**{name: bad}).validate()
    assert str(refused.value).startswith(f"{name} must be {meta.range.text()}, got ")
    if not meta.no_control and name not in SERVER.caps:  # a capped range names its cap (see below)
        assert problem(name, bad, SERVER) == str(refused.value)


@pytest.mark.parametrize("name", [row[0] for row in CHOICES])
def test_a_choice_offers_the_same_options_on_the_command_line_in_validate_and_on_the_page(name, controls):
    meta = next(row[1] for row in CHOICES if row[0] == name)
    _, train = _train_parser()
    flag = next(a for a in train._actions if a.dest == name)
    assert flag.metavar == "{" + ",".join(meta.choices) + "}"
    assert controls.param[name].objects == list(meta.choices)
    for choice in meta.choices:
        assert getattr(_cli_config(_flag(name), choice), name) == choice
        TrainConfig().with_(**{name: choice}).validate()
    message = f"unknown {name} 'nope'; choose one of: {', '.join(meta.choices)}"
    with pytest.raises(ConfigError, match=message):
        _cli_config(_flag(name), "nope")


def test_the_page_offers_only_datasets_the_engine_knows(controls):
    from engine.data import dataset_names

    assert set(controls.param.dataset.objects) <= set(dataset_names()) and "patterns" in controls.param.dataset.objects


def test_the_server_may_only_lower_an_upper_end():
    server = Settings(default_dataset="patterns", max_epochs=50, max_batch_size=256)
    assert control_range("epochs", server) == Range(1, 50) and control_range("lr", server) == Range(0, note="(0 = frozen weights)")
    assert problem("epochs", 51, server) == "epochs must be in [1, 50], got 51"
    assert problem("epochs", 51, SERVER) is None


def test_defaults_live_in_one_place(controls):
    assert TrainConfig().neuron() == NeuronParams()  # the neuron's defaults are NeuronParams' own
    assert _cli_config() == TrainConfig()  # no flag: TrainConfig's defaults
    fresh = RunControls(settings=SERVER)
    for name, value in fresh.param.values().items():
        if name in {f.name for f in fields(TrainConfig)} and name != "dataset":
            assert value == getattr(TrainConfig(), name), name
    from rouser_app.neuron_view import NeuronView

    view = NeuronView()
    assert (view.current_decay, view.voltage_decay, view.tau, view.scale) == (
        NeuronParams().current_decay, NeuronParams().voltage_decay, NeuronParams().surrogate_tau,
        NeuronParams().surrogate_scale)


def test_the_neuron_settings_have_the_neurons_own_ranges():
    for name, meta, kind, _ in ALL:
        if not meta.neuron:
            continue
        values = meta.choices + ("nope",) if meta.choices else _probes(meta.range, kind)
        for value in values:
            expected = value in (meta.choices or meta.range)
            assert _accepted(lambda: NeuronParams(**{meta.neuron: value}).validate()) == expected, (name, value)
            assert _accepted(lambda: TrainConfig().with_(**{name: value}).validate()) == expected, (name, value)
    config = TrainConfig(tau=2.0, scale=0.5, current_decay=0.6, voltage_decay=0.9, reset_grad="detach")
    assert config.neuron() == NeuronParams(0.6, 0.9, 2.0, 0.5, "detach")


def test_stored_configs_read_back_both_ways():
    config = TrainConfig(th_init=2.0, init="he-normal", weight_quant="8bit", reset_grad="detach", lr_th=0.05)
    data = config.to_dict()
    assert all(not isinstance(v, dict) for v in data.values())  # flat, as summary.json and checkpoints store it
    old_keys = {"dataset", "data_root", "preset", "th_init", "tau", "scale", "current_decay", "voltage_decay", "lr",
                "lr_th", "epochs", "batch_size", "time_steps", "seed", "device", "weight_norm", "weight_scale",
                "true_rate", "false_rate", "loss_tau", "max_batches", "raster_every"}
    assert old_keys | {"init", "weight_quant", "reset_grad"} == set(data)
    assert TrainConfig.from_dict(data | {"unknown": 1}) == config
    old = {k: v for k, v in TrainConfig(lr_th=0.01).to_dict().items() if k in old_keys}
    read = TrainConfig.from_dict(old)  # a run saved before init, weight_quant and reset_grad existed
    assert (read.init, read.weight_quant, read.reset_grad, read.lr_th) == ("he-normal", "none", "full", 0.01)


def test_the_stability_bound_is_documented_and_warned_about(controls):
    bound = NeuronParams().max_stable_threshold  # (1 + a_v) tau / s
    assert TrainConfig(th_init=bound * 0.99).stability_warning() is None
    assert "1 + a_v" in TrainConfig(th_init=bound).stability_warning()
    assert TrainConfig(th_init=8.0, reset_grad="detach").stability_warning() is None
    meta = {name: m for name, m, _, _ in ALL}
    assert "Th * s / tau < 1 + a_v" in meta["th_init"].help and "Th * s / tau < 1 + a_v" in meta["reset_grad"].help
    controls.th_init = 8.0
    assert "1 + a_v" in controls.reset_warning and controls.valid  # a warning, not an error
    controls.reset_grad = "detach"
    assert controls.reset_warning == ""
    controls.param.update(th_init=TrainConfig().th_init, reset_grad=TrainConfig().reset_grad)


def test_adding_a_setting_is_one_field():
    @dataclass(frozen=True)
    class Extended(TrainConfig):
        dropout: float = setting(0.0, label="input dropout", range=Range(0, 1), help="fraction of input spikes dropped")

    parser = cli._Parser(prog="x")
    add_arguments(parser, Extended)
    assert given_arguments(parser.parse_args(["--dropout", "0.25"]), Extended) == {"dropout": 0.25}
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\], got 2"):
        Extended(dropout=2.0).validate()
    made = parameters(Extended)["dropout"]
    assert (made.default, made.softbounds, made.label) == (0.0, (0, 1), "input dropout")
    assert Extended.from_dict(Extended(dropout=0.5).to_dict()).dropout == 0.5
