"""Rouser Lab's Panel dashboard: ``panel serve rouser_app`` or ``python -m rouser_app``.

The components embed in notebooks as well::

    from rouser_app import RouserDashboard, RunPanel, NeuronView

Importing this package has no side effects: the components are imported on first use.
"""

__all__ = ["RouserDashboard", "RunPanel", "RunControls", "NeuronView", "ExportPanel", "LivePlots", "Settings",
           "load_settings"]

_WHERE = {
    "RouserDashboard": "dashboard", "RunPanel": "run_panel", "RunControls": "controls", "NeuronView": "neuron_view",
    "ExportPanel": "export", "LivePlots": "plots", "Settings": "settings", "load_settings": "settings",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
