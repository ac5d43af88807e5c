"""The dashboard's logic without a browser: settings, validation, run lifecycle, queueing, teardown, export."""

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from engine.config import ConfigError, TrainConfig
from engine.errors import RouserError
from rouser_app import worker as worker_module
from rouser_app.controls import CLASSROOM, PAPER_SETTINGS, RunControls, available_datasets, raster_interval
from rouser_app.dashboard import RouserDashboard
from engine.records import JOB, LayerRaster
from rouser_app.export import (folder_listing, folder_zip, history_csv, history_frame, history_json, history_png,
                               list_run_folders, load_run)
from rouser_app.neuron_view import NeuronView, simulate_neuron
from rouser_app.plots import LivePlots
from rouser_app.run_panel import RunPanel
from rouser_app.settings import Settings, load_settings
from rouser_app.worker import RunJob, RunLimiter, describe_error

TINY = TrainConfig(dataset="patterns", preset="quick", epochs=1, batch_size=32, raster_every=1)


def _settings(tmp_path, **kw):
    return Settings(runs_dir=str(tmp_path / "runs"), default_dataset="patterns", **kw)


def _panel(tmp_path, limiter=None, **controls):
    settings = _settings(tmp_path)
    panel = RunPanel(controls=RunControls(settings=settings, **controls), settings=settings,
                     limiter=limiter or RunLimiter(2))
    return panel


def _run_to_end(panel, timeout=60.0):
    deadline = time.time() + timeout
    while panel.running and time.time() < deadline:
        panel.drain()
        time.sleep(0.02)
    panel.drain(flush=True)
    assert not panel.running, panel.status


def _events_until_done(job, timeout=60.0):
    events, deadline = [], time.time() + timeout
    while time.time() < deadline:
        events += job.drain()
        if events and events[-1].kind == "done":
            return events
        time.sleep(0.01)
    raise AssertionError(f"job did not finish: {[e.kind for e in events][-5:]}")


