"""One element frame through the match stage (:func:`match_frame`, the order is in
:mod:`gvfx.match.stage`): the layers of a :class:`MatchedFrame` on the overscan canvas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from gvfx.camera import CameraTrack
from gvfx.element import ElementFrame
from gvfx.errors import InputError
from gvfx.match import holdout as _holdout
from gvfx.match import lens as _lens
from gvfx.match import motion as _motion
from gvfx.match import shadow as _shadow
from gvfx.match.estimates import MatchEstimates, _opt
from gvfx.match.settings import MatchSettings

__all__ = ["MatchedFrame", "match_frame", "grain_seed"]


def _finite_rgb(rgb: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(rgb, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class MatchedFrame:
    """One matched element frame on its canvas (display window plus ``margin`` on every side).

    rgba (H, W, 4) premultiplied ACEScg; z (H, W) metric (inf = empty); holdout, shadow (H, W) 0..1;
    lightwrap, grain (H, W, 3) premultiplied, to add to rgb; motion (H, W, 2) px/frame (U right, V up).
    """

    rgba: np.ndarray
    z: np.ndarray
    holdout: np.ndarray
    shadow: np.ndarray
    lightwrap: np.ndarray
    grain: np.ndarray
    motion: np.ndarray
    margin: int = 0
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def display(self, name: str) -> np.ndarray:
        """A layer cropped to the display window (a view: writing into it writes the layer)."""
        return _lens.crop(getattr(self, name), self.margin)


def grain_seed(element_seed: int, frame: int) -> int:
    """Deterministic grain seed of an element's frame (same for every chunk of a render)."""
    return (int(element_seed) * 1_000_003 + int(frame) * 7919 + 12345) % (2 ** 31 - 1)


