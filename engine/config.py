"""Every setting of a training run, declared once, in one validated, serialisable container.

Each field carries its range or choices, its help and its dashboard label (``engine.settings.setting``): the
``rouser train`` flags, ``validate()`` and the dashboard's controls are all generated from these declarations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .errors import RouserError
from .network import INITS, PRESETS, WEIGHT_QUANTS
from .neuron import RESET_GRADS, NeuronParams, reset_stability_warning
from .settings import NO_LEGACY, Range, setting, settings

__all__ = ["TrainConfig", "ConfigError"]

_NEURON = NeuronParams()  # the neuron's defaults (paper Table 2) live in NeuronParams alone
_POSITIVE = Range(0, low_open=True)
_FRACTION = Range(0, 1, low_open=True)  # a decay in (0, 1]
_STABLE = (f"under reset_grad full keep Th * s / tau < 1 + a_v (Th < {_NEURON.max_stable_threshold:.3g} at the "
           "defaults), or gradients through the reset can grow without bound")


class ConfigError(RouserError):
    """A setting is out of its allowed range; the message names it and the range."""


def _device_ok(name: str) -> bool:
    return name == "auto" or name.split(":")[0] in ("cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run (paper Table 2 defaults where the paper gives one).

    The neuron's settings (``tau``, ``scale``, ``current_decay``, ``voltage_decay``, ``reset_grad``) are
    ``NeuronParams``' fields under the names that files and flags use; ``neuron()`` hands them to the
    network whole, and their defaults are NeuronParams' own.
    """

    # ---- data and network
    dataset: str = setting("nmnist-sim", label="dataset", help="dataset name (see `rouser datasets`)")
    data_root: str | None = setting(
        None, label="data folder", help="folder holding real datasets (default: $ROUSER_DATA)",
        no_control="a server setting: the page never names server paths (panel serve rouser_app --args --data-root)")
    preset: str = setting("quick", label="network preset", choices=tuple(PRESETS),
                          help="network preset: hidden layers and time steps (input and output follow the dataset)")
    time_steps: int | None = setting(None, label="time steps T (empty: the preset's)", range=Range(1), advanced=True,
                                     help="time steps T (default: the preset's)")
    # ---- the neuron (eqs 1-5)
    th_init: float = setting(1.25, label="Th_init (initial threshold)", range=Range(0),
                             help=f"initial firing threshold Th_init of every neuron; {_STABLE}")
    tau: float = setting(_NEURON.surrogate_tau, label="tau (surrogate steepness, eq 4)", range=_POSITIVE,
                         neuron="surrogate_tau", help="surrogate steepness tau of eq 4 (width of the gradient window)")
    scale: float = setting(_NEURON.surrogate_scale, label="s (surrogate scale, eq 4)", range=Range(0),
                           neuron="surrogate_scale", help="surrogate scale s of eq 4 (height of the gradient window)")
    reset_grad: str = setting(
        _NEURON.reset_grad, label="reset gradient", choices=RESET_GRADS, neuron="reset_grad",
        help="backward through eq 2's reset term -Th S[t-1]: full (as the equations read; bounded only while "
             "Th * s / tau < 1 + a_v) or detach (S[t-1] taken as a constant there, as lava-dl does; always bounded)")
    current_decay: float = setting(_NEURON.current_decay, label="current decay a_i = 1/tau_i (eq 1)", range=_FRACTION,
                                   neuron="current_decay", advanced=True, help="current decay a_i = 1/tau_i of eq 1")
    voltage_decay: float = setting(_NEURON.voltage_decay, label="voltage decay a_v = 1/tau_v (eq 2)", range=_FRACTION,
                                   neuron="voltage_decay", advanced=True, help="voltage decay a_v = 1/tau_v of eq 2")
    # ---- weights
    weight_scale: float = setting(1.0, label="initial weight scale (x init)", range=_POSITIVE,
                                  help="multiplies the initial weights of either --init")
    # Runs saved before `init` existed were He-normal; reading their config back (resume, saved runs) keeps them so.
    init: str = setting(
        "kaiming-uniform", label="initial weights", choices=INITS, legacy="he-normal",
        help="initial weights: kaiming-uniform, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's and lava-dl's default "
             "(the paper's SLAYER 2.0 code base); he-normal, N(0, 2/fan_in), 2.45x wider, with which the paper's "
             "2312-500-500-10 network over-fires on its first batch and its output layer dies")
    weight_norm: bool = setting(False, label="weight normalisation (Fig. 5)", advanced=True,
                                help="weight normalisation w = g v / ||v|| per neuron (paper Fig. 5)")
    weight_quant: str = setting(
        "none", label="weight quantisation", choices=WEIGHT_QUANTS,
        help="8bit: the forward pass uses weights rounded to steps of 2/64 in [-4, 3.97], lava-dl's default for "
             "CUBA blocks (not in the paper); gradients pass straight through to the float weights")
    # ---- learning
    lr: float = setting(1e-3, label="learning rate, weights", range=Range(0, note="(0 = frozen weights)"),
                        help="Adam learning rate of the weights (paper Table 2: 1e-3); 0 freezes them, so only "
                             "the thresholds learn (tuning after deployment)")
    lr_th: float = setting(1e-3, label="learning rate, thresholds", range=Range(0, note="(0 = fixed-threshold baseline)"),
                           help="Adam learning rate of the thresholds, 0 = the fixed-threshold baseline "
                                "(paper Table 2: one rate, 1e-3, for weights and thresholds)")
    epochs: int = setting(1, label="epochs", range=Range(1), help="epochs to train")
    batch_size: int = setting(32, label="batch size", range=Range(1), help="samples per batch")
    max_batches: int | None = setting(None, label="batches per epoch (empty: all)", range=Range(1),
                                      help="stop each epoch after this many batches (default: all)")
    seed: int = setting(0, label="seed", range=Range(0), help="seed of the initial weights and the batch order")
    # ---- loss (eq 6)
    true_rate: float = setting(0.5, label="target rate, labelled output", range=Range(0, 1), advanced=True,
                               help="target spike rate of the labelled output neuron (eq 6's target train)")
    false_rate: float = setting(0.0, label="target rate, other outputs", range=Range(0, 1), advanced=True,
                                help="target spike rate of the other output neurons")
    loss_tau: float = setting(5.0, label="loss filter time constant", range=_POSITIVE, advanced=True,
                              help="time constant of the van Rossum filter H of eq 6, in steps")
    # ---- where and how it runs
    device: str = setting("auto", label="device", check=_device_ok, allowed="auto, cpu or cuda[:N]",
                          help="auto, cpu or cuda[:N]",
                          no_control="a server setting: the dashboard trains on the server's own device")
    raster_every: int = setting(0, label="raster every n batches", range=Range(0),
                                help="attach the probe sample's raster to every n-th batch event (0: never)",
                                no_flag="the command line shows no rasters",
                                no_control="the dashboard picks it from the network's size (raster_interval)")

    def neuron(self) -> NeuronParams:
        """The neuron's parameters, whole, as ``lif_scan`` takes them."""
        fields = settings(type(self))
        return NeuronParams(**{meta.neuron: getattr(self, name) for name, meta, _, _ in fields if meta.neuron})

    def stability_warning(self) -> str | None:
        """One line when Th_init * s / tau >= 1 + a_v under reset_grad full (gradients may explode), else None."""
        return reset_stability_warning(self.th_init, self.neuron())

    def with_(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Flat: one key per field, as history, checkpoints and summary.json store it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Read a stored config; unknown keys are ignored, a missing key takes its ``legacy`` value or the default."""
        values = {}
        for name, meta, _, _ in settings(cls):
            if name in data:
                values[name] = data[name]
            elif meta.legacy is not NO_LEGACY:
                values[name] = meta.legacy
        return cls(**values)

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming the first parameter out of range: "<name> must be <range>, got <value>"."""
        for name, meta, kind, optional in settings(type(self)):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if kind in (int, float) and value is not None and not number:
                raise ConfigError(f"{name} must be a number, got {value!r}")
            message = meta.problem(name, value, kind, optional)
            if message:
                raise ConfigError(message)
        try:
            self.neuron().validate()  # the scan's own check, should NeuronParams ever be stricter
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self
