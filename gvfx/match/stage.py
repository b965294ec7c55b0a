"""The match stage: integrate one rendered element into its plate, frame by frame, and rebuild the comp.

Per shot (once, so nothing flickers): grain profile, focus, haze and key light are measured on the
plate's middle frame, the colour match on the element's first visible frame; every one of them can be
given in the settings instead (:class:`MatchSettings`, the job's ``match:`` section).

Per element and frame (:func:`match_frame`), on the (overscan, undistorted) canvas:
colour match -> haze -> motion vectors -> vector blur (elements rendered without the plate's shutter)
-> defocus -> depth holdout (anti-aliased, combined with the engine's) -> shadow -> re-distortion ->
grain and light wrap (against the real plate). The result is a set of layers (:class:`MatchedFrame`).

Across elements (:func:`occlude`), each element's holdout also takes in the elements nearer than it at
each pixel, so the comp is rebuilt with plain merges in any order (:func:`rebuild_comp`)::

    vis_i   = 1 - holdout_i
    el_i    = (rgba_i + [lightwrap_i, 0] + [grain_i, 0]) * vis_i        (premultiplied, alpha included)
    plate'  = plate.rgb * prod_i (1 - shadow_i) + sum_i platelight_i     (alpha untouched)
    fg      = sum_i el_i
    comp    = fg + plate' * (1 - fg.a)                                   ("over")

docs/match.md gives the same recipe as Nuke and Blender nodes; ``gvfx match`` (a user's element sequence,
outside a render) is :mod:`gvfx.match.sequences`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from gvfx.camera import CameraTrack
from gvfx.comp import lit_background
from gvfx.element import ElementFrame, Param
from gvfx.errors import InputError
from gvfx.match import holdout as _holdout
from gvfx.match import lens as _lens
from gvfx.match import motion as _motion
from gvfx.match import shadow as _shadow

log = logging.getLogger(__name__)

#: effects whose elements cast no shadow by default (``shadows: auto``)
NO_SHADOW_EFFECTS = frozenset({"rain", "snow"})

__all__ = ["MATCH_PARAMS", "MatchSettings", "PlateSample", "MatchEstimates", "MatchedFrame", "estimate",
           "match_frame", "occlude", "rebuild_comp", "layer_dict", "write_matched", "grain_seed"]

MATCH_PARAMS: tuple[Param, ...] = (
    Param("overscan_px", int, None, "render margin outside the display window (default 5% of the width)", min=0),
    Param("holdout_mode", str, "max", "combine the depth holdout with the engine's", choices=_holdout.HOLDOUT_MODES),
    Param("holdout_softness", float, 0.02, "depth ramp of the holdout, fraction of the element's depth", min=0.0),
    Param("holdout_samples", int, 4, "sub-samples per axis on depth edges (anti-aliasing)", min=1, max=16),
    Param("shadows", str, "auto", "cast and contact shadows: auto = on except for rain and snow (drops and flakes "
          "cast none you could see); on; off", choices=("auto", "on", "off")),
    Param("shadow_strength", float, 0.6, "density of the cast shadow under an opaque element (0 = off)", 0.0, 1.0),
    Param("shadow_softness", float, 0.05, "blur of the cast shadow, fraction of the element's size", min=0.0),
    Param("contact_strength", float, 0.8, "darkening where the element touches the surface (0 = off)", 0.0, 1.0),
    Param("contact_radius", float, 0.15, "reach of the contact darkening, fraction of the element's size", min=0.0),
    Param("light_dir", tuple, None, "world direction towards the key light (default: the element's light_dir "
          "param, else estimated from the plate)"),
    Param("grain", bool, True, "add the plate's grain to the element"),
    Param("grain_profile", dict, None, "grain profile to use instead of measuring (as printed by gvfx match)"),
    Param("colour", str, "auto", "colour match: auto = on except for emissive (fire, explosion, sparks), white "
          "(snow, rain) and tiny elements (docs/match.md); on; off", choices=("auto", "on", "off")),
    Param("colour_strength", float, 1.0, "strength of the colour match (0 = off; use 0 for light sources)", 0.0, 1.0),
    Param("colour_match", dict, None, "colour match to use instead of measuring (as printed)"),
    Param("defocus", bool, True, "defocus the element like the plate"),
    Param("focus_m", float, None, "focus distance in metres (default: estimated from the plate)", min=0.0),
    Param("fstop", float, None, "f-stop (default: estimated from the plate)", min=0.1),
    Param("haze", bool, True, "add the plate's atmospheric haze by depth"),
    Param("haze_density_per_m", float, None, "haze density per metre (default: fitted to the plate)", min=0.0),
    Param("haze_colour", tuple, None, "haze colour, 3 numbers ACEScg (default: fitted)"),
    Param("lightwrap_width_px", float, 8.0, "light wrap width in pixels", min=0.0),
    Param("lightwrap_strength", float, 0.5, "light wrap strength (0 = off)", 0.0, 1.0),
    Param("motion_blur", str, "auto", "vector-blur elements rendered without the plate's shutter",
          choices=("auto", "on", "off")),
    Param("shutter_frames", float, 0.5, "the plate's shutter, fraction of a frame", 0.0, 2.0),
    Param("stmap", str, None, "re-distort ST-map EXR (Nuke STMap convention: R, G = source u, v from bottom-left)"),
    Param("k1", float, 0.0, "radial distortion k1 (normalised by half the display diagonal)"),
    Param("k2", float, 0.0, "radial distortion k2"),
    Param("plate_light", float, 1.0, "strength of an emissive element's light on the plate around it "
          "(the platelight layer; 0 = off)", 0.0, 10.0),
)


@dataclass(frozen=True)
class MatchSettings:
    """What the match stage does; every field is a ``match:`` key of a job (see MATCH_PARAMS)."""

    overscan_px: int | None = None
    holdout_mode: str = "max"
    holdout_softness: float = 0.02
    holdout_samples: int = 4
    shadows: str = "auto"
    shadow_strength: float = 0.6
    shadow_softness: float = 0.05
    contact_strength: float = 0.8
    contact_radius: float = 0.15
    light_dir: tuple[float, float, float] | None = None
    grain: bool = True
    grain_profile: dict | None = None
    colour: str = "auto"
    colour_strength: float = 1.0
    colour_match: dict | None = None
    defocus: bool = True
    focus_m: float | None = None
    fstop: float | None = None
    haze: bool = True
    haze_density_per_m: float | None = None
    haze_colour: tuple[float, float, float] | None = None
    lightwrap_width_px: float = 8.0
    lightwrap_strength: float = 0.5
    motion_blur: str = "auto"
    shutter_frames: float = 0.5
    stmap: str | None = None
    k1: float = 0.0
    k2: float = 0.0
    plate_light: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "match", base: "MatchSettings | None" = None) -> "MatchSettings":
        """Validated settings from a ``match:`` mapping (errors name ``where.key``), over ``base``."""
        from gvfx.errors import JobError
        from gvfx.params import validate_params

        values = validate_params(d or {}, MATCH_PARAMS, where)
        for key in ("light_dir", "haze_colour"):
            if values.get(key) is not None and len(values[key]) != 3:
                raise JobError(f"{where}.{key}: expected 3 numbers, got {list(values[key])}")
        for key in ("grain_profile", "colour_match"):
            if values.get(key) is not None and not isinstance(values[key], dict):
                raise JobError(f"{where}.{key}: expected a mapping as printed by `gvfx match`")
        return dataclasses.replace(base or cls(), **values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=None)
def _opt(module: str) -> Any:
    """One of the measure-and-apply modules, or None (logged) when it is not installed."""
    try:
        return importlib.import_module(f"gvfx.match.{module}")
    except ImportError as exc:
        log.warning("match: gvfx.match.%s is not available (%s); skipping that step", module, exc)
        return None


@dataclass
class PlateSample:
    """One plate frame for measuring: (H, W, 3) ACEScg rgb, (H, W) Z or None (no depth), its camera."""

    frame: int
    rgb: np.ndarray
    z: np.ndarray | None
    track: CameraTrack


@dataclass(frozen=True)
class MatchEstimates:
    """Everything measured once per shot (or given): printed, and written as ``gvfx:match:*`` metadata."""

    grain: Any = None  # GrainProfile | None
    colour: Any = None  # ColourMatch | None
    focus_m: float | None = None
    fstop: float | None = None
    focus_estimated: bool = False
    defocus_radius_px: float = 0.0  # uniform 2D defocus when there is no depth
    haze: Any = None  # Haze | None
    light_dir: tuple[float, float, float] | None = None
    shadows: bool = True
    sources: dict = field(default_factory=dict)  # name -> "estimated" | "given" | "element" | "default" | "off"
    notes: dict = field(default_factory=dict)  # name -> why (a default applied, a step left off)

    def to_dict(self) -> dict[str, Any]:
        def enc(v: Any) -> Any:
            if v is None or isinstance(v, (int, float, str, bool)):
                return v
            if isinstance(v, dict):
                return {str(k): enc(x) for k, x in v.items()}
            if hasattr(v, "to_dict"):
                return v.to_dict()
            if dataclasses.is_dataclass(v):
                return {k: enc(x) for k, x in dataclasses.asdict(v).items()}
            if isinstance(v, (tuple, list, np.ndarray)):
                return [enc(x) for x in np.asarray(v).tolist()] if isinstance(v, np.ndarray) else [enc(x) for x in v]
            return str(v)
        return {f.name: enc(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def metadata(self) -> dict[str, str]:
        """``gvfx:match:NAME`` -> JSON of each estimate, for the element's EXR header."""
        return {f"gvfx:match:{k}": json.dumps(v, sort_keys=True) for k, v in self.to_dict().items()}


