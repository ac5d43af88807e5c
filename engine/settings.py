"""A setting declared once: its range or choices, its help and its label, in a dataclass field's metadata.

``setting(default, help=..., label=..., range=Range(...))`` (or ``choices=(...)``) returns a dataclass field whose
metadata holds a ``Setting``. Everything else is generated from it: the command-line flags (``add_arguments``,
``given_arguments``), the validation (``Setting.problem``, used by ``TrainConfig.validate``) and, in
``rouser_app``, the dashboard's parameters, widgets and messages. Adding a setting is one field.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

__all__ = ["NO_LEGACY", "Range", "Setting", "add_arguments", "field_type", "given_arguments", "setting", "settings"]


def show(value) -> str:
    """A value as messages print it: numbers without trailing zeros, strings quoted."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


class _NoLegacy:
    """Marks a setting that older files never lacked (a missing key then takes the field's default)."""

    def __repr__(self) -> str:
        return "NO_LEGACY"


NO_LEGACY = _NoLegacy()


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers; ``None`` leaves that side open-ended, ``*_open`` excludes the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # said after the range in messages, e.g. "(0 = fixed-threshold baseline)"

    def __contains__(self, value) -> bool:
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        """``> 0``, ``>= 1``, ``in (0, 1]`` ... as the messages say it."""
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{show(self.low)}, {show(self.high)}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {show(self.low)}"
        elif self.high is not None:
            text = f"{'<' if self.high_open else '<='} {show(self.high)}"
        else:
            text = "any number"
        return f"{text} {self.note}" if self.note else text

    def capped(self, high: float | None) -> "Range":
        """The same range with its upper end lowered to ``high`` (a server's limit), when that is lower."""
        if high is None or (self.high is not None and self.high <= high):
            return self
        return replace(self, high=high, high_open=False)


@dataclass(frozen=True)
class Setting:
    """What one field of a settings dataclass allows and how people are told about it.

    ``help`` is the CLI help and the dashboard's tooltip; ``label`` the dashboard's label. A number field has a
    ``range``; a text field may have ``choices``, or a ``check`` with the words ``allowed`` for its message.
    ``no_flag`` / ``no_control`` give the reason a field has no CLI flag / dashboard control (empty: it has one).
    ``legacy`` is the value assumed when a file written before the setting existed lacks its key.
    ``neuron`` names the ``NeuronParams`` attribute the field feeds; ``advanced`` tucks the control away.
    """

    help: str
    label: str
    range: Range | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], bool] | None = None
    allowed: str = ""
    no_flag: str = ""
    no_control: str = ""
    legacy: Any = NO_LEGACY
    neuron: str | None = None
    advanced: bool = False

    def problem(self, name: str, value, kind: type, optional: bool) -> str | None:
        """The one-line message "<name> must be <range>, got <value>" when ``value`` is not allowed, else None."""
        if value is None:
            return None if optional else f"{name} must be {self.allowed_text()}, got None"
        if kind is float and not math.isfinite(value):
            return f"{name} must be a finite number, got {value}"
        if self.range is not None and value not in self.range:
            return f"{name} must be {self.range.text()}, got {show(value)}"
        if self.choices is not None and value not in self.choices:
            return f"unknown {name} {value!r}; choose one of: {', '.join(self.choices)}"
        if self.check is not None and not self.check(value):
            return f"{name} must be {self.allowed}, got {value}"
        return None

    def allowed_text(self) -> str:
        if self.range is not None:
            return self.range.text()
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        return self.allowed or "set"


def setting(default, *, help: str, label: str, **spec) -> Any:
    """A dataclass field with ``default`` whose metadata holds ``Setting(help, label, **spec)``."""
    meta = Setting(help=help, label=label, **spec)
    if meta.range is not None and meta.choices is not None:
        raise TypeError("a setting has a range or choices, not both")
    return field(default=default, metadata={"setting": meta})


def field_type(cls, name: str) -> tuple[type, bool]:
    """(float, int, str or bool; whether None is allowed) of field ``name`` from its annotation."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else ()
    if args:
        kinds = [a for a in args if a is not type(None)]
        return kinds[0], type(None) in args
    return hint, False


def settings(cls) -> list[tuple[str, Setting, type, bool]]:
    """Every field of ``cls`` as (name, Setting, kind, optional); a field without a Setting is an error."""
    out = []
    for f in fields(cls):
        meta = f.metadata.get("setting")
        if meta is None:
            raise TypeError(f"{cls.__name__}.{f.name} is declared without setting(...) metadata")
        out.append((f.name, meta, *field_type(cls, f.name)))
    return out


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field of ``cls`` (``--th-init`` for ``th_init``) with its help and default; unset flags stay None."""
    defaults = cls()
    for name, meta, kind, _ in settings(cls):
        if meta.no_flag:
            continue
        default = getattr(defaults, name)
        text = meta.help if default is None or kind is bool else f"{meta.help} (default {default})"
        text = text.replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag(name), action="store_true", default=None, help=text)
            continue
        metavar = "{" + ",".join(meta.choices) + "}" if meta.choices else None
        parser.add_argument(flag(name), type=kind, default=None, metavar=metavar, help=text)


def given_arguments(args: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` whose flags were given on the command line."""
    names = [name for name, meta, _, _ in settings(cls) if not meta.no_flag]
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
