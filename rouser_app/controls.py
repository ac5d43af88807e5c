"""The run's settings as validated parameters, with a message beside any control that holds an invalid value.

Every TrainConfig setting the page offers comes from its declaration in ``engine.config`` (see
``setting_controls``); this module adds the page's own: the one-click settings, compare, and the layout.
"""

from __future__ import annotations

import panel as pn
import param

from engine.config import ConfigError, TrainConfig
from engine.network import PRESETS

from .map_data import cell_label, cell_settings, shipped_presets
from .setting_controls import CONTROLS, NAMES, parameters, problem, setting_widget
from .settings import Settings

__all__ = ["CLASSROOM", "RunControls", "PAPER_SETTINGS", "available_datasets", "dataset_classes", "raster_interval"]

# One-click (Th_init, tau, s) settings from the paper.  The two sub-optimal ones are Fig. 4 / Fig. 11's;
# the good one takes Fig. 3's best NMNIST threshold (Th = 1) with Table 2's surrogate (tau 3.75, s 1.5).
PAPER_SETTINGS = {
    "Sub-optimal (1.25, 3.75, 1.5)": dict(th_init=1.25, tau=3.75, scale=1.5),
    "Sub-optimal (0.25, 3, 3)": dict(th_init=0.25, tau=3.0, scale=3.0),
    "Good (1.0, 3.75, 1.5)": dict(th_init=1.0, tau=3.75, scale=1.5),
}
# Classroom presets, not from the paper: the cells of the shipped rousing map where Rouser's output became fully
# active and the fixed threshold's did not (or, if the map has none, its strongest contrasts), each with the numbers
# measured there; a cell's settings say where they depart from the paper (its regime: learning rates, quantisation).
CLASSROOM = {f"Classroom: {cell_label(c)}": c for c in shipped_presets()}
# What a one-click setting leaves at TrainConfig's defaults unless it says otherwise
_KEPT_AT_DEFAULT = ("weight_scale", "init", "weight_quant", "reset_grad", "lr", "lr_th")
_NEURON_NAMES = ("th_init",) + tuple(name for name, meta, _, _ in CONTROLS if meta.neuron)


def available_datasets(data_root: str | None = None) -> list[str]:
    """Every embedded dataset and the real ones found under the data root (missing ones are left out)."""
    import engine.data as data

    listing = getattr(data, "list_datasets", None)
    if listing is None:  # older engine: every registered name is loadable
        return list(data.dataset_names())
    try:
        rows = listing(data_root)
    except Exception:  # a broken data root must not break the page
        return [r for r in data.dataset_names()]
    return [row["name"] for row in rows if row.get("status") != "missing"]


def dataset_classes(name: str, data_root: str | None = None) -> int | None:
    """Number of classes (output neurons) of dataset ``name`` as listed by the engine, or None when unknown."""
    import engine.data as data

    listing = getattr(data, "list_datasets", None)
    try:
        rows = listing(data_root) if listing else []
    except Exception:
        return None
    return next((row.get("classes") for row in rows if row.get("name") == name), None)


def raster_interval(preset: str, time_steps: int | None = None) -> int:
    """How often (in batches) the probe sample's raster is sent: every batch for small nets, up to every 5th."""
    p = PRESETS.get(preset)
    if p is None:
        return 1
    cells = sum(p.hidden) * (time_steps or p.time_steps)
    return int(min(5, max(1, round(cells / 30_000))))


_Generated = param.parameterized_class("TrainSettings", parameters(), bases=pn.viewable.Viewer)