#: a measured colour gain outside this range (per channel) is refused: it comes from a broken plate
#: (NaN/Inf stand-ins, a black frame), never from a real grade (±5 stops)
COLOUR_GAIN_RANGE = (1.0 / 32.0, 32.0)
#: largest measured lift (scene-linear offset) accepted
COLOUR_LIFT_MAX = 4.0


def colour_out_of_range(cm: Any) -> str | None:
    """Why a measured ColourMatch is not a sane grade (non-finite, gain or lift out of range), or None."""
    gain, lift, sat = np.asarray(cm.gain, float), np.asarray(cm.lift, float), float(cm.saturation)
    if not (np.isfinite(gain).all() and np.isfinite(lift).all() and np.isfinite(sat)):
        return "non-finite gain, lift or saturation"
    lo, hi = COLOUR_GAIN_RANGE
    if gain.min() < lo or gain.max() > hi:
        return f"gain {', '.join(f'{g:.4g}' for g in gain)} outside {lo:.4g}..{hi:g}"
    if np.abs(lift).max() > COLOUR_LIFT_MAX:
        return f"lift {', '.join(f'{x:.4g}' for x in lift)} beyond ±{COLOUR_LIFT_MAX:g}"
    return None


def _finite_rgb(rgb: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(rgb, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)


def estimate(settings: MatchSettings, plate: PlateSample, *, element_rgba: np.ndarray | None = None,
             element_plate_rgb: np.ndarray | None = None, light_hint: Sequence[float] | None = None,
             cache: dict | None = None, effect: str | None = None) -> MatchEstimates:
    """Per-shot estimates from one plate frame (and the element's first visible frame for colour),
    each replaced by the settings' value when given. ``cache`` (a dict) shares plate measurements
    between the elements of a shot; ``effect`` (the element's effect name) lets ``colour: auto`` know
    light sources and white effects by name."""
    cache = {} if cache is None else cache
    src: dict[str, str] = {}
    notes: dict[str, str] = {}
    rgb = plate.rgb

    def measured(key: str, make: Any) -> Any:
        if key not in cache:
            cache[key] = make()
        return cache[key]

    grain = None
    grain_mod = _opt("grain")
    if not settings.grain or grain_mod is None:
        src["grain"] = "off"
    elif settings.grain_profile is not None:
        grain, src["grain"] = grain_mod.GrainProfile.from_dict(settings.grain_profile), "given"
    else:
        grain, src["grain"] = measured("grain", lambda: grain_mod.measure_grain(rgb)), "estimated"

    colour = None
    colour_mod = _opt("colour")
    visible = element_rgba is not None and float(np.asarray(element_rgba)[..., 3].max(initial=0)) > 0
    if settings.colour_strength <= 0 or settings.colour == "off" or colour_mod is None:
        src["colour"] = "off"
    elif settings.colour_match is not None:
        colour, src["colour"] = colour_mod.ColourMatch.from_dict(settings.colour_match), "given"
    elif visible:
        on, why = (True, "colour: on") if settings.colour == "on" else colour_mod.colour_default(element_rgba, effect)
        if on:
            # the plate frame the element was measured on, whole frame: its overall levels and light
            prgb = rgb if element_plate_rgb is None else element_plate_rgb
            colour, src["colour"] = colour_mod.measure_match(element_rgba, prgb), "estimated"
            reason = colour_out_of_range(colour)
            if reason:
                log.warning("colour: the measured grade is refused (%s); leaving colour alone", reason)
                colour, src["colour"] = None, f"refused: {reason}"
        else:
            src["colour"], notes["colour"] = "off", f"off by default: {why} (match.colour: on forces it)"
            log.info("colour: %s", notes["colour"])
    else:
        src["colour"] = "off"

    focus_m, fstop, est, radius2d = settings.focus_m, settings.fstop, False, 0.0
    defocus_mod = _opt("defocus") if settings.defocus else None
    if defocus_mod is None:
        src["focus"] = "off"
    else:
        if focus_m is None or fstop is None:
            fe = measured("focus", lambda: defocus_mod.estimate_focus(rgb, plate.z))
            est = focus_m is None and fe.focus_m is not None
            focus_m = fe.focus_m if focus_m is None else focus_m
            fstop = fe.fstop if fstop is None else fstop
            radius2d = float(getattr(fe, "radius_px", 0.0) or 0.0)
        src["focus"] = "estimated" if est else ("given" if settings.focus_m is not None else "2d")

    haze = None
    haze_mod = _opt("haze") if settings.haze else None
    if haze_mod is None or plate.z is None:
        src["haze"] = "off"
    else:
        fitted = measured("haze", lambda: haze_mod.fit_haze(rgb, plate.z))
        dens = fitted.density_per_m if settings.haze_density_per_m is None else settings.haze_density_per_m
        col = tuple(fitted.colour) if settings.haze_colour is None else tuple(settings.haze_colour)
        haze = dataclasses.replace(fitted, density_per_m=float(dens), colour=col)
        given = settings.haze_density_per_m is not None or settings.haze_colour is not None
        src["haze"] = "given" if given else "estimated"

    if settings.light_dir is not None:
        light, src["light_dir"] = np.asarray(settings.light_dir, float), "given"
    elif light_hint is not None:
        light, src["light_dir"] = np.asarray(light_hint, float), "element"
    else:
        cam = plate.track.camera_at(plate.frame)
        le = measured("light", lambda: _shadow.estimate_light(rgb, plate.z, cam, plate.track.transform(plate.frame)))
        light = np.asarray(le.direction, float)
        src["light_dir"] = "estimated" if le.source != "default" else "default"
        notes["light_dir"] = f"{le.source}, confidence {le.confidence:.2f} ({le.note})"
    light = light / max(float(np.linalg.norm(light)), 1e-12)
    shadows = settings.shadows == "on" or (settings.shadows == "auto" and effect not in NO_SHADOW_EFFECTS)
    if settings.shadows == "auto" and not shadows:
        notes["shadows"] = f"off by default: {effect} casts no visible shadow (match.shadows: on forces it)"
    return MatchEstimates(grain=grain, colour=colour, focus_m=None if focus_m is None else float(focus_m),
                          fstop=None if fstop is None else float(fstop), focus_estimated=est,
                          defocus_radius_px=radius2d, haze=haze,
                          light_dir=tuple(round(float(x), 6) for x in light), shadows=bool(shadows),
                          sources=src, notes=notes)


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


def occlude(frames: Sequence[MatchedFrame]) -> None:
    """Fold the occlusion between elements into their holdouts (display window, in place).

    At each pixel, element i's visibility becomes ``(1 - holdout_i) * prod_j (1 - a_j (1 - holdout_j))``
    over the elements j nearer than i (by Z; ties: later in the list is nearer), so that the plain
    sum of held-out elements equals the depth-sorted over of them.
    """
    n = len(frames)
    if n < 2:
        return
    zs = np.stack([np.where(np.isfinite(f.display("z")), f.display("z"), np.inf) for f in frames])
    vis = np.stack([1.0 - f.display("holdout") for f in frames])
    cover = np.stack([np.clip(f.display("rgba")[..., 3], 0, 1) for f in frames]) * vis
    # near to far by Z; at equal Z a later element is nearer (as in gvfx.comp.comp_elements)
    idx = np.arange(n)[:, None, None] * np.ones_like(zs)
    order = np.lexsort((-idx, zs), axis=0)
    trans = np.ones(zs.shape[1:], np.float32)
    new_vis = np.empty_like(vis)
    for k in range(n):
        i = order[k]
        v = np.take_along_axis(vis, i[None], 0)[0]
        c = np.take_along_axis(cover, i[None], 0)[0]
        np.put_along_axis(new_vis, i[None], (v * trans)[None], 0)
        trans = trans * (1.0 - c)
    for f, v in zip(frames, new_vis):
        f.display("holdout")[...] = (1.0 - v).astype(np.float32)


def layer_dict(mf: MatchedFrame) -> dict[str, np.ndarray]:
    """The display-window layers :func:`rebuild_comp` needs."""
    out = {k: mf.display(k) for k in ("rgba", "holdout", "shadow", "lightwrap", "grain")}
    if "platelight" in mf.extra:
        out["platelight"] = _lens.crop(mf.extra["platelight"], mf.margin)
    return out


def as_stored(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Layers rounded to half float, as the element EXR stores them: a render's comp built from these
    equals the comp rebuilt from its files (what ``--resume`` does for a frame whose comp is missing)."""
    from gvfx.match.half import round_to_half  # numpy's float16 cast is 5-10x slower on small values

    return {k: round_to_half(v) for k, v in layers.items()}


def rebuild_comp(plate_rgba: np.ndarray, layers: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The comp from the plate and each element's layers (module doc): (H, W, 4) float32.

    ``layers``: per element ``rgba`` (H, W, 4), ``holdout``, ``shadow`` (H, W) and optional
    ``lightwrap``, ``grain`` (H, W, 3). The plate's NaN/Inf become 0 so they cannot spread.
    """
    plate = np.nan_to_num(np.asarray(plate_rgba, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    h, w = plate.shape[:2]
    fg = np.zeros((h, w, 4), np.float32)
    keep = np.ones((h, w), np.float32)
    light = np.zeros((h, w, 3), np.float32)
    for el in layers:
        rgba = np.asarray(el["rgba"], np.float32)
        if rgba.shape[:2] != (h, w):
            raise InputError(f"element layers are {rgba.shape[1]}x{rgba.shape[0]}, the plate {w}x{h}")
        e = rgba.copy()
        for name in ("lightwrap", "grain"):
            if el.get(name) is not None:
                e[..., :3] += np.asarray(el[name], np.float32)[..., :3]
        e *= (1.0 - np.asarray(el["holdout"], np.float32))[..., None]
        fg += e
        if el.get("shadow") is not None:
            keep *= 1.0 - np.asarray(el["shadow"], np.float32)
        if el.get("platelight") is not None:
            light += np.asarray(el["platelight"], np.float32)[..., :3]
    bg = lit_background(plate, keep, light)
    return fg + bg * (1.0 - fg[..., 3:4])


def write_matched(path: Any, mf: MatchedFrame, *, width: int, height: int, metadata: dict,
                  colorspace: str = "ACEScg", frame: int | None = None) -> Any:
    """Write a matched element: rgba, Z and the layers (holdout, shadow, lightwrap, grain, motion, and
    any engine extras) with the overscan as a data window larger than the display window."""
    from gvfx.exr import write_layers

    m = mf.margin
    # Z is inf wherever alpha is 0 *as stored* (half): a tiny alpha rounds to 0 in the file
    from gvfx.match.half import round_to_half

    z = np.where(round_to_half(mf.rgba[..., 3]) == 0, np.float32(np.inf), mf.z).astype(np.float32)
    layers = {"holdout": mf.holdout, "shadow": mf.shadow, "lightwrap": mf.lightwrap, "grain": mf.grain,
              "motion": mf.motion, **mf.extra}
    return write_layers(path, rgba=mf.rgba, z=z, layers=layers, colorspace=colorspace,
                        display_window=(0, 0, width - 1, height - 1), data_origin=(-m, -m),
                        metadata={**metadata, **({"frame": int(frame)} if frame is not None else {}),
                                  "gvfx:match:overscan_px": int(m)})
