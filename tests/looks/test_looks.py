"""Looks of every effect on the demo plate with the job defaults, measured (issue 13, point 4).

The first group asserts what the issue demands and the code meets today. The second group ("today's
floor") holds looks other work is improving (volumes, sparks/rain/snow, scene contact) at the value
they reach now, each with the issue's target in its docstring, so a regression shows and the lead can
tighten them after merging.
"""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.demo.all_effects import EFFECTS
from gvfx.match import colour as colour_mod
from gvfx.match.stage import NO_SHADOW_EFFECTS

PARTICLE_WEATHER = ("rain", "snow")


# --- what the issue demands, met today ----------------------------------------------------------------

def test_every_layer_is_finite_and_alpha_in_range(look):
    for ch in look.rgba + look.shadow + look.comp:
        assert np.all(np.isfinite(ch)), look.effect
    for z in look.z:
        assert not np.isnan(z).any() and np.all(z[np.isfinite(z)] > 0), look.effect
    for a in look.rgba:
        assert a[..., 3].min() >= -1e-3 and a[..., 3].max() <= 1.0 + 1e-3, look.effect
    for s in look.shadow:
        assert s.min() >= 0.0 and s.max() <= 1.0, look.effect


def test_every_effect_is_visible_and_not_absurdly_large(look):
    cov = look.coverage()
    assert 0.003 < cov < 0.4, (look.effect, cov)
    assert max(float(a[..., 3].max()) for a in look.rgba) > 0.15, look.effect


def test_colour_match_is_off_or_within_its_documented_bounds(look):
    src = look.json("sources")["colour"]
    if look.effect in colour_mod.EMISSIVE_EFFECTS | colour_mod.WHITE_EFFECTS:
        assert src == "off", look.effect
        assert "off by default" in look.json("notes")["colour"]
        return
    cm = look.json("colour")
    if src == "off":  # tiny / white by its pixels: said why
        assert cm is None and "off by default" in look.json("notes")["colour"]
        return
    lo = colour_mod.EXPOSURE_BOUNDS[0] * colour_mod.WB_BOUNDS[0] / 1.3  # wb renormalised to unit luminance
    hi = colour_mod.EXPOSURE_BOUNDS[1] * colour_mod.WB_BOUNDS[1] * 1.3
    assert cm["mode"] == "light"
    assert all(lo <= g <= hi for g in cm["gain"]), (look.effect, cm["gain"])  # the issue: 14.5 and 6.9e6
    white = max(cm["plate_white"])
    assert all(abs(v) <= colour_mod.LIFT_MAX_FRACTION * white * 1.3 + 1e-6 for v in cm["lift"]), cm["lift"]
    assert colour_mod.SATURATION_BOUNDS[0] - 1e-9 <= cm["saturation"] <= colour_mod.SATURATION_BOUNDS[1] + 1e-9


def test_shadow_layer_darkens_only_a_small_part_of_the_frame(look):
    # the issue: rain's shadow layer darkened 91% of the frame by more than half
    limit = 0.06 if look.effect == "explosion" else 0.02
    assert look.shadow_dark_fraction(0.5) < limit, (look.effect, look.shadow_dark_fraction(0.5))
    if look.effect in NO_SHADOW_EFFECTS:
        assert all(float(s.max()) == 0.0 for s in look.shadow), look.effect
        assert "off by default" in look.json("notes")["shadows"]


@pytest.mark.parametrize("effect", PARTICLE_WEATHER)
def test_forced_weather_shadows_scale_with_each_drop(shot, effect):
    lk = shot.look(effect, {"shadows": "on"})
    assert lk.shadow_dark_fraction(0.5) == 0.0, lk.shadow_dark_fraction(0.5)
    assert lk.shadow_dark_fraction(0.1) < 0.2
    assert max(float(s.max()) for s in lk.shadow) > 0.0  # on, but per drop: faint and local


def test_no_light_in_frame_gives_the_default_light_not_a_guess(look):
    assert look.json("sources")["light_dir"] == "default"
    d = np.asarray(look.json("light_dir"))
    assert d[1] > 0.7  # from above, behind the camera (gvfx.match.shadow.default_light_dir)


def test_nothing_below_the_ground_for_objects_and_volumes(look):
    if look.effect in PARTICLE_WEATHER:
        pytest.skip("weather: see test_weather_depth_below_ground_today")
    ymin = min(float(p[:, 1].min()) for k in range(len(look.frames)) if len(p := look.world_points(k)))
    assert ymin > -0.05, (look.effect, ymin)


def test_light_sources_are_hdr(shot):
    for effect in ("fire", "explosion", "sparks"):
        assert shot.look(effect).peak() > 1.0, effect
    assert shot.look("sparks").median_lit() > 2.0  # the issue: median 0.55


# --- today's floor: looks other work is improving ----------------------------------------------------

def test_explosion_core_brightness_today(shot):
    """Target: a hot HDR core >> 1.0 scene-linear. Measured 8.06 at 960x540 (was 1.2 before the
    volume work): hold it above 4."""
    assert shot.look("explosion").peak() > 4.0


def test_fire_core_brightness_today(shot):
    """Target: blackbody emission with an HDR core. Measured 2.33: hold it above 1.8."""
    assert shot.look("fire").peak() > 1.8


def test_weather_depth_below_ground_today(shot):
    """Target: nothing below the ground (y >= 0). Measured: rain -0.12 m, snow -0.03 m (drops seen
    past the ground's edge carry depths under it; it was -0.45 m); hold them above -0.2 m."""
    for effect in PARTICLE_WEATHER:
        lk = shot.look(effect)
        ymin = min(float(p[:, 1].min()) for k in range(len(lk.frames)) if len(p := lk.world_points(k)))
        assert ymin > -0.2, (effect, ymin)


def test_insert_motion_per_frame_today(shot):
    """Target: a resting object moves < 1 mm a frame (met once it lands: tests/engines/sim/test_contact.py,
    0.0 mm). The look's three frames show the default insert still falling onto the table: its visible
    centroid moves 40-87 mm a frame (free fall at 24 fps); hold it under 100 mm."""
    lk = shot.look("insert")
    cents = [p.mean(0) for k in range(len(lk.frames)) if len(p := lk.world_points(k, 0.5))]
    assert len(cents) == len(lk.frames)
    assert float(np.linalg.norm(np.diff(cents, axis=0), axis=1).max()) < 0.10


def test_every_effect_is_listed():
    """The looks cover every sim effect `gvfx effects` lists."""
    from gvfx.engines import get_engine

    assert set(EFFECTS) == set(get_engine("sim").effects())
