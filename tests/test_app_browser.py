"""The dashboard in a real browser: Playwright drives Debian's Chromium against `panel serve rouser_app`.

Runs train on the tiny `patterns` dataset so the whole module takes about a minute on 2 cores.
Skipped when /usr/bin/chromium is missing, except in CI (env CI set), where that is a failure.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import ARGS, CHROMIUM, DashboardTab, sync_api

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "dashboard.png"

# Every plot's title -> the lengths of its renderers' data sources, over all Bokeh documents of the page.
PLOT_DATA_JS = """() => {
  const out = {};
  for (const doc of window.Bokeh.documents) {
    const models = doc.all_models ? [...doc.all_models] : [...doc._all_models.values()];
    for (const m of models) {
      if (m.title && m.title.text !== undefined && m.renderers) {
        out[m.title.text] = m.renderers.map(r => r.data_source ? r.data_source.get_length() : null);
      }
    }
  }
  return out;
}"""

# y values of one renderer of the plot titled `title` (the comparison plots draw Rouser first)
SERIES_JS = """([title, index]) => {
  for (const doc of window.Bokeh.documents) {
    const models = doc.all_models ? [...doc.all_models] : [...doc._all_models.values()];
    for (const m of models) {
      if (m.title && m.title.text === title && m.renderers) {
        const src = m.renderers[index].data_source;
        const key = Object.keys(src.data).find(k => k !== 'step' && k !== 'x');
        return Array.from(src.data[key] || []);
      }
    }
  }
  return null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    port = _free_port()
    env = dict(os.environ, ROUSER_RUNS=str(runs), ROUSER_DEFAULT_DATASET=os.environ.get("ROUSER_BROWSER_DATASET", "patterns"),
               ROUSER_MAX_RUNS="2", ROUSER_MAX_EPOCHS="5000", PYTHONUNBUFFERED="1")
    log = open(runs.parent / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(ROOT / "rouser_app"), "--port", str(port),
                             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=runs)
    url = f"http://127.0.0.1:{port}/rouser_app"
    deadline = time.time() + 300  # the first page builds the dashboard (and any kernel not built yet)
    while True:
        try:
            urllib.request.urlopen(url, timeout=120).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"panel serve did not start: {(runs.parent / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield dict(url=url, runs=runs, proc=proc)
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Page(DashboardTab):
    """A dashboard tab with the few more things these tests do on it."""

    def press(self, button: str) -> None:
        self.page.locator(f".rouser-{button} button").click()

    def plots(self) -> dict:
        return self.page.evaluate(PLOT_DATA_JS)

    def series(self, title: str, index: int = 0):
        return self.page.evaluate(SERIES_JS, [title, index])


def _filled(plots: dict, prefix: str) -> list:
    return [lengths for title, lengths in plots.items() if title.startswith(prefix) and any(n for n in lengths if n)]


def test_page_loads_without_console_errors(server, browser):
    page = Page(browser, server["url"])
    try:
        assert page.status() == "ready"
        time.sleep(1)
        assert page.errors == []
    finally:
        page.close()


def test_an_invalid_value_is_refused_with_a_message(server, browser):
    page = Page(browser, server["url"])
    try:
        page.set_value("th_init", "-1")
        message = page.page.locator(".rouser-error-th_init pre")
        message.wait_for(timeout=20_000)
        assert "th_init must be >= 0, got -1" in message.inner_text()
        assert page.page.locator(".rouser-run button").is_disabled()
        page.set_value("th_init", "1.5")
        page.page.wait_for_function(
            "() => !document.querySelector('.rouser-run') || true", timeout=5_000)
        deadline = time.time() + 20
        while page.page.locator(".rouser-run button").is_disabled() and time.time() < deadline:
            time.sleep(0.1)
        assert not page.page.locator(".rouser-run button").is_disabled()
    finally:
        page.close()


def test_run_fills_the_live_plots_of_both_runs_then_stop_stops(server, browser):
    page = Page(browser, server["url"])
    try:
        page.set_value("th_init", "1.5")
        page.set_value("epochs", "5000")  # far longer than the test: it must still be running when Stop is pressed
        page.press("run")
        clicked = time.perf_counter()
        seen = [page.wait_status("running · epoch", timeout=90)]
        assert " · batch " in seen[0] and seen[0].endswith("samples/s")
        deadline = time.time() + 90
        while time.time() < deadline:
            plots = page.plots()
            if (len(_filled(plots, "Rouser · hidden 1 ·")) and len(_filled(plots, "fixed · output ·"))
                    and len(_filled(plots, "Rouser · output thresholds")) and len(_filled(plots, "fixed · hidden 1 thresholds"))
                    and len(_filled(plots, "active · output"))):
                break
            time.sleep(0.2)
        first_plot = time.perf_counter() - clicked
        plots = page.plots()
        for prefix in ("Rouser · hidden 1 ·", "Rouser · output ·", "fixed · hidden 1 ·", "fixed · output ·",
                       "Rouser · hidden 1 thresholds", "fixed · output thresholds", "active · hidden 1",
                       "active · output", "spikes · output", "loss"):
            assert _filled(plots, prefix), (prefix, plots)
        active = next(lengths for title, lengths in plots.items() if title == "active · output")
        assert len(active) == 2 and min(active) > 0  # both runs on one axis
        assert page.page.locator(".rouser-dead-table table").count() == 1
        time.sleep(1.0)
        later = page.status()
        assert later.startswith("running") and later != seen[0]  # the status line moves on
        page.page.screenshot(path=str(SCREENSHOT), full_page=False)
        page.press("stop")
        stopped = time.perf_counter()
        assert page.wait_status("stopped", timeout=20) == "stopped"
        print(f"\nfirst plot data {first_plot:.1f} s after Run; stopped {time.perf_counter() - stopped:.1f} s after Stop")
        folders = [p for p in server["runs"].iterdir() if p.is_dir()]
        summary = json.loads((max(folders, key=lambda p: p.stat().st_mtime) / "summary.json").read_text())
        assert {s["status"] for s in summary["runs"].values()} == {"cancelled"}
        assert summary["runs"]["rouser"]["config"]["th_init"] == 1.5
        assert page.errors == []
    finally:
        page.close()


def test_two_pages_run_independent_runs(server, browser):
    a, b = Page(browser, server["url"]), Page(browser, server["url"])
    try:
        before = {p.name for p in server["runs"].iterdir()}
        a.set_value("th_init", "0.5")
        b.set_value("th_init", "2.0")
        a.set_value("epochs", "2")
        b.set_value("epochs", "2")
        a.press("run")
        b.press("run")
        assert a.wait_status("finished", "error").startswith("finished")
        assert b.wait_status("finished", "error").startswith("finished")
        new = [p for p in server["runs"].iterdir() if p.name not in before]
        th = sorted(json.loads((p / "summary.json").read_text())["runs"]["rouser"]["config"]["th_init"] for p in new)
        assert th == [0.5, 2.0]
        assert a.page.locator(".rouser-run button").is_enabled() and b.page.locator(".rouser-run button").is_enabled()
        assert a.errors == [] and b.errors == []
    finally:
        a.close()
        b.close()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.skipif(not os.environ.get("ROUSER_MEASURE"), reason="a measurement of minutes: set ROUSER_MEASURE=1 "
                    "(and ROUSER_BROWSER_DATASET=nmnist-sim for the default dataset)")
def test_measure_time_to_first_plot_rousing_and_memory(server, browser):
    """Run the default settings (Th_init, tau, s) = (1.25, 3.75, 1.5) and report; then RSS over 10 runs."""
    page = Page(browser, server["url"])
    report = {"dataset": page.page.locator("select").first.input_value()}
    try:
        epochs = os.environ.get("ROUSER_MEASURE_EPOCHS", "1")
        page.set_value("epochs", epochs)
        report["idle_before_run_s"] = wait = float(os.environ.get("ROUSER_MEASURE_WAIT", "10"))
        time.sleep(wait)  # a visitor reads the page first; the server loads the default dataset meanwhile
        page.press("run")
        clicked = time.perf_counter()
        first_plot = full = None
        full_steps, history = [], []
        while True:
            plots = page.plots()
            if first_plot is None and _filled(plots, "Rouser · hidden 1 ·") and _filled(plots, "active · output"):
                first_plot = time.perf_counter() - clicked
            active = page.series("active · output", 0) or []
            if active and max(active) >= 1.0 and full is None:
                full = time.perf_counter() - clicked
            status = page.status()
            history.append((round(time.perf_counter() - clicked, 1), status))
            if status.startswith(("finished", "error", "stopped")):
                break
            time.sleep(0.25)
        active = page.series("active · output", 0) or []
        fixed = page.series("active · output", 1) or []
        full_steps = [i + 1 for i, a in enumerate(active) if a >= 1.0]
        report.update(first_plot_s=first_plot, rouser_output_fully_active_s=full, rouser_full_steps=full_steps,
                      fixed_full_steps=[i + 1 for i, a in enumerate(fixed) if a >= 1.0],
                      rouser_last_active=active[-5:], fixed_last_active=fixed[-5:], status=status,
                      seconds=round(time.perf_counter() - clicked, 1))
        # memory: 10 short runs in a row on the same page
        page.set_value("max_batches", "5")
        page.set_value("epochs", "1")
        rss = []
        for k in range(10):
            page.press("run")
            page.wait_status("running", "queued", timeout=60)
            page.wait_status("finished", "error", timeout=300)
            rss.append(round(_rss_mib(server["proc"].pid), 1))
        report.update(rss_after_run_mib=rss)
        print("\nMEASURE", json.dumps(report))
        assert report["first_plot_s"] is not None
    finally:
        page.close()


def test_the_rousing_map_tab_renders_and_a_click_loads_the_cell(server, browser):
    """The map tab opens on the shipped map without console errors; clicking a heat-map cell sets Th_init and the
    weight scale of the run controls to that cell's values."""
    page = Page(browser, server["url"])
    try:
        page.page.locator(".bk-tab", has_text="Rousing map").click()
        deadline = time.time() + 60
        while not _filled(page.plots(), "Rouser - fixed") and time.time() < deadline:
            time.sleep(0.2)
        assert _filled(page.plots(), "Rouser") and _filled(page.plots(), "Rouser - fixed")
        canvas = next(box for box in (page.page.locator("canvas").nth(i).bounding_box()
                                      for i in range(page.page.locator("canvas").count())) if box and box["width"] > 0)
        selected = page.page.locator(".rouser-map-selected pre")
        before = selected.inner_text()
        page.page.mouse.click(canvas["x"] + 0.3 * canvas["width"], canvas["y"] + 0.3 * canvas["height"])
        deadline = time.time() + 20
        while selected.inner_text() == before and time.time() < deadline:
            time.sleep(0.1)
        text = selected.inner_text()
        assert text.startswith("Loaded "), text
        th = text.split("Th_init ")[1].split(",")[0]
        ws = text.split("weight scale ")[1].split(".")[0] if "weight scale 0." not in text else \
            "0." + text.split("weight scale 0.")[1].split(".")[0]
        deadline = time.time() + 10
        while time.time() < deadline:
            shown = (page.page.locator(".rouser-input-th_init input").input_value(),
                     page.page.locator(".rouser-input-weight_scale input").input_value())
            if float(shown[0]) == float(th) and float(shown[1]) == float(ws):
                break
            time.sleep(0.1)
        assert float(shown[0]) == float(th) and float(shown[1]) == float(ws), (shown, text)
        assert page.errors == []
    finally:
        page.close()
