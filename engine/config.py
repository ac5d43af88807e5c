"""Every setting of a training run, in one validated, serialisable container."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from .errors import RouserError
from .neuron import NeuronParams

__all__ = ["TrainConfig", "ConfigError"]


class ConfigError(RouserError):
    """A setting is out of its allowed range; the message names it and the range."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run (paper Table 2 defaults where the paper gives one)."""

    dataset: str = "nmnist-sim"
    data_root: str | None = None
    preset: str = "quick"
    th_init: float = 1.25  # initial threshold Th_init
    tau: float = 3.75  # surrogate steepness (eq 4)
    scale: float = 1.5  # surrogate scale s (eq 4)
    current_decay: float = 0.75  # 1/tau_i (eq 1)
    voltage_decay: float = 0.97  # 1/tau_v (eq 2)
    lr: float = 1e-3  # Adam learning rate of the weights
    lr_th: float = 1e-2  # Adam learning rate of the thresholds; 0 = fixed-threshold baseline
    epochs: int = 1
    batch_size: int = 32
    time_steps: int | None = None  # None: the preset's
    seed: int = 0
    device: str = "auto"
    weight_norm: bool = False
    weight_scale: float = 1.0  # multiplies the Kaiming standard deviation
    true_rate: float = 0.5  # target spike rate of the labelled output neuron
    false_rate: float = 0.0  # target spike rate of the other output neurons
    loss_tau: float = 5.0  # time constant of the loss filter H, in steps
    max_batches: int | None = None  # stop each epoch after this many batches (short demos)
    raster_every: int = 0  # attach the probe sample's raster to every n-th batch event (0: never)

    def neuron(self) -> NeuronParams:
        return NeuronParams(self.current_decay, self.voltage_decay, self.tau, self.scale)

    def with_(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming the first parameter out of range."""
        try:
            self.neuron().validate()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        finite = ("th_init", "tau", "scale", "current_decay", "voltage_decay", "lr", "lr_th", "weight_scale", "loss_tau")
        for name in finite:
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number, got {getattr(self, name)}")
        checks = [
            ("lr", self.lr > 0, "> 0"),
            ("lr_th", self.lr_th >= 0, ">= 0 (0 = fixed-threshold baseline)"),
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("time_steps", self.time_steps is None or self.time_steps >= 1, ">= 1"),
            ("weight_scale", self.weight_scale > 0, "> 0"),
            ("true_rate", 0 <= self.true_rate <= 1, "in [0, 1]"),
            ("false_rate", 0 <= self.false_rate <= 1, "in [0, 1]"),
            ("loss_tau", self.loss_tau > 0, "> 0"),
            ("max_batches", self.max_batches is None or self.max_batches >= 1, ">= 1"),
            ("raster_every", self.raster_every >= 0, ">= 0"),
            ("device", self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"), "auto, cpu or cuda[:N]"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name} must be {allowed}, got {getattr(self, name)}")
        return self
