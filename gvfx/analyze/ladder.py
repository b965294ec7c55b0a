"""The retry ladder of the camera solve: what to try, in order, when COLMAP's first incremental mapping
initialises nothing or registers too few frames, before concluding the plate cannot be solved.

Each rung adds to the one before it (cheapest first):

1. ``default``: the options asked for (SIFT ``max_features``, sequential matching with ``overlap``).
2. ``relaxed initialisation``: the same features and matches; the mapper starts from a pair with a
   4 degree triangulation angle (COLMAP: 16), 50 inliers (100), forward motion up to 0.995 (0.95: a
   dolly is refused), and registers frames from 15 inliers (30).
3. ``more features, wider matching``: twice the features, every pair matched on a short shot
   (<= ``EXHAUSTIVE_MAX_FRAMES`` frames), else three times the sequential overlap.
4. ``fixed focal from the plate metadata``: only when the plate's header has a focal length and none
   was given: the focal is held at it instead of estimated.

The worker protocol keys are those of :mod:`gvfx.analyze.colmap_worker`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Rung", "ladder", "enough_registered", "focal_from_attributes", "EXHAUSTIVE_MAX_FRAMES",
           "REGISTERED_SHARE"]

#: Shots up to this many frames are matched exhaustively on the third rung.
EXHAUSTIVE_MAX_FRAMES = 60
#: A try that registers this share of the frames (and at least 3) ends the ladder.
REGISTERED_SHARE = 0.9

_RELAXED = {"init_min_tri_angle": 4.0, "init_min_num_inliers": 50, "init_max_forward_motion": 0.995,
            "abs_pose_min_num_inliers": 15}


@dataclass(frozen=True)
class Rung:
    """One try: its name and the worker arguments it sets over the base ones."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


def ladder(n_frames: int, *, max_features: int, overlap: int, focal_px: float | None,
           metadata_focal_px: float | None) -> list[Rung]:
    """The tries for a plate of ``n_frames`` (see the module doc); ``focal_px`` is a focal already given."""
    wide = ({"exhaustive": True} if n_frames <= EXHAUSTIVE_MAX_FRAMES else {"overlap": 3 * overlap})
    rungs = [Rung("default", {}),
             Rung("relaxed initialisation", {**_RELAXED, "reuse_features": True}),
             Rung("more features, " + ("exhaustive matching" if "exhaustive" in wide else f"overlap {3 * overlap}"),
                  {**_RELAXED, **wide, "max_features": 2 * max_features})]
    if focal_px is None and metadata_focal_px:
        rungs.append(Rung(f"fixed focal from the plate metadata ({metadata_focal_px:.1f} px)",
                          {**_RELAXED, **wide, "max_features": 2 * max_features, "focal_px": metadata_focal_px}))
    return rungs


def enough_registered(n_registered: int, n_frames: int) -> bool:
    """Whether a try registered enough frames to stop climbing."""
    return n_registered >= max(3, math.ceil(REGISTERED_SHARE * n_frames)) or n_registered >= n_frames


#: EXR header attributes that may hold the lens's focal length in mm (OpenEXR 3.2's standard camera
#: attributes first, then names cameras and converters write).
FOCAL_ATTRIBUTES = ("effectiveFocalLength", "pinholeFocalLength", "nominalFocalLength", "focalLength",
                    "FocalLength", "cameraFocalLength", "Exif:FocalLength", "exif:FocalLength")


def focal_from_attributes(attributes: dict[str, Any]) -> float | None:
    """The focal length (mm) an EXR header states, or None."""
    for key in FOCAL_ATTRIBUTES:
        v = attributes.get(key)
        try:
            f = float(v) if v is not None else float("nan")
        except (TypeError, ValueError):
            continue
        if math.isfinite(f) and 1.0 <= f <= 2000.0:
            return f
    return None