def _box(rgba: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    """The bounding box of the element's non-zero pixels grown by ``pad`` (None = empty element).

    The apply steps of gvfx.match (grade, haze, defocus, grain, light wrap) run on this crop only: an
    element usually covers a small part of a 4K frame."""
    mask = np.any(rgba != 0, axis=-1)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (slice(max(0, rows[0] - pad), min(h, rows[-1] + pad + 1)),
            slice(max(0, cols[0] - pad), min(w, cols[-1] + pad + 1)))


def _on_box(rgba: np.ndarray, pad: int, fn: Any, *others: Any) -> np.ndarray:
    """``fn(rgba_crop, *other_crops)`` on the element's box, pasted into a copy of ``rgba``; ``others``
    are (H, W, ...) arrays cropped alike (scalars pass through)."""
    box = _box(rgba, pad)
    out = rgba.copy()
    if box is None:
        return out
    crops = [o[box] if isinstance(o, np.ndarray) and o.ndim >= 2 else o for o in others]
    out[box] = np.asarray(fn(rgba[box], *crops), np.float32)
    return out


def _spread_z(z: np.ndarray, alpha: np.ndarray, reach_px: int) -> np.ndarray:
    """Give pixels that blur made visible (alpha > 0, no Z) the nearest (min) Z within ``reach_px``."""
    need = (alpha > 0) & ~np.isfinite(z)
    if reach_px <= 0 or not need.any():
        return z
    zmin = ndimage.minimum_filter(z, size=2 * reach_px + 1, mode="nearest")
    return np.where(need, zmin, z).astype(np.float32)


def match_frame(ef: ElementFrame, *, frame: int, plate_rgb: np.ndarray, plate_z: np.ndarray | None,
                track: CameraTrack | None, settings: MatchSettings, estimates: MatchEstimates, seed: int,
                element_shutter_frames: float = 0.0, margin: int = 0,
                distort_src_px: np.ndarray | None = None) -> MatchedFrame:
    """Match one element frame (see the module doc). All arrays are on the same canvas: the display
    window plus ``margin`` (``plate_rgb``/``plate_z`` padded by edge extension, ``track`` the overscan
    camera). ``plate_z`` None = no depth (2D: no depth holdout, shadow, haze or camera motion).
    ``distort_src_px``: the re-distortion map of :mod:`gvfx.match.lens` (None = no lens)."""
    rgba = np.nan_to_num(np.asarray(ef.rgba, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    h, w = rgba.shape[:2]
    z = np.asarray(ef.z, np.float32)
    z = np.where(np.isfinite(z) & (rgba[..., 3] > 0), z, np.inf).astype(np.float32)
    pz = None if plate_z is None else np.asarray(plate_z, np.float32)
    if pz is not None and pz.shape != (h, w):
        raise InputError(f"plate depth is {pz.shape[1]}x{pz.shape[0]}, the element {w}x{h}", frame=frame)
    prgb = _finite_rgb(plate_rgb)
    engine_hold = None if ef.holdout is None else np.clip(np.nan_to_num(ef.holdout), 0, 1).astype(np.float32)

    if estimates.colour is not None and settings.colour_strength > 0:
        cm = _opt("colour")
        rgba = _on_box(rgba, 0, lambda c: cm.apply_match(c, estimates.colour, strength=settings.colour_strength))
    if estimates.haze is not None and np.isfinite(z).any():
        hz = _opt("haze")
        rgba = _on_box(rgba, 0, lambda c, zc: hz.apply_haze(c, zc, estimates.haze), z)

    if "motion" in ef.extra:
        mv = np.asarray(ef.extra["motion"], np.float32)[..., :2]
    elif track is not None and np.isfinite(z).any():
        mv = _motion.camera_motion(z, track, frame, alpha=rgba[..., 3])
    else:
        mv = np.zeros((h, w, 2), np.float32)
    blur_shutter = {"on": settings.shutter_frames, "off": 0.0,
                    "auto": settings.shutter_frames if element_shutter_frames <= 0 else 0.0}[settings.motion_blur]
    reach = 0
    if blur_shutter > 0:
        hold_pm = None if engine_hold is None else np.concatenate([np.repeat((engine_hold * rgba[..., 3])[..., None], 3, -1),
                                                                    rgba[..., 3:4]], -1)
        rgba = _motion.vector_blur(rgba, mv, blur_shutter)
        if hold_pm is not None:
            hb = _motion.vector_blur(hold_pm, mv, blur_shutter)
            engine_hold = np.where(hb[..., 3] > 1e-6, hb[..., 0] / np.maximum(hb[..., 3], 1e-6), 0.0).astype(np.float32)
        reach = int(np.ceil(float(np.abs(mv).max(initial=0)) * blur_shutter / 2)) + 1

    defocus_mod = _opt("defocus") if settings.defocus else None
    if defocus_mod is not None and rgba[..., 3].max(initial=0) > 0:
        if estimates.focus_m is not None and np.isfinite(z).any() and track is not None:
            cam = track.camera_at(frame)
            zz = np.where(np.isfinite(z), z, estimates.focus_m)
            radius = defocus_mod.coc_radius_px(zz, focus_m=estimates.focus_m, focal_mm=cam.focal_mm,
                                               fstop=estimates.fstop, haperture_mm=cam.haperture_mm,
                                               width_px=cam.width)
        else:
            radius = estimates.defocus_radius_px
        rmax = float(np.max(radius)) if np.size(radius) else 0.0
        if rmax > 0.25:
            hold_pm = None if engine_hold is None else np.concatenate(
                [np.repeat((engine_hold * rgba[..., 3])[..., None], 3, -1), rgba[..., 3:4]], -1)
            pad = int(np.ceil(rmax)) + 2
            rgba = _on_box(rgba, pad, defocus_mod.defocus, z, radius)
            if hold_pm is not None and engine_hold.any():
                hb = _on_box(hold_pm, pad, defocus_mod.defocus, z, radius)
                engine_hold = np.where(hb[..., 3] > 1e-6, hb[..., 0] / np.maximum(hb[..., 3], 1e-6), 0.0)
            reach = max(reach, int(np.ceil(rmax)) + 1)
    z = _spread_z(z, rgba[..., 3], reach)

    if pz is not None:
        dh = _holdout.depth_holdout(z, pz, element_alpha=rgba[..., 3], softness=settings.holdout_softness,
                                    samples=settings.holdout_samples)
    else:
        dh = np.zeros((h, w), np.float32)
    hold = _holdout.combine_holdouts(dh, engine_hold, settings.holdout_mode if pz is not None else "engine")
    hold = np.where(rgba[..., 3] > 0, hold, 0.0).astype(np.float32)

    if "shadow" in ef.extra:  # an engine that knows its element's true shape casts its own shadow (3D insert)
        cast = np.clip(np.nan_to_num(np.asarray(ef.extra["shadow"], np.float32)), 0.0, 1.0)
        touch = np.clip(np.nan_to_num(np.asarray(ef.extra.get("contact", 0.0), np.float32)), 0.0, 1.0)
        shadow = 1.0 - (1.0 - settings.shadow_strength * cast) * (1.0 - settings.contact_strength * touch)
        shadow = np.broadcast_to(shadow, (h, w)).astype(np.float32)
    elif pz is not None and track is not None and estimates.light_dir is not None and estimates.shadows:
        # emissive volumes give the alpha they absorb light with: no shadow where they glow
        occ = ef.extra.get("shadow_alpha")
        occ = rgba[..., 3] if occ is None else np.minimum(np.asarray(occ, np.float32), rgba[..., 3])
        shadow = _shadow.shadow_matte(occ * (1 - hold), z, pz, track.camera_at(frame),
                                      track.transform(frame), np.asarray(estimates.light_dir),
                                      strength=settings.shadow_strength, softness=settings.shadow_softness,
                                      contact_strength=settings.contact_strength,
                                      contact_radius=settings.contact_radius)
    else:
        shadow = np.zeros((h, w), np.float32)

    extra = {k: v for k, v in ef.extra.items() if k not in ("motion", "shadow_alpha", "shadow", "contact")}
    extra.update(_emitted_layers(ef, rgba, pz, track, frame, prgb, settings))  # emission, platelight
    lay = _lens.redistort_layers({"rgba": rgba, "z": z, "holdout": hold, "shadow": shadow, "motion": mv, **extra},
                                 distort_src_px)
    rgba, z, hold, shadow, mv = lay["rgba"], lay["z"], lay["holdout"], lay["shadow"], lay["motion"]

    grain = np.zeros((h, w, 3), np.float32)
    if estimates.grain is not None and rgba[..., 3].max(initial=0) > 0:
        gm = _opt("grain")
        box = _box(rgba, 0)
        _, grain[box] = gm.apply_grain(rgba[box], estimates.grain, seed=seed, plate_rgb=prgb[box])
    lw = np.zeros((h, w, 3), np.float32)
    lw_mod = _opt("lightwrap") if settings.lightwrap_strength > 0 and settings.lightwrap_width_px > 0 else None
    if lw_mod is not None and rgba[..., 3].max(initial=0) > 0:
        box = _box(rgba, int(np.ceil(4 * settings.lightwrap_width_px)) + 2)
        lw[box] = lw_mod.light_wrap(rgba[box], prgb[box], width_px=settings.lightwrap_width_px,
                                    strength=settings.lightwrap_strength)
    return MatchedFrame(rgba=rgba.astype(np.float32), z=z.astype(np.float32), holdout=hold.astype(np.float32),
                        shadow=shadow.astype(np.float32), lightwrap=np.asarray(lw, np.float32),
                        grain=np.asarray(grain, np.float32), motion=mv.astype(np.float32), margin=margin,
                        extra={k: lay[k] for k in extra})


# ---- emitted light (gvfx.match.emitted_light): the emission layer and the light on the plate ----
def _emitted_layers(ef: ElementFrame, rgba: np.ndarray, pz: np.ndarray | None, track: CameraTrack | None,
                    frame: int, prgb: np.ndarray, settings: MatchSettings) -> dict[str, np.ndarray]:
    """``emission`` (the matched rgb times the share of the engine's rgb it emits) and ``platelight``
    (its light on the plate, when there is depth and ``plate_light`` > 0) of an emissive element."""
    if ef.emission is None:
        return {}
    em = np.nan_to_num(np.asarray(ef.emission, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
    total = float(np.nan_to_num(np.asarray(ef.rgba, np.float32)[..., :3]).sum())
    share = float(np.clip(em.sum() / total, 0.0, 1.0)) if total > 0 else 0.0
    out = {"emission": (rgba[..., :3] * share).astype(np.float32)}
    if pz is not None and track is not None and settings.plate_light > 0:
        from gvfx.match import emitted_light as _el

        cam, c2w = track.camera_at(frame), track.transform(frame)
        if ef.lights is not None:
            pos, inten = ef.lights.positions, ef.lights.intensity
        else:
            pos, inten = _el.sample_lights(em, ef.z, cam, c2w)
        out["platelight"] = _el.plate_light(pos, inten, prgb, pz, cam, c2w, strength=settings.plate_light)
    return out
