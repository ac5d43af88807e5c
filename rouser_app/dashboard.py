"""The whole dashboard: controls beside the run's live plots, the single-neuron view and export, in one Viewer."""

from __future__ import annotations

import panel as pn
import param

from .controls import RunControls
from .export import ExportPanel
from .map_view import RousingMapView
from .neuron_view import NeuronView
from .run_panel import RunPanel
from .settings import Settings
from .worker import RunLimiter

__all__ = ["RouserDashboard"]

INTRO = """Train a spiking network whose firing thresholds learn (**Rouser**) beside the same network with
fixed thresholds, from the same initial weights and batches. Pick a bad initial threshold and watch whether
the fixed network's neurons stay silent while Rouser's thresholds move and rouse them. What you see is measured,
not staged: on some settings the difference is small."""


class RouserDashboard(pn.viewable.Viewer):
    """Controls, Run/Stop/Reset with live plots, the single-neuron view and export; one object per browser session."""

    settings = param.ClassSelector(class_=Settings, default=Settings())
    limiter = param.ClassSelector(class_=RunLimiter, default=None, allow_None=True)

    def __init__(self, **params):
        super().__init__(**params)
        self.controls = RunControls(settings=self.settings)
        self.run_panel = RunPanel(controls=self.controls, settings=self.settings, limiter=self.limiter)
        self.neuron_view = NeuronView(threshold=self.controls.th_init, tau=self.controls.tau, scale=self.controls.scale)
        self.export = ExportPanel(run_panel=self.run_panel, settings=self.settings)
        self.rousing_map = RousingMapView(self.controls, self.settings.runs_path)
        self.run_panel.param.watch(lambda e: self.export.refresh() if not e.new else None, "running")
        self._view = None

    def bind_session(self) -> None:
        """Stop this session's runs when its browser tab closes ; render the plots once the page has loaded."""
        if pn.state.curdoc is not None:
            pn.state.on_session_destroyed(lambda _context: self.close())
            pn.state.onload(self.run_panel.prepare_plots)

    def close(self) -> None:
        self.run_panel.close()

    def tabs(self) -> pn.Tabs:
        return pn.Tabs(("Training", self.run_panel), ("Rousing map", self.rousing_map),
                       ("Single neuron", self.neuron_view), ("Export & saved runs", self.export), dynamic=False,
                       sizing_mode="stretch_width")

    def __panel__(self):
        if self._view is None:
            self._view = pn.Row(pn.Column(self.controls, width=320), pn.Column(pn.pane.Markdown(INTRO), self.tabs(),
                                                                          sizing_mode="stretch_width"),
                                sizing_mode="stretch_width")
        return self._view
