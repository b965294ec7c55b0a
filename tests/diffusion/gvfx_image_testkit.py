"""Shared pieces of the image-stack tests: the tiny stacks (built once per session), a small static
plate context, and element specs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from gvfx.camera import CameraTrack, default_camera
from gvfx.engines.base import ElementSpec, Placement, PlateContext

REPO = Path(__file__).resolve().parents[2]
W = H = 64
STACKS = ("sd15_depth_ip", "sdxl_depth_ip")
_BUILT: dict[str, Path] = {}


def tiny_module():
    spec = importlib.util.spec_from_file_location("gvfx_model_tiny", REPO / "model" / "tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_store(tmp_path_factory) -> Path:
    """A model store holding both tiny image stacks (built once per test session)."""
    if "root" not in _BUILT:
        root = tmp_path_factory.mktemp("gvfx_models")
        tiny = tiny_module()
        for name in STACKS:
            tiny.build_tiny(name, root / name)
        _BUILT["root"] = root
    return _BUILT["root"]


def plate_ctx(frames=(1001, 1002), *, grain: float = 0.0, width: int = W, height: int = H) -> PlateContext:
    """A locked-off camera over a floor: depth from 2 m (bottom) to 12 m (top rows), a smooth ACEScg
    gradient plate with optional per-frame grain (a static shot that still changes a little)."""
    cam = default_camera(width, height)
    track = CameraTrack.static(cam, list(frames))
    v = (np.arange(height, dtype=np.float32) + 0.5) / height
    z = np.repeat((12.0 - 10.0 * v)[:, None], width, axis=1).astype(np.float32)
    u = (np.arange(width, dtype=np.float32) + 0.5) / width
    base = np.stack([0.05 + 0.3 * u[None, :] + 0 * v[:, None], 0.1 + 0.2 * v[:, None] + 0 * u[None, :],
                     np.full((height, width), 0.15, np.float32)], -1).astype(np.float32)

    def image(f: int) -> np.ndarray:
        rgb = base.copy()
        if grain:
            rgb += np.random.default_rng(f).normal(0.0, grain, rgb.shape).astype(np.float32)
        return np.concatenate([rgb, np.ones((height, width, 1), np.float32)], -1)

    return PlateContext(frames=list(frames), camera=track, depth=lambda f: z.copy(), width=width, height=height,
                        image=image)


def spec(effect: str, store: Path, stack: str = "sd15_depth_ip", **params) -> ElementSpec:
    base = {"stack": stack, "models": str(store), "model_resolution": 64, "steps": 2, "prompt": "a small red fire"}
    if effect == "refine":
        base.update(sim_effect="sparks", strength=0.5)
    base.update(params)
    return ElementSpec(name=f"t_{effect}", effect=effect, engine="diffusion",
                       placement=Placement(screen=(W / 2, H * 0.7)), size_m=1.0, seed=7, params=base)


def check_mode_outputs(ctx: PlateContext, effect: str, first: list, again: list) -> None:
    """Every frame of a mode's output is a valid element, the same bits with the same seed, and an
    insert leaves the plate untouched to the bit outside its alpha."""
    for f, ef, ef2 in zip(ctx.frames, first, again):
        assert ef.rgba.shape == (H, W, 4) and ef.z.shape == ef.holdout.shape == (H, W)
        a = ef.rgba[..., 3]
        assert ef.rgba.dtype == np.float32 and np.isfinite(ef.rgba).all()
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert np.all(ef.rgba[..., :3][a == 0] == 0.0), "premultiplied: no colour where alpha is 0"
        assert np.all(np.isinf(ef.z[a == 0])) and np.isfinite(ef.z[a > 0]).all()
        assert np.array_equal(ef.rgba, ef2.rgba) and np.array_equal(ef.z, ef2.z), "same seed, same bits"
    assert first[-1].rgba[..., 3].max() > 0.0, f"{effect}: no element"
    if effect == "insert":
        for f, ef in zip(ctx.frames, first):
            plate = ctx.image(f)
            a = ef.rgba[..., 3:4]
            comp = ef.rgba + (1.0 - a) * plate
            outside = a[..., 0] == 0
            assert outside.any() and np.array_equal(comp[outside], plate[outside]), "plate untouched to the bit"
            assert not np.array_equal(comp[~outside], plate[~outside])  # the model changed the inside
            assert np.all(ef.holdout == 0)
