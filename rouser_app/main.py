"""`panel serve rouser_app`: one dashboard per browser session, in a page template."""

import sys

import holoviews as hv
import panel as pn

from rouser_app.dashboard import INTRO, RouserDashboard
from rouser_app.settings import load_settings
from rouser_app.worker import DATASETS, LIMITER

pn.extension()
hv.renderer("bokeh").webgl = False  # canvas: no GPU needed in the browser (classroom laptops, headless tests)

settings = load_settings(sys.argv[1:])
LIMITER.max_runs = settings.max_runs
dashboard = RouserDashboard(settings=settings, limiter=LIMITER)
dashboard.bind_session()
if dashboard.controls.valid:  # load the default dataset while the visitor reads the page
    DATASETS.prefetch(dashboard.controls.config())

# BootstrapTemplate: every resource it needs is served by the server itself (no web fonts), so it works offline
pn.template.BootstrapTemplate(
    title="Rouser Lab · learnable thresholds rouse dead neurons",
    sidebar=[pn.pane.Markdown("### Run settings"), dashboard.controls],
    main=[pn.pane.Markdown(INTRO), dashboard.tabs()],
    sidebar_width=340,
    header_background="#b34700",
).servable()
