"""Knob values -> job mapping, frame ranges, placement, versions, camera, farm and every validation of the
Nuke adapter's pure functions (no Nuke, no fake: plain dicts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fake_nuke.paths import add_adapter

add_adapter()

from gvfx_nuke import jobs as J  # noqa: E402
from gvfx_nuke import params as P  # noqa: E402

from gvfx.ui import model  # noqa: E402

PARAMS = P.load_params()


def ctx(**kw) -> J.InputContext:
    base = dict(script_path="/shots/sh010/comp/sh010_comp_v003.nk", input_range=(1001, 1048), width=1920,
                height=1080, colorspace="ACEScg", fps=24.0)
    base.update(kw)
    return J.InputContext(**base)


def paths(c: J.InputContext | None = None, node: str = "GVFX_Element1", out: str = "") -> J.ShotPaths:
    return J.shot_paths((c or ctx()).script_path, node, out)


def knobs(**kw) -> dict:
    base = {"engine": "sim", "effect": "fire", "placement": "default", "frame_range": "input", "first": 0,
            "last": 0, "size_m": 0.6, "seed": 7, "shutter": 0.5, "motion_samples": 3, "depth_convention": "z",
            "depth_channel": "", "focal_mm": 0.0, "reference": "", "prompt": ""}
    base.update(kw)
    return base


def build(kind="element", k=None, c=None, node="GVFX_Element1"):
    c = c or ctx()
    return J.build_job(kind, k or knobs(), c, paths(c, node), PARAMS)


# ---------------------------------------------------------------- mapping

def test_element_job_maps_every_knob(tmp_path):
    ref = tmp_path / "flame.png"
    ref.write_bytes(b"png")
    k = knobs(placement="screen", position=[960.0, 380.0], placement_frame=1010, reference=str(ref),
              **{P.param_knob_name("sim", "fire", "buoyancy"): 1.5,
                 P.param_knob_name("sim", "fire", "vorticity"): 5.0,  # the default: not written
                 P.match_knob_name("grain"): False, P.match_knob_name("shadow_strength"): 0.6,
                 P.given_knob_name("focus_m"): True, P.match_knob_name("focus_m"): 4.5,
                 P.given_knob_name("fstop"): False, P.match_knob_name("fstop"): 2.8})
    job = build(k=k)
    assert job["version"] == 1 and job["name"] == "sh010_comp"
    assert job["plate"] == {"path": "/shots/sh010/comp/gvfx/sh010_comp/GVFX_Element1/inputs/plate.####.exr",
                            "frames": "1001-1048", "colorspace": "ACEScg"}
    assert job["output"] == "/shots/sh010/comp/gvfx/sh010_comp/GVFX_Element1"
    (el,) = job["elements"]
    assert el == {"name": "GVFX_Element1", "engine": "sim", "effect": "fire", "size_m": 0.6, "start_frame": 1001,
                  "seed": 7, "shutter": 0.5, "motion_samples": 3, "reference": str(ref),
                  "placement": {"screen": [960.0, 700.0], "frame": 1010},  # Nuke y-up -> gvfx v-down
                  "params": {"buoyancy": 1.5}}
    assert job["match"] == {"grain": False, "focus_m": 4.5}  # fstop not given: estimated
    assert job["depth"] == {"convention": "z"}
    assert "camera" not in job


def test_job_validates_with_gvfx(tmp_path):
    """The mapping is a job gvfx itself accepts (parse_job validates every field against the engines)."""
    from gvfx.job import parse_job

    usd_free = ctx(script_path=str(tmp_path / "s.nk"), has_depth_input=True)
    k = knobs(placement="point", point=[0.1, 0.85, -4.0], depth_channel="depth.Z", focal_mm=35.0,
              **{P.param_knob_name("sim", "fire", "wind"): [0.5, 0.0, 0.0]})
    job = J.build_job("element", k, usd_free, paths(usd_free), PARAMS)
    assert job["depth"] == {"convention": "z", "path": str(tmp_path / "gvfx/s/GVFX_Element1/inputs/depth.####.exr"),
                            "layer": "depth.Z"}
    assert job["camera"] == {"focal_mm": 35.0, "haperture_mm": 36.0}
    parsed = parse_job(json.loads(json.dumps(job)), tmp_path)
    assert parsed.elements[0].params == {"wind": (0.5, 0.0, 0.0)}
    assert parsed.elements[0].placement.point == (0.1, 0.85, -4.0)
    assert parsed.plate.frames == (1001, 1048)


def test_camera_input_goes_into_the_job():
    c = ctx(has_camera=True, haperture_mm=24.576)
    job = build(c=c)
    assert job["camera"] == {"file": "/shots/sh010/comp/gvfx/sh010_comp/GVFX_Element1/inputs/camera.chan",
                             "haperture_mm": 24.576}


def test_insert_needs_a_reference_and_takes_a_mask_placement(tmp_path):
    ref = tmp_path / "ball.png"
    ref.write_bytes(b"x")
    with pytest.raises(P.KnobError, match="reference: an Insert needs a reference image"):
        build("insert", knobs(effect="insert"))
    c = ctx(mask_centroid=(400.0, 300.0))
    job = build("insert", knobs(effect="insert", reference=str(ref), placement="mask", placement_frame=1005), c)
    assert job["elements"][0]["placement"] == {"screen": [400.0, 300.0], "frame": 1005}
    with pytest.raises(P.KnobError, match="effect: 'fire' is not an effect of engine 'sim' for this node"):
        build("insert", knobs(effect="fire", reference=str(ref)))


def test_effect_lists_split_inserts_from_elements():
    assert P.effect_names(PARAMS, "sim", kind="insert") == ["insert"]
    assert "insert" not in P.effect_names(PARAMS, "sim") and "sparks" in P.effect_names(PARAMS, "sim")


# ---------------------------------------------------------------- frames

@pytest.mark.parametrize("mode,first,last,expected", [
    ("input", 0, 0, (1001, 1048)), ("custom", 1010, 1020, (1010, 1020)), ("custom", 1001, 1048, (1001, 1048))])
def test_frame_range(mode, first, last, expected):
    assert J.resolve_frame_range(mode, first, last, (1001, 1048)) == expected


@pytest.mark.parametrize("mode,first,last,rng,message", [
    ("custom", 1020, 1010, (1001, 1048), "first frame 1020 is after last frame 1010"),
    ("custom", 990, 1010, (1001, 1048), "outside the plate's range 1001-1048"),
    ("custom", 1001, 1050, (1001, 1048), "outside the plate's range"),
    ("custom", 1001.5, 1010, (1001, 1048), "not whole numbers"),
    ("input", 0, 0, None, "connect a plate"),
    ("sometimes", 0, 0, (1, 2), "not one of input, custom")])
def test_frame_range_errors(mode, first, last, rng, message):
    with pytest.raises(P.KnobError, match=message):
        J.resolve_frame_range(mode, first, last, rng)


def test_custom_range_sets_plate_frames_and_start():
    job = build(k=knobs(frame_range="custom", first=1010, last=1012))
    assert job["plate"]["frames"] == "1010-1012" and job["elements"][0]["start_frame"] == 1010


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("change,message", [
    ({"size_m": 0}, "size_m: 0 must be greater than 0"),
    ({"size_m": float("nan")}, "size_m: .* not a finite number"),
    ({"seed": 1.5}, "seed: 1.5 is not a whole number"),
    ({"seed": -1}, "seed: -1 is below the minimum 0"),
    ({"shutter": 3.0}, "shutter: 3.0 is above the maximum 2.0"),
    ({"motion_samples": 0}, "motion_samples: 0 is below the minimum 1"),
    ({"engine": "nope"}, "engine: unknown engine 'nope'"),
    ({"effect": "lava"}, "effect: 'lava' is not an effect"),
    ({"prompt": "a dragon"}, "prompt: sim/fire takes no prompt"),
    ({"reference": "/no/such/file.png"}, "reference: file not found"),
    ({"placement": "screen", "position": [2000.0, 10.0]}, r"position: \(2000, 10\) is outside the plate \(1920x1080\)"),
    ({"placement": "screen", "position": [10.0, 10.0], "placement_frame": 2000}, "placement_frame: frame 2000 is outside"),
    ({"placement": "axis"}, "placement 'axis' needs an Axis"),
    ({"placement": "mask"}, "'mask' is not one of"),
    ({"placement": "point", "point": [0, float("inf"), 0]}, "point: expected 3 finite numbers"),
    ({"depth_convention": "w"}, "depth_convention: 'w' is not one of"),
    ({"depth_convention": "normalized", "depth_near": 5.0, "depth_far": 1.0}, "depth_far: far 1.0 must be beyond near 5.0"),
    ({P.param_knob_name("sim", "fire", "buoyancy"): -3.0}, "fx__sim__fire__buoyancy: -3.0 is below the minimum 0.0"),
    ({P.param_knob_name("sim", "fire", "resolution"): 20.5}, "resolution: 20.5 is not a whole number"),
    ({P.match_knob_name("holdout_mode"): "sometimes"}, "m__holdout_mode: 'sometimes' is not one of"),
    ({P.match_knob_name("colour_strength"): 1.5}, "m__colour_strength: 1.5 is above the maximum 1.0"),
    ({P.match_knob_name("grain_profile"): "{not json"}, "m__grain_profile: not JSON"),
    ({P.match_knob_name("grain_profile"): "[1, 2]"}, "m__grain_profile: expected a JSON mapping"),
])
def test_every_validation_names_its_knob(change, message):
    with pytest.raises(P.KnobError, match=message):
        build(k=knobs(**change))


def test_unsaved_script_and_bad_inputs():
    with pytest.raises(P.KnobError, match="save the Nuke script first"):
        J.shot_paths("", "GVFX_Element1")
    with pytest.raises(P.KnobError, match="plate's format 0x0 is empty"):
        build(c=ctx(width=0, height=0))
    with pytest.raises(P.KnobError, match="connect a plate"):
        build(c=ctx(input_range=None))


def test_colorspaces():
    assert J.colorspace_for_job("ACEScg") == "ACEScg"
    with pytest.raises(P.KnobError, match="is an OCIO role"):  # never ACEScg by assumption
        J.colorspace_for_job("scene_linear")
    assert J.colorspace_for_job("linear") == "lin_rec709"
    assert J.colorspace_for_job("") == "ACEScg"
    with pytest.raises(P.KnobError, match="working space 'sRGB' is not scene-linear"):
        J.colorspace_for_job("sRGB")
    with pytest.raises(P.KnobError, match="not scene-linear"):
        build(c=ctx(colorspace="ACEScct"))


def test_names_and_paths(tmp_path):
    assert J.element_name("GVFX_Element1") == "GVFX_Element1"
    assert J.element_name("3 fires!") == "el_3_fires"
    assert J.shot_name("/a/sh010_comp_v012.nk") == "sh010_comp"
    assert J.shot_name("/a/sh010.v3.nk") == "sh010"
    p = J.shot_paths(str(tmp_path / "sh010_v002.nk"), "GVFX_Element1", "renders/fx")
    assert p.root == tmp_path / "renders/fx"
    assert p.timeline == tmp_path / "renders/fx/sh010.otio"
    assert p.farm_job == tmp_path / "sh010_v002_GVFX_Element1.gvfx.json"
    assert p.farm_template == tmp_path / "sh010_v002_GVFX_Element1.openjd.yaml"


# ---------------------------------------------------------------- knobs from data

def test_knob_specs_come_from_the_snapshot():
    specs = {s["name"]: s for s in P.effect_knob_specs(PARAMS)}
    b = specs[P.param_knob_name("sim", "fire", "buoyancy")]
    assert (b["class"], b["default"], b["min"], b["max"]) == ("Double_Knob", 6.0, 0.0, 100.0)
    assert specs[P.param_knob_name("sim", "insert", "proxy")]["class"] == "Enumeration_Knob"
    assert specs[P.param_knob_name("sim", "insert", "proxy")]["choices"][:5] == ["auto", "lathe", "inflate", "card",
                                                                                 "mesh"]
    assert specs[P.param_knob_name("sim", "insert", "collider")]["choices"] == ["auto", "sphere", "box"]
    assert specs[P.param_knob_name("sim", "debris", "albedo")]["class"] == "Color_Knob"
    assert specs[P.param_knob_name("sim", "fire", "wind")]["class"] == "XYZ_Knob"
    assert specs[P.param_knob_name("sim", "sparks", "count")]["class"] == "Int_Knob"
    n_params = sum(1 for eng in PARAMS["engines"].values() for e in eng.values() for p in e["params"]
                   if p["name"] != "prompt")  # the prompt has one knob for every effect
    assert len(specs) == n_params
    match = {s["name"]: s for s in P.match_knob_specs(PARAMS)}
    assert match[P.given_knob_name("focus_m")]["class"] == "Boolean_Knob"
    assert match[P.match_knob_name("grain_profile")]["class"] == "Multiline_Eval_String_Knob"
    assert P.given_knob_name("grain_profile") not in match
    assert match[P.match_knob_name("motion_blur")]["choices"] == ["auto", "on", "off"]


def test_visibility_follows_engine_effect_placement():
    show = P.visible_knobs(PARAMS, engine="sim", effect="sparks", placement="screen")
    assert show[P.param_knob_name("sim", "sparks", "count")] is True
    assert show[P.param_knob_name("sim", "fire", "buoyancy")] is False
    assert show["position"] and not show["point"] and show["placement_frame"] and not show["prompt"]
    show = P.visible_knobs(PARAMS, engine="sim", effect="fire", placement="point")
    assert show[P.param_knob_name("sim", "fire", "buoyancy")] and show["point"] and not show["position"]


def test_knob_defaults_give_an_empty_params_section():
    k = knobs(**{s["name"]: s["default"] for s in P.effect_knob_specs(PARAMS)},
              **{s["name"]: s["default"] for s in P.match_knob_specs(PARAMS)})
    job = build(k=k)
    assert "params" not in job["elements"][0] and "match" not in job


# ---------------------------------------------------------------- camera, mask, estimates, farm

def test_chan_text_round_trips_through_gvfx(tmp_path):
    from gvfx.camera_io import read_chan

    samples = [(1001 + i, [0.1 * i, 1.5, 4.0], [-10.0, 5.0 * i, 0.0], 35.0, 36.0) for i in range(3)]
    text = J.chan_text(samples, 1920, 1080)
    (tmp_path / "c.chan").write_text(text)
    track = read_chan(tmp_path / "c.chan", 1920, 1080, haperture_mm=36.0)
    assert track.frames == (1001, 1002, 1003)
    assert math.isclose(track.camera_at(1002).focal_mm, 35.0, rel_tol=1e-6)
    assert track.cam_to_world[2][:3, 3].tolist() == pytest.approx([0.2, 1.5, 4.0])
    with pytest.raises(P.KnobError, match="rotation order is XYZ"):
        J.chan_text(samples, 1920, 1080, "XYZ")
    with pytest.raises(P.KnobError, match="must be positive"):
        J.chan_text([(1, [0, 0, 0], [0, 0, 0], 0.0, 36.0)], 1920, 1080)


def test_mask_centroid_flips_y():
    samples = [(10.0, 10.0, 0.0), (100.0, 20.0, 1.0), (300.0, 20.0, 1.0)]
    assert J.mask_centroid(samples, 100) == (200.0, 80.0)
    assert J.mask_centroid([(1, 1, 0.0)], 100) is None


def test_estimates_parse_and_lock():
    stdout = ("match estimates for element (sources: {'grain': 'estimated', 'focus_m': 'given'}):\n"
              '  grain: {"sigma": [0.01, 0.01, 0.02]}\n  focus_m: 4.2\n  fstop: 2.8\n'
              '  haze: {"colour": [0.5, 0.6, 0.7], "density_per_m": 0.01}\n  light_dir: [0.0, 1.0, 0.0]\n'
              "wrote 6 files to out\n")
    est = J.parse_match_estimates(stdout)
    assert est["sources"] == {"grain": "estimated", "focus_m": "given"}
    assert est["focus_m"] == 4.2 and est["grain"] == {"sigma": [0.01, 0.01, 0.02]}
    locked = J.lock_estimates(est, PARAMS)
    assert locked[P.given_knob_name("focus_m")] is True and locked[P.match_knob_name("fstop")] == 2.8
    assert json.loads(locked[P.match_knob_name("grain_profile")]) == {"sigma": [0.01, 0.01, 0.02]}
    assert locked[P.match_knob_name("haze_colour")] == [0.5, 0.6, 0.7]
    assert locked[P.match_knob_name("haze_density_per_m")] == 0.01
    # locked values make a valid match section
    assert P.match_values(PARAMS, locked)["focus_m"] == 4.2
    md = {"exr/gvfx:match:focus_m": "4.2", "exr/gvfx:match:settings": "{}", "exr/other": 1}
    assert J.estimates_from_metadata(md) == {"focus_m": 4.2}
    assert "focus_m: 4.2" in J.format_estimates({"focus_m": 4.2})


def test_match_command(tmp_path):
    c = ctx(script_path=str(tmp_path / "s.nk"), has_element_input=True, has_camera=True)
    p = paths(c, "GVFX_Match1")
    argv, settings = J.build_match_command(["gvfx"], knobs(depth_channel="Z", **{P.match_knob_name("grain"): False}),
                                           c, p, PARAMS, tmp_path / "out")
    assert argv[:6] == ["gvfx", "match", "--plate", p.plate, "--element", p.element_input]
    assert argv[argv.index("--depth-layer") + 1] == "Z" and argv[argv.index("--camera") + 1] == p.camera
    assert settings == {"grain": False}
    with pytest.raises(P.KnobError, match="connect an element"):
        J.build_match_command(["gvfx"], knobs(), ctx(), p, PARAMS, tmp_path)


def test_farm_command():
    assert J.farm_command(["/venv/bin/gvfx"], Path("/s/a.json"), Path("/s/a.yaml")) == \
        ["/venv/bin/gvfx", "farm", "openjd", "/s/a.json", "-o", "/s/a.yaml"]


# ---------------------------------------------------------------- version lists

VERSIONS = {"timeline": "/s/sh.otio", "name": "sh", "plate": {"kind": "plate", "current": None, "versions": [
    {"version": None, "pattern": "/s/plate.####.exr", "frames": [1001, 1006]}]},
    "comp": {"kind": "comp", "current": "v002", "versions": [
        {"version": "v001", "status": "complete", "pattern": "/s/comp/v001/comp.####.exr", "frames": [1001, 1006]},
        {"version": "v002", "status": "complete", "pattern": "/s/comp/v002/comp.####.exr", "frames": [1001, 1006]}]},
    "elements": {"fire": {"kind": "element", "current": "v001", "versions": [
        {"version": "v001", "status": "complete", "pattern": "/s/e/fire/v001/fire.####.exr", "frames": [1001, 1006]},
        {"version": "v002", "status": "partial", "pattern": "/s/e/fire/v002/fire.####.exr", "frames": [1001, 1003]}]}}}


def test_version_lists():
    assert model.element_names(VERSIONS) == ["fire"]
    assert [model.version_label(v) for v in model.versions_of(VERSIONS, "fire")] == \
        ["v001  complete  1001-1006", "v002  partial  1001-1003"]
    assert model.current_version(VERSIONS, "fire") == "v001"  # the active one, not the newest
    assert model.current_version(VERSIONS, "comp") == "v002"
    assert model.find_version(VERSIONS, "fire", "v002")["pattern"].endswith("v002/fire.####.exr")
    assert model.sources(VERSIONS, "fire", "v002") == {"plate": "/s/plate.####.exr",
                                                       "element": "/s/e/fire/v002/fire.####.exr",
                                                       "comp": "/s/comp/v002/comp.####.exr"}
    assert model.frame_range(VERSIONS, "fire") == (1001, 1003)
    assert model.versions_of(VERSIONS, "smoke") == [] and model.current_version({}, "x") is None
    assert model.frame_file("/a/b.####.exr", 1002) == "/a/b.1002.exr"
    assert model.frame_file("/a/b.%04d.exr", 7) == "/a/b.0007.exr"
