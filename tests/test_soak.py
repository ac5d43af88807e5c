"""Soak: a classroom on one server, in Chromium. About two minutes on 2 cores.

`python -m rouser_app` (run cap 2, short unused-session cleanup) serves four tabs that all press Run (two train,
two wait); half the tabs close mid-run; the queued run left takes the freed slot; a new tab loads and trains to the
end; every tab closes; the server's memory comes back; SIGTERM with a run training stops it with status 0. No
traceback may appear in the server's log at any point.
Skipped when /usr/bin/chromium is missing, except in CI (env CI set), where that is a failure.
"""

import signal
import time

from browser import ARGS, CHROMIUM, DashboardTab, sync_api

from rouser_app.light_client import LightSession, ServerProcess

# Memory after every tab has closed, against after the first page load: the first run's one-time costs (torch's
# kernels, thread pools and allocator caches, about 190 MiB measured in a bare process) plus this much.
MARGIN_MIB = 150


class Tab(DashboardTab):
    def __init__(self, browser, url):
        super().__init__(browser, url, width=1400, height=1000, timeout=120.0)

    def run(self, epochs: int) -> None:
        self.set_value("epochs", str(epochs))
        time.sleep(0.3)
        self.page.locator(".rouser-run button").click()


def test_a_class_opens_runs_and_closes_tabs_then_sigterm(tmp_path):
    server = ServerProcess(tmp_path / "runs", command="module", env={
        "ROUSER_DEFAULT_DATASET": "patterns", "ROUSER_MAX_RUNS": "2", "ROUSER_MAX_EPOCHS": "5000"},
        args=["--check-unused-sessions", "2000", "--unused-session-lifetime", "3000"]).start()
    began = time.perf_counter()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            tabs = [Tab(browser, server.url)]
            time.sleep(3)
            rss_first = server.rss_mib()
            tabs += [Tab(browser, server.url) for _ in range(3)]
            for tab in tabs:
                tab.run(5000)
            tabs[0].wait_status("running · epoch")
            tabs[1].wait_status("running · epoch")
            assert all(tab.wait_status("queued").startswith("queued") for tab in tabs[2:])  # each click is its own event
            time.sleep(2)
            rss_busy = server.rss_mib()
            for tab in (tabs[0], tabs[2]):  # half the tabs close: one training, one waiting
                tab.page.close()
            tabs[3].wait_status("running · epoch", timeout=60)  # took the slot the closed tab's run freed
            tabs[1].page.locator(".rouser-stop button").click()
            assert tabs[1].wait_status("stopped", timeout=30) == "stopped"
            fresh = Tab(browser, server.url)
            fresh.run(2)
            assert fresh.wait_status("finished", "error", timeout=120).startswith("finished")
            tabs[3].page.locator(".rouser-stop button").click()
            tabs[3].wait_status("stopped", timeout=30)
            for tab in (tabs[1], tabs[3], fresh):
                tab.page.close()
            browser.close()
        rss_closed = server.wait_rss_settled(timeout=40, quiet_s=5, min_s=10)
        last = LightSession(server.url).wait_loaded()  # SIGTERM with a run training
        last.start_run(5000, server.runs)
        last.wait_status("running · epoch")
        result = server.stop(signal.SIGTERM, timeout=30)
    finally:
        server.kill()
    log = server.log()
    print(f"\nsoak: {time.perf_counter() - began:.0f} s; RSS first page {rss_first:.0f} MiB, four tabs training "
          f"{rss_busy:.0f} MiB, all tabs closed {rss_closed:.0f} MiB; SIGTERM: {result}")
    assert result["exit_status"] == 0 and result["exit_s"] < 10, result
    assert not server.problems(), "\n".join(server.problems()) + log[-3000:]
    assert "terminate called" not in log
    assert rss_closed < rss_first + 190 + MARGIN_MIB, (rss_first, rss_closed)
