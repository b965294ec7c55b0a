"""The sim engine's front door: registry, placement onto plate depth, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines import engine_names, get_engine
from gvfx.engines.base import ElementSpec, Engine, PlateContext, Placement
from gvfx.errors import EngineError, InputError, PlacementError

W, H = 96, 54


def floor_plate(frames=(1, 2, 3)) -> PlateContext:
    """A camera 1.6 m above a floor (y = 0) looking down the -Z axis; sky above the horizon."""
    cam = Camera(35.0, 36.0, W, H)
    m = look_at(np.array([0.0, 1.6, 0.0]), np.array([0.0, 0.6, -5.0]))
    rays = cam.ray_directions() @ m[:3, :3].T  # world direction per unit Z
    with np.errstate(divide="ignore"):
        z = np.where(rays[..., 1] < -1e-6, -1.6 / rays[..., 1], np.inf).astype(np.float32)
    track = CameraTrack.static(cam, list(frames), m)
    return PlateContext(frames=list(frames), camera=track, depth=lambda f: z, width=W, height=H)


def test_registry_lists_sim_and_its_effects() -> None:
    assert "sim" in engine_names()
    eng = get_engine("sim")
    assert isinstance(eng, Engine)
    assert {"smoke", "fire", "explosion", "sparks", "debris", "dust", "rain", "snow", "insert"} <= set(eng.effects())
    for info in eng.effects().values():
        for p in info.params:
            assert p.help and p.name
    with pytest.raises(EngineError, match="unknown engine 'nope'"):
        get_engine("nope")


def test_screen_placement_lands_on_the_floor() -> None:
    ctx = floor_plate()
    eng = get_engine("sim")
    spec = ElementSpec(name="s", effect="sparks", placement=Placement(screen=(W / 2, H * 0.85), frame=1), size_m=0.3)
    a = eng.anchor(spec, ctx)
    assert abs(a.point[1]) < 0.02  # on the floor
    assert np.degrees(np.arccos(np.clip(a.normal @ [0, 1, 0], -1, 1))) < 3.0
    # the point projects back to the pixel it was placed at
    uv, z = ctx.camera.project_world(a.point[None], 1)
    assert np.allclose(uv[0], (W / 2, H * 0.85), atol=0.6)


def test_point_placement_is_taken_as_given() -> None:
    a = get_engine("sim").anchor(ElementSpec(name="p", effect="fire", placement=Placement(point=(1.0, 0.5, -4.0))),
                                 floor_plate())
    assert np.allclose(a.point, (1.0, 0.5, -4.0)) and np.allclose(a.up, (0, 1, 0))


@pytest.mark.parametrize("placement,match", [
    (Placement(screen=(W / 2, 2.0), frame=1), "sky|no depth"),
    (Placement(screen=(W + 10, 10.0), frame=1), "outside"),
    (Placement(screen=(10.0, 40.0), frame=99), "frame 99 is not in the plate"),
])
def test_bad_placements_are_clear(placement: Placement, match: str) -> None:
    spec = ElementSpec(name="bad", effect="sparks", placement=placement)
    with pytest.raises(PlacementError, match=match) as info:
        get_engine("sim").validate(spec, floor_plate())
    assert "elements[bad].placement" in str(info.value)


def test_other_bad_specs() -> None:
    eng, ctx = get_engine("sim"), floor_plate()
    with pytest.raises(EngineError, match="unknown sim effect 'lava'"):
        eng.validate(ElementSpec(name="x", effect="lava"), ctx)
    with pytest.raises(InputError, match="size_m"):
        eng.validate(ElementSpec(name="x", effect="fire", size_m=-1.0, placement=Placement(point=(0, 0, -3))), ctx)
    with pytest.raises(InputError, match="reference: file not found"):
        eng.validate(ElementSpec(name="x", effect="insert", reference=Path("/no/such.png"),
                                 placement=Placement(point=(0, 0, -3))), ctx)
    with pytest.raises(InputError, match="start_frame"):
        eng.validate(ElementSpec(name="x", effect="fire", start_frame=50, placement=Placement(point=(0, 0, -3))), ctx)
