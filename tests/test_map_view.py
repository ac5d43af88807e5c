"""The rousing map's rules and the dashboard's map tab, without a browser."""

import json
import math
import shutil

import pytest

from engine.reproduce.rousing_map import REGIMES, cell_outcome, cell_spec, contrast, describe
from rouser_app.controls import RunControls
from rouser_app.map_data import MAPS_DIR, available_maps, classroom_presets, load_map, map_frame
from rouser_app.map_view import RousingMapView


def _outcome(full, active=1.0, status="finished"):
    return dict(status=status, batches=120, batches_to_full_output=full, output_active_end=active,
                output_silent_end=active == 0, any_silent_end=active == 0, dead_percent=[0.0, 0.0], test_accuracy=0.5)


def test_contrast_and_description_rules():
    rouses = dict(rouser=cell_outcome([_outcome(10), _outcome(14), _outcome(12)]),
                  fixed=cell_outcome([_outcome(None, 0.0)] * 3))
    assert contrast(rouses) == "rouses"
    assert describe(rouses["rouser"], 120) == "fully active by batch 12 (10-14) in 3/3 seeds"
    assert describe(rouses["fixed"], 120) == "output silent at batch 120 in 3/3 seeds"
    partial = dict(rouser=cell_outcome([_outcome(10), _outcome(None, 0.5), _outcome(12)]),
                   fixed=cell_outcome([_outcome(30), _outcome(None, 0.4), _outcome(None, 0.2)]))
    assert contrast(partial) == "partial"
    same = dict(rouser=cell_outcome([_outcome(3)] * 3), fixed=cell_outcome([_outcome(3)] * 3))
    assert contrast(same) == "none"
    diverged = cell_outcome([_outcome(None, 0.0, "error")] * 3)
    assert describe(diverged, 120) == "diverged in 3/3 seeds"


def test_cell_specs_carry_the_regime_and_share_seeds():
    frozen = REGIMES["frozen weights"]
    r, f = cell_spec("frozen weights", 2.0, 0.4, "rouser", 1), cell_spec("frozen weights", 2.0, 0.4, "fixed", 1)
    assert (r.lr, r.lr_th, f.lr, f.lr_th) == (0.0, frozen.lr_th, 0.0, 0.0) and frozen.ratio == math.inf
    assert r.weight_scale == f.weight_scale == 0.4 and r.seed == f.seed and r.name != f.name
    assert cell_spec("8-bit weights", 2.0, 0.4, "rouser", 0).weight_quant == "8bit"


@pytest.fixture(scope="module")
def shipped():
    maps = sorted(MAPS_DIR.glob("*.json"))
    assert maps, "the package ships the committed rousing maps"
    return load_map(maps[0])


def test_shipped_map_frames_and_presets(shipped):
    grid = shipped["grid"]
    for regime in grid["regimes"]:
        frame = map_frame(shipped, regime, "output_active_end")
        assert len(frame) == len(grid["th_inits"]) * len(grid["weight_scales"])
        assert ((frame.difference - (frame.rouser - frame.fixed)).abs().fillna(0) < 1e-9).all()
        assert frame.rouser.between(0, 100).all() and frame.fixed.between(0, 100).all()
    for cell in classroom_presets(shipped):
        assert cell["contrast"] == "rouses" and cell["fixed"]["full_output_reached"] == 0


def test_a_tap_loads_the_cells_settings(shipped):
    controls = RunControls()
    view = RousingMapView(controls)
    regime = shipped["grid"]["regimes"][-1]
    view.regime = regime
    th, ws = shipped["grid"]["th_inits"][-1], shipped["grid"]["weight_scales"][0]
    view.taps[0].event(x=f"{ws:g}", y=f"{th:g}")  # a tap on a categorical axis reports the category names
    cell = next(c for c in shipped["cells"] if c["regime"] == regime and c["th_init"] == th and c["weight_scale"] == ws)
    assert (controls.th_init, controls.weight_scale) == (th, ws)
    assert (controls.lr, controls.lr_th, controls.weight_quant) == (cell["config"]["lr"], cell["config"]["lr_th"],
                                                                   cell["config"]["weight_quant"])
    assert controls.compare and controls.valid and f"Th_init {th:g}" in view.selected


def test_maps_under_the_runs_folder_are_listed_by_folder(tmp_path, shipped):
    target = tmp_path / "mine" / "nmnist-sim-quick" / "rousing-map"
    target.mkdir(parents=True)
    (target / "rousing_map.json").write_text(json.dumps(shipped))
    maps = available_maps(tmp_path)
    assert "runs: mine/nmnist-sim-quick" in maps and str(tmp_path) not in " ".join(maps)