# ---------------------------------------------------------------------- package and settings
def test_importing_the_package_has_no_side_effects_and_exports_the_components():
    code = ("import sys, rouser_app; assert 'panel' not in sys.modules and 'torch' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('panel', 'torch'));"
            "from rouser_app import RouserDashboard, RunPanel, NeuronView;"
            "import panel; assert all(issubclass(c, panel.viewable.Viewer) for c in (RouserDashboard, RunPanel, NeuronView))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_settings_come_from_args_then_environment():
    env = {"ROUSER_RUNS": "/srv/runs", "ROUSER_MAX_RUNS": "3", "ROUSER_DATA": "/data"}
    s = load_settings(["--runs", "/x/runs", "--unknown", "1"], env)
    assert (s.runs_dir, s.max_runs, s.data_root) == ("/x/runs", 3, "/data")
    assert load_settings([], {}).max_runs == 2 and load_settings([], {}).runs_dir == "runs"
    assert load_settings(["--max-runs", "0"], {}).max_runs == 1


def test_python_m_rouser_app_rewrites_argv_for_panel_serve(monkeypatch, capsys):
    import panel.command

    import rouser_app.__main__ as entry

    seen = {}
    monkeypatch.setattr(panel.command, "main", lambda: seen.setdefault("argv", list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["python"])
    entry.main(["--runs", "/tmp/r", "--port", "5123"])
    argv = seen["argv"]
    assert argv[:2] == ["panel", "serve"] and argv[2].endswith("rouser_app") and "5123" in argv
    assert argv[argv.index("--args") + 1:] == ["--runs=/tmp/r"]
    assert "http://localhost:5123/rouser_app" in capsys.readouterr().out


# ---------------------------------------------------------------------- controls and validation
def test_controls_default_to_a_valid_config_on_the_chosen_dataset(tmp_path):
    controls = RunControls(settings=_settings(tmp_path))
    assert controls.valid and controls.errors == {}
    config = controls.config()
    assert (config.dataset, config.th_init, config.tau, config.scale) == ("patterns", 1.25, 3.75, 1.5)
    assert config.raster_every == raster_interval("quick") == 1
    assert raster_interval("nmnist") == 5
    assert "patterns" in controls.param.dataset.objects


def test_missing_real_datasets_are_not_offered(tmp_path):
    names = available_datasets(str(tmp_path / "no-data-here"))
    assert "patterns" in names
    assert not {"nmnist", "dvs128", "shd"} & set(names)


@pytest.mark.parametrize("name,value,fragment", [
    ("th_init", -1.0, "th_init must be >= 0, got -1"),
    ("tau", 0.0, "tau must be > 0, got 0"),
    ("voltage_decay", 1.5, "voltage_decay must be in (0, 1]"),
    ("lr", None, "lr: enter a number"),
    ("epochs", 51, "epochs must be in [1, 50]"),
    ("batch_size", 0, "batch_size must be in [1, 256]"),
    ("lr_th", 0.0, "lr_th must be > 0 to compare"),
])
def test_an_invalid_value_shows_a_message_beside_its_control_and_cannot_start(tmp_path, name, value, fragment):
    panel = _panel(tmp_path)
    setattr(panel.controls, name, value)
    assert not panel.controls.valid
    assert fragment in panel.controls.errors[name]
    with pytest.raises(ConfigError):
        panel.controls.config()
    assert panel.start() is False and panel.status.startswith("invalid setting") and panel.job is None


def test_fixed_threshold_alone_is_valid_without_compare(tmp_path):
    controls = RunControls(settings=_settings(tmp_path), compare=False, lr_th=0.0)
    assert controls.valid and controls.config().lr_th == 0.0


def test_paper_settings_set_th_init_tau_and_s(tmp_path):
    controls = RunControls(settings=_settings(tmp_path))
    controls.apply("Sub-optimal (0.25, 3, 3)")
    assert (controls.th_init, controls.tau, controls.scale) == (0.25, 3.0, 3.0)
    assert {"Sub-optimal (1.25, 3.75, 1.5)", "Sub-optimal (0.25, 3, 3)", "Good (1.0, 3.75, 1.5)"} <= set(PAPER_SETTINGS)
    assert CLASSROOM, "the shipped rousing map gives the classroom presets"
    for label, cell in CLASSROOM.items():  # each one is a measured map cell, applied whole
        controls.apply(label)
        config = controls.config()
        expected = cell["config"]
        assert (config.th_init, config.weight_scale, config.lr, config.lr_th, config.weight_quant, config.init) == (
            expected["th_init"], expected["weight_scale"], expected["lr"], expected["lr_th"], expected["weight_quant"],
            expected["init"])
        assert controls.compare and cell["contrast"] in ("rouses", "partial")
    controls.apply("Good (1.0, 3.75, 1.5)")  # back to the paper's weights and learning rates
    assert (controls.weight_scale, controls.init, controls.lr, controls.lr_th) == (1.0, "kaiming-uniform", 1e-3, 1e-3)


# ---------------------------------------------------------------------- the worker
def test_a_job_streams_both_runs_and_ends_with_done(tmp_path):
    job = RunJob(TINY, compare=True, out=tmp_path / "run")
    job.start()
    events = _events_until_done(job)
    kinds = [(e.kind, e.run) for e in events]
    assert kinds[:2] == [("start", "rouser"), ("start", "fixed")]
    assert ("end", "rouser") in kinds and ("end", "fixed") in kinds and kinds[-1] == ("done", "job")
    assert any(e.raster is not None for e in events if e.kind == "batch")
    assert job.done and job.trainers == []  # models freed once finished
    assert (tmp_path / "run" / "rouser" / "history.jsonl").exists()


def test_stop_takes_effect_before_the_next_batch(tmp_path):
    job = RunJob(TINY.with_(epochs=200), compare=True)
    job.start()
    deadline = time.time() + 60
    events = []
    while not any(e.kind == "batch" for e in events) and time.time() < deadline:
        events += job.drain()
        time.sleep(0.01)
    asked = time.perf_counter()
    job.stop()
    job.join(10)
    assert not job.thread.is_alive()
    assert time.perf_counter() - asked < 3.0
    events += job.drain()
    assert {e.record.status for e in events if e.kind == "end"} == {"cancelled"}


def test_stop_while_the_dataset_loads_ends_the_job_at_once(tmp_path, monkeypatch):
    """Stop during a slow dataset load: the runs are reported cancelled and done at once, and when the load returns
    the thread trains nothing and sends nothing more."""
    release = threading.Event()
    real = worker_module.prepare_dataset

    def slow(config):
        release.wait(30)
        return real(config)
    monkeypatch.setattr(worker_module, "prepare_dataset", slow)
    job = RunJob(TINY, compare=True)
    job.start()
    deadline = time.time() + 10
    while job.state != "running" and time.time() < deadline:
        time.sleep(0.01)
    asked = time.perf_counter()
    job.stop()
    events = job.drain()
    assert time.perf_counter() - asked < 0.5 and job.done
    assert [(e.kind, e.run) for e in events] == [("end", "rouser"), ("end", "fixed"), ("done", JOB)]
    assert {e.record.status for e in events if e.kind == "end"} == {"cancelled"}
    release.set()
    job.join(30)
    assert not job.thread.is_alive() and job.drain() == [] and job.trainers == []


def test_errors_in_a_run_become_one_line_events_not_exceptions(tmp_path, monkeypatch):
    def broken(config):
        raise MemoryError("CUDA out of memory.\nTried to allocate ...")
    monkeypatch.setattr(worker_module, "prepare_dataset", broken)
    job = RunJob(TINY)
    job.start()
    errors = [e for e in _events_until_done(job) if e.kind == "error"]
    assert errors and errors[0].record.message.startswith("out of memory") and "\n" not in errors[0].record.message
    assert describe_error(RouserError("dataset nmnist is missing; put it under X")) == "dataset nmnist is missing; put it under X"
    assert describe_error(ValueError("bad\nsecond line")) == "ValueError: bad"


def test_the_server_limit_queues_further_runs_and_starts_them_in_order():
    limiter = RunLimiter(1)
    first, second, third = (RunJob(TINY.with_(epochs=200), limiter=limiter) for _ in range(3))
    first.start()
    second.start()
    third.start()
    assert (first.state, second.state, third.state) == ("running", "queued", "queued")
    assert (second.queue_position, third.queue_position) == (1, 2)
    third.stop()  # withdrawn from the queue at once
    assert third.done and [e.kind for e in third.drain()][-1] == "done"
    assert second.queue_position == 1
    first.stop()
    first.join(10)
    deadline = time.time() + 10
    while second.state != "running" and time.time() < deadline:
        time.sleep(0.01)
    assert second.state == "running" and limiter.active == 1
    second.stop()
    second.join(10)
    assert limiter.active == 0


def test_the_run_panel_says_when_its_run_waits_for_a_slot(tmp_path):
    limiter = RunLimiter(1)
    busy = RunJob(TINY.with_(epochs=200), limiter=limiter)
    busy.start()
    panel = _panel(tmp_path, limiter=limiter)
    try:
        assert panel.start()
        panel.drain()
        assert panel.status.startswith("queued") and "number 1 in line" in panel.status
    finally:
        busy.stop()
        busy.join(10)
    _run_to_end(panel)
    assert panel.status.startswith("finished")


# ---------------------------------------------------------------------- the run panel
def test_a_real_tiny_run_fills_the_buffers_table_status_and_run_folder(tmp_path):
    panel = _panel(tmp_path, epochs=2)
    assert panel.start()
    assert panel.running and panel.status.startswith(("running", "queued"))
    seen = set()
    deadline = time.time() + 60
    while panel.running and time.time() < deadline:
        panel.drain()
        seen.add(panel.status.split(" · ")[0])
        time.sleep(0.01)
    panel.drain(flush=True)
    assert panel.status.startswith("finished · test accuracy Rouser"), panel.status
    assert "running" in seen and panel.progress == 1.0
    live = panel.live
    assert live.rows == {"rouser": 8, "fixed": 8}  # patterns: 128 samples / 32 = 4 batches x 2 epochs
    data = live.metrics.data
    assert len(data) == 16 and set(data["run"]) == {0, 1}
    assert all(n > 0 for n in live.raster_points.values())
    assert list(panel.dead_table.columns) == ["hidden 1", "output"] and len(panel.dead_table) == 2
    folder = tmp_path / "runs" / panel.run_folder
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["runs"]) == {"rouser", "fixed"} and summary["runs"]["rouser"]["status"] == "finished"
    assert {"rouser", "fixed"} <= set(panel.state.histories)


def test_status_line_format_while_running(tmp_path):
    panel = _panel(tmp_path, epochs=50)
    panel.start()
    deadline = time.time() + 60
    while "batch" not in panel.status and time.time() < deadline:
        panel.drain()
        time.sleep(0.02)
    assert panel.status.startswith("running · epoch 1/50 · batch ") and panel.status.endswith(" samples/s")
    panel.stop()
    assert panel.status == "stopping…"
    _run_to_end(panel)
    assert panel.status == "stopped"


def test_reset_empties_the_plots_and_keeps_them_for_the_next_run(tmp_path):
    panel = _panel(tmp_path)
    panel.start()
    _run_to_end(panel)
    live = panel.live
    panel.reset()
    assert panel.status == "ready" and panel.state.histories == {} and len(live.metrics.data) == 0
    panel.start()
    _run_to_end(panel)
    assert panel.live is live and live.rows == {"rouser": 4, "fixed": 4}


def test_closing_the_session_stops_its_run(tmp_path):
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    dashboard = RouserDashboard(settings=_settings(tmp_path), limiter=RunLimiter(2))
    dashboard.controls.epochs = 50
    doc = Document()
    with set_curdoc(doc):
        dashboard.bind_session()
    assert doc.session_destroyed_callbacks
    assert dashboard.run_panel.start()
    job = dashboard.run_panel.job
    deadline = time.time() + 60
    while not dashboard.run_panel.state.histories and time.time() < deadline:
        dashboard.run_panel.drain()
        time.sleep(0.02)
    for callback in list(doc.session_destroyed_callbacks):
        callback(None)
    job.join(10)
    assert job.done and not job.thread.is_alive()
    assert {e.record.status for e in job.drain() if e.kind == "end"} == {"cancelled"}


def test_the_dashboard_renders_and_plots_are_one_element_per_layer_and_run(tmp_path):
    import holoviews as hv
    import panel as pn

    dashboard = RouserDashboard(settings=_settings(tmp_path), limiter=RunLimiter(2))
    pn.panel(dashboard).get_root()
    assert dashboard.run_panel.prepare_plots()
    live = dashboard.run_panel.live
    assert (live.runs, live.neurons, live.time_steps) == (["rouser", "fixed"], [64, 4], 60)
    raster = live.raster_plot("rouser", 0)[()]
    assert isinstance(raster, hv.Points)
    live.push_raster("rouser", (LayerRaster(t=(1, 2, 3), neuron=(0, 5, 9)), LayerRaster()), step=1)
    assert len(live.raster_plot("rouser", 0)[()]) == 3
    for sizes in ([500, 500, 10], [11]):
        pn.panel(LivePlots(["fixed"], sizes, [8] * len(sizes), 300)).get_root()


# ---------------------------------------------------------------------- export and reload
def test_export_and_reload_a_finished_run(tmp_path):
    panel = _panel(tmp_path)
    panel.start()
    _run_to_end(panel)
    histories = panel.state.histories
    frame = history_frame(histories)
    assert set(frame["run"]) == {"rouser", "fixed"} and "L2_active_fraction" in frame and "L1_threshold_sample_0" in frame
    assert history_csv(histories).startswith("run,")
    assert set(json.loads(history_json(histories))["runs"]) == {"rouser", "fixed"}
    assert history_png(histories, "t")[:8] == b"\x89PNG\r\n\x1a\n"
    runs = tmp_path / "runs"
    name = panel.run_folder
    assert list_run_folders(runs) == [name]
    files = set(folder_listing(runs, name)["file"])
    assert {"summary.json", "rouser/history.jsonl", "fixed/history.jsonl"} <= files
    assert folder_zip(runs, name)[:2] == b"PK"
    with pytest.raises(ValueError):
        folder_listing(runs, "../../etc")
    saved = load_run(runs, name)
    assert saved.sizes == [32, 64, 4] and saved.time_steps == 60
    assert saved.histories["rouser"] == histories["rouser"]  # history.jsonl reads back as the records the run emitted
    other = _panel(tmp_path)
    other.show_history(saved, name)
    assert other.status == f"loaded {name}" and other.live.rows == {"rouser": 4, "fixed": 4}
    assert set(saved.rasters) == {"rouser", "fixed"} and (runs / name / "rouser" / "probe_raster.json").exists()
    # the reloaded run shows the latest rasters the live run showed
    assert other.live.raster_points == panel.live.raster_points and any(panel.live.raster_points.values())


def test_export_panel_loads_saved_runs_into_the_dashboard(tmp_path):
    dashboard = RouserDashboard(settings=_settings(tmp_path), limiter=RunLimiter(2))
    dashboard.run_panel.start()
    _run_to_end(dashboard.run_panel)
    dashboard.export.refresh()
    assert dashboard.export.folder == dashboard.run_panel.run_folder
    fresh = RouserDashboard(settings=_settings(tmp_path), limiter=RunLimiter(2))
    fresh.export.load()
    assert fresh.run_panel.status.startswith("loaded ") and fresh.run_panel.live.rows["fixed"] == 4


# ---------------------------------------------------------------------- the single-neuron view
def test_single_neuron_traces_follow_eqs_1_to_4():
    spikes = np.zeros(30)
    spikes[[2, 3, 4]] = 1
    out = simulate_neuron(spikes, 1.0, 1.0, 0.75, 0.97, 3.75, 1.5)
    assert out["current"][3] == pytest.approx(1.0) and out["current"][4] == pytest.approx(1.75)  # I[t] = a_i I + x[t-1]
    assert out["spikes"].sum() >= 1
    k = int(np.argmin(np.abs(out["voltage"] - 1.0)))
    assert out["surrogate"][k] == pytest.approx(1.5 / 3.75 * np.exp(-abs(out["voltage"][k] - 1.0) / 3.75))
    silent = simulate_neuron(spikes, 0.1, 3.0, 0.75, 0.97, 3.75, 1.5)
    assert silent["spikes"].sum() == 0


def test_brian2_overlay_reports_agreement_or_a_message(monkeypatch):
    view = NeuronView(brian2=True, steps=60, rate=0.3, weight=0.8)
    result = view.traces()["brian2"]
    if "error" not in result:
        assert result["agree"] and result["mismatches"] == 0
    import rouser_app.neuron_view as nv

    def unavailable(*args):
        raise ImportError("No module named 'brian2'")
    monkeypatch.setattr(nv, "_brian2", unavailable)
    assert "Brian2 cannot be imported" in NeuronView(brian2=True, seed=3).traces()["brian2"]["error"]
    import panel as pn
    pn.panel(view).get_root()


def test_the_dataset_cache_loads_once_for_concurrent_runs(monkeypatch):
    from rouser_app.worker import DatasetCache

    calls = []

    def slow(config):
        calls.append(config.dataset)
        time.sleep(0.2)
        return object()
    monkeypatch.setattr(worker_module, "prepare_dataset", slow)
    cache = DatasetCache(size=1)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(TINY))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["patterns"] and len({id(g) for g in got}) == 1 and TINY in cache
    cache.get(TINY.with_(preset="nmnist"))  # another time grid: another entry, the oldest is dropped
    assert TINY not in cache and len(calls) == 2
