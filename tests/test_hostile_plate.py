"""Hostile plates: NaN/Inf bands never reach an element file, and never steer an estimate.

The plate is the demo's ray-cast scene (known camera and depth) at a tiny size, with bands of +Inf,
-Inf and NaN written into its colour channels by OpenImageIO itself (float32 EXR, so they survive).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gvfx.camera_io import write_usd_camera
from gvfx.demo.run import reference_image
from gvfx.demo.scene import write_demo_plate
from gvfx.exr import read_exr, write_exr
from gvfx.job import load_job
from gvfx.render import render_job
from gvfx.sequence import discover

FRAMES = [1001, 1002]
W, H = 48, 27
EFFECTS = ("smoke", "fire", "explosion", "sparks", "debris", "dust", "rain", "snow", "insert")


def _poison(path: Path) -> int:
    """Rewrite a plate frame with +Inf, NaN and -Inf bands in R, G, B (float32); return bad pixels."""
    img = read_exr(path)
    ch = {k: np.array(v, np.float32) for k, v in img.channels.items()}
    ch["R"][8:12, :] = np.inf          # the band of +Inf across the frame
    ch["G"][14:16, :] = np.nan
    ch["B"][18:19, 10:40] = -np.inf
    import OpenImageIO as oiio  # written by OIIO directly: gvfx's own writer would clean the values

    names = list(ch)
    spec = oiio.ImageSpec(W, H, len(names), "float")
    spec.channelnames = tuple(names)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(np.stack([ch[n] for n in names], axis=-1))
    out.close()
    bad = ~np.isfinite(np.stack([ch["R"], ch["G"], ch["B"]], -1)).all(-1)
    return int(bad.sum())


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("nanshot")
    pattern, track, scene = write_demo_plate(root / "plate", W, H, FRAMES)
    bad = [_poison(root / "plate" / f"plate.{f:04d}.exr") for f in FRAMES][0]
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    cx, top, cz = scene.table_top_center
    els = []
    for i, eff in enumerate(EFFECTS):
        e = {"name": eff, "effect": eff, "placement": {"point": [cx, top, cz]}, "size_m": 0.4, "seed": i + 1,
             "motion_samples": 1}
        if eff in ("smoke", "fire", "explosion"):
            e["params"] = {"resolution": 8, "preroll_frames": 0}
        elif eff == "insert":
            shutil.copy(reference_image(), root / "reference.png")
            e["reference"] = "reference.png"
        else:
            e["params"] = {"count": 60}
        els.append(e)
    job = {"name": "nan", "confine": True, "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
           "camera": {"file": "cam.usda"}, "output": "out", "elements": els}
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    return root, bad


def test_the_plate_really_holds_nan_and_inf(shot) -> None:
    root, bad = shot
    img = read_exr(root / "plate" / "plate.1001.exr")
    assert img.nonfinite["R"][1] == 4 * W and img.nonfinite["G"][0] == 2 * W and img.nonfinite["B"][1] == 30
    assert img.nonfinite_mask is not None and int(img.nonfinite_mask.sum()) == bad


def test_every_effect_on_a_nan_inf_plate_writes_only_finite_sane_pixels(shot) -> None:
    root, bad = shot
    res = render_job(load_job(root / "job.yaml"))
    for eff in EFFECTS:
        seq = discover(root / "out" / "elements" / eff / "v001" / f"{eff}.####.exr")
        assert list(seq.frames) == FRAMES
        for f in FRAMES:
            img = read_exr(seq.path(f))
            assert not img.nonfinite or all(n == (0, 0) for c, n in img.nonfinite.items() if c != "Z"), \
                (eff, f, img.nonfinite)
            for c, arr in img.channels.items():
                if c != "Z":
                    assert np.isfinite(arr).all(), (eff, c)
                    # an element lit like the plate: nothing near the half maximum the +Inf band reads as
                    assert float(np.abs(arr).max()) < 1000.0, (eff, c, float(np.abs(arr).max()))
            assert img.metadata["gvfx:plate_nonfinite_px"] == bad
        est = res.estimates[eff]
        if est.colour is not None:
            assert max(est.colour.gain) < 32 and min(est.colour.gain) > 1 / 32, (eff, est.colour.gain)
        info = json.loads((root / "out" / "elements" / eff / "v001" / "version.json").read_text())
        assert info["plate_nonfinite_px"] == {str(f): bad for f in FRAMES}
    for f in FRAMES:
        comp = read_exr(root / "out" / "comp" / "v001" / f"comp.{f:04d}.exr")
        assert all(np.isfinite(a).all() for a in comp.channels.values())


def test_estimates_leave_the_bad_pixels_out(shot) -> None:
    """The colour match measured on the poisoned plate equals the one measured on the same plate with
    the bad pixels given as NaN (what gvfx.match ignores), and is a plausible grade."""
    from gvfx.match.colour import measure_match
    from gvfx.plate import open_plate

    root, _ = shot
    plate = open_plate(load_job(root / "job.yaml"))
    rgb = plate.measurable_rgb(1001)
    mask = plate.nonfinite_mask(1001)
    assert np.isnan(rgb[mask]).all() and np.isfinite(rgb[~mask]).all()
    assert plate.nonfinite_px[1001] == int(mask.sum())
    el = np.zeros((H, W, 4), np.float32)
    el[7:13, 4:44] = (0.3, 0.2, 0.1, 1.0)  # over the +Inf band
    cm = measure_match(el, rgb)
    assert max(cm.gain) < 32 and max(cm.plate_white) < 100, cm
    poisoned = measure_match(el, plate.rgba(1001)[..., :3])  # the reader's stand-ins: 65504
    assert max(poisoned.plate_white) > 1000  # what the mask protects the estimate from
    from gvfx.match.stage import colour_out_of_range

    assert colour_out_of_range(cm) is None
    from gvfx.match.colour import ColourMatch

    assert "gain 4.1e+04" in colour_out_of_range(ColourMatch(gain=(41000.0, 1.0, 1.0)))
    assert "lift" in colour_out_of_range(ColourMatch(lift=(9.0, 0.0, 0.0)))
    assert "non-finite" in colour_out_of_range(ColourMatch(saturation=float("nan")))


def test_writer_never_writes_non_finite_colour(tmp_path: Path) -> None:
    a = np.full((8, 8), 1.0, np.float32)
    a[0, 0], a[1, 1], a[2, 2], a[3, 3] = np.nan, np.inf, -np.inf, 1e9
    z = np.full((8, 8), 2.0, np.float32)
    z[0, 0], z[1, 1] = np.nan, np.inf
    p = write_exr(tmp_path / "x.exr", {"R": a, "G": a, "B": a, "A": a, "Z": z})
    img = read_exr(p)
    assert img.nonfinite_mask is None
    for c in "RGBA":
        v = img.channels[c]
        assert np.isfinite(v).all() and v[0, 0] == 0.0 and v[1, 1] == 65504.0 and v[2, 2] == -65504.0
        assert v[3, 3] == 65504.0
    assert np.isposinf(img.channels["Z"][0, 0]) and np.isposinf(img.channels["Z"][1, 1])
    assert img.channels["Z"][4, 4] == 2.0
