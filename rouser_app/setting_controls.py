"""One dashboard control per TrainConfig setting, generated from the setting's declaration (engine.settings).

The declaration gives the param (its default, its soft bounds or choices, its label and its doc, which the widget
shows as a tooltip), the widget and the message beside it. The server may lower a setting's upper end
(``Settings.caps``: epochs, batch size); nothing else differs from ``rouser train``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import panel as pn
import param

from engine.config import TrainConfig
from engine.settings import Range, settings

from .settings import Settings

__all__ = ["CONTROLS", "NAMES", "control_range", "controls_of", "parameters", "problem", "setting_widget"]


def controls_of(cls) -> list:
    """(name, Setting, kind, optional) of every setting of ``cls`` the page offers, in declaration order."""
    return [row for row in settings(cls) if not row[1].no_control]


CONTROLS = controls_of(TrainConfig)
NAMES = tuple(row[0] for row in CONTROLS)
_BY_NAME = {row[0]: row for row in CONTROLS}


def parameters(cls=TrainConfig) -> dict[str, param.Parameter]:
    """A param Parameter per control: defaults from TrainConfig, soft bounds from the range, choices, label, doc.

    Numbers keep no hard bounds, so an out-of-range value typed by a visitor reaches ``problem`` and is shown
    beside its control instead of being refused silently. A text setting without declared choices (the dataset)
    becomes a Selector whose options the server fills in.
    """
    defaults = cls()
    out = {}
    for name, meta, kind, optional in controls_of(cls):
        value = getattr(defaults, name)
        common = dict(doc=meta.help, label=meta.label)
        if kind is bool:
            out[name] = param.Boolean(value, **common)
        elif kind is str:
            out[name] = param.Selector(objects=list(meta.choices or [value]), default=value, **common)
        else:
            rng = meta.range or Range()
            number = param.Integer if kind is int else param.Number
            out[name] = number(value, allow_None=True, softbounds=(rng.low, rng.high), **common)
    return out


def control_range(name: str, server: Settings) -> Range | None:
    """The range the page enforces: the declared one, its upper end lowered to the server's cap if it has one."""
    meta = _BY_NAME[name][1]
    return None if meta.range is None else meta.range.capped(server.caps.get(name))


def problem(name: str, value, server: Settings) -> str | None:
    """The message beside control ``name`` when ``value`` is not allowed (the CLI's message), else None."""
    _, meta, kind, optional = _BY_NAME[name]
    rng = control_range(name, server)
    if value is None and not optional:
        return f"{name}: enter a number {rng.text() if rng else ''}".rstrip()
    if kind is float and value is not None and not math.isfinite(value):
        return f"{name}: enter a number {rng.text()}"
    return (replace(meta, range=rng) if rng else meta).problem(name, value, kind, optional)


def _step(default) -> float:
    """Arrow-key step of a number box: 0.05, or the default's own decade for small defaults (1e-3 for lr)."""
    return 0.05 if not default or default >= 0.1 else 10 ** math.floor(math.log10(default))


def setting_widget(owner: param.Parameterized, name: str, server: Settings):
    """The widget of setting ``name`` on ``owner`` (a select, a checkbox or a number box labelled with its range)."""
    _, meta, kind, optional = _BY_NAME[name]
    css = [f"rouser-input-{name}"]
    parameter = owner.param[name]
    if kind is bool:
        return pn.widgets.Checkbox.from_param(parameter, name=meta.label, css_classes=css)
    if kind is str:
        return pn.widgets.Select.from_param(parameter, name=meta.label, sizing_mode="stretch_width", css_classes=css)
    rng = control_range(name, server)
    label = f"{meta.label}: {replace(rng, note='').text()}" if rng else meta.label  # the note is in the tooltip
    extra = dict(step=1) if kind is int else dict(step=_step(parameter.default), format="0[.]0000")
    if optional:
        extra["placeholder"] = "empty: default"
    widget = pn.widgets.IntInput if kind is int else pn.widgets.FloatInput
    # start/end stay unset: a typed value outside the range must reach the message, not be clamped by the browser
    return widget.from_param(parameter, name=label, start=None, end=None, sizing_mode="stretch_width",
                             css_classes=css, **extra)

