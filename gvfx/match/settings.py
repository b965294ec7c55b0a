"""What the match stage does: its ``Param``s (the job's ``match:`` keys) and :class:`MatchSettings`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gvfx.element import Param
from gvfx.match import holdout as _holdout

__all__ = ["MATCH_PARAMS", "MatchSettings", "NO_SHADOW_EFFECTS"]


#: effects whose elements cast no shadow by default (``shadows: auto``)
NO_SHADOW_EFFECTS = frozenset({"rain", "snow"})

MATCH_PARAMS: tuple[Param, ...] = (
    Param("overscan_px", int, None, "render margin outside the display window (default 5% of the width)", min=0,
          max=4096),
    Param("holdout_mode", str, "max", "combine the depth holdout with the engine's", choices=_holdout.HOLDOUT_MODES),
    Param("holdout_softness", float, 0.02, "depth ramp of the holdout, fraction of the element's depth", 0.0, 1.0),
    Param("holdout_samples", int, 4, "sub-samples per axis on depth edges (anti-aliasing)", min=1, max=16),
    Param("shadows", str, "auto", "cast and contact shadows: auto = on except for rain and snow (drops and flakes "
          "cast none you could see); on; off", choices=("auto", "on", "off")),
    Param("shadow_strength", float, 0.6, "density of the cast shadow under an opaque element (0 = off)", 0.0, 1.0),
    Param("shadow_softness", float, 0.05, "blur of the cast shadow, fraction of the element's size", 0.0, 1.0),
    Param("contact_strength", float, 0.8, "darkening where the element touches the surface (0 = off)", 0.0, 1.0),
    Param("contact_radius", float, 0.15, "reach of the contact darkening, fraction of the element's size", 0.0,
          1.0),
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
    Param("lightwrap_width_px", float, 8.0, "light wrap width in pixels", 0.0, 256.0),
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
