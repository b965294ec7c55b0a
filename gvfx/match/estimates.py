"""The match stage's per-shot estimates: grain, colour, focus, haze and key light, measured once on the
plate (and the element's first visible frame for colour) or taken from the settings."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from gvfx.camera import CameraTrack
from gvfx.match import shadow as _shadow
from gvfx.match.settings import NO_SHADOW_EFFECTS, MatchSettings

log = logging.getLogger(__name__)

__all__ = ["PlateSample", "MatchEstimates", "estimate", "colour_out_of_range", "COLOUR_GAIN_RANGE",
           "COLOUR_LIFT_MAX"]


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