class RunControls(_Generated):
    """Every setting of a run the page may change; ``config()`` turns them into a validated TrainConfig.

    One parameter per TrainConfig setting (generated from its declaration), plus ``compare``.
    """

    compare = param.Boolean(True, doc="train the fixed-threshold baseline (lr_th = 0) beside Rouser")
    errors = param.Dict(default={}, doc="parameter name -> message for every invalid control")
    reset_warning = param.String("", doc="the reset-gradient stability warning when Th_init * s / tau >= 1 + a_v")
    valid = param.Boolean(True)
    settings = param.ClassSelector(class_=Settings, default=Settings())

    def __init__(self, **params):
        super().__init__(**params)
        names = available_datasets(self.settings.data_root)
        default = self.settings.default_dataset or TrainConfig().dataset
        self.param.dataset.objects = names
        if names and ("dataset" not in params or self.dataset not in names):
            self.dataset = default if default in names else names[0]
        self._view = None
        self._check()

    # ------------------------------------------------------------------ validation
    def _field_errors(self) -> dict:
        errors = {}
        for name in NAMES:
            message = problem(name, getattr(self, name), self.settings)
            if message:
                errors[name] = message
        if "lr_th" not in errors and self.compare and self.lr_th == 0:
            errors["lr_th"] = "lr_th must be > 0 to compare with the fixed-threshold run (or untick compare)"
        if self.dataset is None:
            errors["dataset"] = "no dataset is available on this server"
        return errors

    def _values(self, names) -> dict:
        kinds = {name: kind for name, _, kind, _ in CONTROLS}
        values = {name: getattr(self, name) for name in names}
        return {n: v if v is None or kinds[n] in (str, bool) else kinds[n](v) for n, v in values.items()}

    def _build(self) -> TrainConfig:
        return TrainConfig(**self._values(NAMES), data_root=self.settings.data_root,
                           raster_every=raster_interval(self.preset, self.time_steps))

    def _stability_warning(self, errors: dict) -> str:
        if any(name in errors for name in _NEURON_NAMES):
            return ""
        return TrainConfig(**self._values(_NEURON_NAMES)).stability_warning() or ""

    @param.depends(*NAMES, "compare", watch=True)
    def _check(self) -> None:
        errors = self._field_errors()
        if not errors:
            try:
                self._build().validate()
            except ConfigError as exc:  # a rule beyond each field's own range
                errors["general"] = str(exc)
        self.reset_warning = self._stability_warning(errors)
        self.errors = errors
        self.valid = not errors

    def config(self) -> TrainConfig:
        """The validated TrainConfig; raises ConfigError with the first message when a value is invalid."""
        self._check()
        if self.errors:
            raise ConfigError(next(iter(self.errors.values())))
        return self._build().validate()

    def apply(self, name: str) -> None:
        """Set one of the PAPER_SETTINGS (which keep the weights' and rates' defaults) or CLASSROOM presets by name."""
        if name in CLASSROOM:
            self.param.update(**cell_settings(CLASSROOM[name], self.param.dataset.objects))
            return
        defaults = TrainConfig()
        self.param.update(**({n: getattr(defaults, n) for n in _KEPT_AT_DEFAULT} | PAPER_SETTINGS[name]))

    # ------------------------------------------------------------------ view
    def _message_pane(self, text, visible, css: str, color: str):
        return pn.pane.Str(text, visible=visible, css_classes=css.split(), margin=(0, 10, 4, 10),
                           styles={"color": color, "font-size": "12px", "white-space": "normal"},
                           stylesheets=["pre { white-space: pre-wrap; }"], sizing_mode="stretch_width")

    def _error_pane(self, name: str):
        return self._message_pane(pn.bind(lambda e: e.get(name, ""), self.param.errors),
                                  pn.bind(lambda e: name in e, self.param.errors),
                                  f"rouser-error rouser-error-{name}", "#b00020")

    def _warning_pane(self):
        shown = pn.bind(lambda w: bool(w), self.param.reset_warning)
        return self._message_pane(self.param.reset_warning, shown, "rouser-warning", "#8a5a00")

    def _control(self, name: str):
        parts = [setting_widget(self, name, self.settings), self._error_pane(name)]
        if name == "reset_grad":  # the stability bound concerns Th_init, tau, s and this choice: say it here
            parts.append(self._warning_pane())
        return pn.Column(*parts, margin=0, sizing_mode="stretch_width")

    def _button(self, label: str) -> pn.widgets.Button:
        button = pn.widgets.Button(label=label, color="primary", variant="outline", sizing_mode="stretch_width",
                                   css_classes=["rouser-paper-setting"])
        button.on_click(lambda _event: self.apply(label))
        return button

    def _paper_buttons(self) -> list:
        buttons = [self._button(label) for label in PAPER_SETTINGS]
        for label, cell in CLASSROOM.items():
            caption = f"measured: Rouser {cell['rouser']['text']}; fixed {cell['fixed']['text']}"
            buttons += [self._button(label), pn.pane.Markdown(caption, margin=(0, 10, 6, 10),
                                                              styles={"font-size": "11px", "color": "#555"})]
        return buttons

    def __panel__(self):
        if self._view is None:
            first, rest = ("dataset", "preset"), [n for n, meta, _, _ in CONTROLS if n not in ("dataset", "preset")]
            advanced = {name for name, meta, _, _ in CONTROLS if meta.advanced}
            self._view = pn.Column(
                *(self._control(n) for n in first),
                pn.pane.Markdown("**Settings** (Th_init, tau, s): the paper's, and one measured here",
                                 margin=(8, 10, 0, 10)),
                *self._paper_buttons(),
                *(self._control(n) for n in rest if n not in advanced),
                pn.widgets.Checkbox.from_param(self.param.compare, name="compare with fixed threshold"),
                pn.Card(*(self._control(n) for n in rest if n in advanced), title="More settings", collapsed=True,
                        sizing_mode="stretch_width", css_classes=["rouser-more-settings"]),
                self._error_pane("general"),
                self._error_pane("dataset"),
                sizing_mode="stretch_width",
            )
        return self._view
