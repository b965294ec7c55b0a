"""What an element and a plate context are: the types every layer above core shares.

Engines make ``ElementFrame``s from an ``ElementSpec`` and a ``PlateContext``; the match stage, the
jobs layer and the hosts read them. They live here, in core, so matching works on any element,
whoever made it, without importing the engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gvfx.camera import CameraTrack

__all__ = ["ProgressFn", "Param", "EffectInfo", "Placement", "ElementSpec", "PlateContext", "ElementFrame",
           "LightSamples"]

#: progress(done, total, message)
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Param:
    """One engine/effect parameter described as data: CLI, job validation and host UIs read it."""

    name: str
    type: type
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class EffectInfo:
    """An effect an engine offers, with its parameters."""

    name: str
    help: str
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Where an element goes: a screen position on a frame (unprojected onto the plate depth), or a
    3D world point in metres."""

    screen: tuple[float, float] | None = None  # pixels, display window, origin top-left
    frame: int | None = None  # frame the screen position refers to (default: the element's start)
    point: tuple[float, float, float] | None = None  # world metres
    #: fractional screen position (0..1) as an alternative to pixels
    screen_norm: tuple[float, float] | None = None


@dataclass(frozen=True)
class ElementSpec:
    """What to generate: effect, where, how big, from which frame, with which seed and look."""

    name: str
    effect: str
    engine: str = "sim"
    placement: Placement = field(default_factory=Placement)
    size_m: float = 1.0
    start_frame: int | None = None
    seed: int = 0
    reference: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: shutter as a fraction of a frame (0 = no motion blur), samples per frame
    shutter_frames: float = 0.5
    motion_samples: int = 5


@dataclass
class PlateContext:
    """Everything an engine may know of the plate.

    ``depth(frame)`` returns metric camera-space Z as (H, W) float32, ``inf`` for sky/no depth.
    ``image(frame)`` returns the plate as (H, W, 4) float32 in ``colorspace`` (may be None when only
    depth is known).
    """

    frames: list[int]
    camera: CameraTrack
    depth: Callable[[int], np.ndarray]
    width: int
    height: int
    colorspace: str = "ACEScg"
    fps: float = 24.0
    image: Callable[[int], np.ndarray] | None = None


@dataclass(frozen=True)
class LightSamples:
    """Point lights sampled from an emissive element, for the light it casts on the plate.

    positions: (K, 3) float32 world metres; intensity: (K, 3) float32 radiant intensity per light, in
    the element's scene-linear units times m^2 (an emitter of radiance L and area A gives L * A), so the
    irradiance at distance d is ``intensity * cos / d^2``.
    """

    positions: np.ndarray
    intensity: np.ndarray


@dataclass
class ElementFrame:
    """One rendered frame of an element, in the plate's display window.

    rgba: (H, W, 4) float32, premultiplied, scene-linear in the plate's colour space.
    z: (H, W) float32 metric depth of the element, ``inf`` where alpha is 0.
    holdout: (H, W) float32, 1 where the plate is in front of the element (the element must be hidden).
    extra: further named layers (H, W, C) an engine wants written (e.g. ``motion``).
    emission: (H, W, 3) float32 or None: the light the element emits (premultiplied like rgba, part of
    it), for a compositor to add or grade apart; None = it emits nothing.
    lights: point lights sampled from the element (None = the match stage samples them from
    ``emission`` and Z when it lights the plate).
    """

    rgba: np.ndarray
    z: np.ndarray
    holdout: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    emission: np.ndarray | None = None
    lights: LightSamples | None = None
