"""Depth conventions met in practice, and conversion to gvfx's one: metric camera-space Z, ``inf`` = sky.

Conventions (``Depth.convention``):

- ``z``: camera-space Z along the optical axis, positive in front, in scene units (``scale`` to metres).
- ``distance``: Euclidean distance from the camera centre along each pixel's ray (many renderers'
  "depth" pass, e.g. Cycles' Z without "use Z" projection, most LiDAR/ToF sensors).
- ``inverse_z``: ``1 / z`` as Nuke's ScanlineRender writes it; ``0`` means infinitely far.
- ``normalized``: 0..1 from a monocular estimator, mapped onto ``[near, far]`` metres; ``near_is_one``
  says which end is near (estimators output disparity-like maps: near = 1, the default), and
  ``normalized_mapping`` whether the map is linear in Z (``"linear"``) or in 1/Z (``"inverse"``,
  what disparity-style estimators such as MiDaS / Depth Anything produce).

Sky / no depth: for ``z`` and ``distance`` both ``inf`` and ``0`` (and NaN) mean no depth; for
``inverse_z`` ``0`` means infinitely far. Any resulting Z at or beyond ``far_clip`` metres counts as sky.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from gvfx.camera import Camera
from gvfx.errors import DepthError, ResolutionMismatchError

__all__ = ["DepthConvention", "CONVENTIONS", "Depth", "from_z", "ray_lengths", "check_depth_matches"]

log = logging.getLogger(__name__)

DepthConvention = Literal["z", "distance", "inverse_z", "normalized"]
CONVENTIONS: tuple[str, ...] = get_args(DepthConvention)
NormalizedMapping = Literal["linear", "inverse"]

#: how far below 0 / above 1 a normalized map may stray (estimator noise) before it is an error
_NORMALIZED_SLACK = 1e-3


def ray_lengths(camera: Camera) -> np.ndarray:
    """(H, W) float64 length of each pixel's ray scaled to unit Z: ``distance = length * Z``."""
    return np.linalg.norm(camera.ray_directions(), axis=-1)


def check_depth_matches(depth_shape: tuple[int, ...], plate_shape: tuple[int, ...], *,
                        path: str | Path | None = None, frame: int | None = None) -> None:
    """Raise ResolutionMismatchError when a depth map's (H, W) differs from the plate's (H, W)."""
    dh, dw = tuple(depth_shape)[:2]
    ph, pw = tuple(plate_shape)[:2]
    if (dh, dw) != (ph, pw):
        raise ResolutionMismatchError(
            f"depth is {dw}x{dh} but the plate is {pw}x{ph}", path=path, frame=frame,
            hint="render/estimate depth at plate resolution, or resize it to match before use")


@dataclass(frozen=True)
class Depth:
    """A depth map as found in a file, with the convention needed to read it as metric Z.

    ``values``: (H, W) float32 as stored. ``scale``: file units to metres (z/distance: metres =
    value * scale; inverse_z: metres = scale / value). ``near``/``far``: metres, needed by
    ``normalized``. ``far_clip``: metres; Z at or beyond it is sky. ``path``/``frame`` only name the
    source in error messages.
    """

    values: np.ndarray
    convention: str = "z"
    near: float | None = None
    far: float | None = None
    scale: float = 1.0
    far_clip: float | None = None
    near_is_one: bool = True
    normalized_mapping: str = "linear"
    path: str | None = None
    frame: int | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim == 3 and v.shape[-1] == 1:
            v = v[..., 0]
        if v.ndim != 2:
            raise DepthError(f"depth must be a single (H, W) channel, got shape {v.shape}",
                             path=self.path, frame=self.frame)
        object.__setattr__(self, "values", np.ascontiguousarray(v, dtype=np.float32))
        if self.convention not in CONVENTIONS:
            raise DepthError(f"unknown depth convention {self.convention!r}", path=self.path, frame=self.frame,
                             hint="use one of: " + ", ".join(CONVENTIONS))
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise DepthError(f"depth scale {self.scale} must be a positive number (units to metres)",
                             path=self.path, frame=self.frame)
        if self.far_clip is not None and not self.far_clip > 0:
            raise DepthError(f"far_clip {self.far_clip} must be positive metres", path=self.path, frame=self.frame)
        if self.convention == "normalized":
            if self.normalized_mapping not in get_args(NormalizedMapping):
                raise DepthError(f"unknown normalized mapping {self.normalized_mapping!r}", path=self.path,
                                 frame=self.frame, hint="use 'linear' (in Z) or 'inverse' (in 1/Z)")
            if self.near is None or self.far is None:
                raise DepthError("normalized depth needs near and far (metres)", path=self.path,
                                 frame=self.frame, hint="give depth near/far, e.g. near: 0.5, far: 100")
            lo = 0.0 if self.normalized_mapping == "linear" else 1e-9
            if not (lo <= self.near < self.far) or not np.isfinite(self.far):
                raise DepthError(f"normalized depth needs 0 < near < far, got near={self.near} far={self.far}",
                                 path=self.path, frame=self.frame)

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def _fail(self, message: str, hint: str | None = None) -> DepthError:
        return DepthError(message, path=self.path, frame=self.frame, hint=hint)

    def to_z(self, camera: Camera) -> np.ndarray:
        """(H, W) float32 metric camera-space Z; ``inf`` where there is no depth (sky)."""
        check_depth_matches(self.values.shape, (camera.height, camera.width), path=self.path, frame=self.frame)
        v = self.values.astype(np.float64)
        nan = np.isnan(v)
        if nan.all():
            raise self._fail("depth is all NaN", hint="check the depth layer/channel name")
        if nan.any():
            log.debug("depth %s frame %s: %d NaN pixels treated as sky", self.path, self.frame, int(nan.sum()))
        if (v[~nan] < 0).any() and self.convention != "normalized":
            n = int((v[~nan] < 0).sum())
            raise self._fail(f"depth ({self.convention}) has {n} negative values",
                             hint="if the renderer writes camera-space z (negative in front), negate it; "
                                  "otherwise check the depth convention")
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.convention in ("z", "distance"):
                sky = nan | (v == 0) | np.isinf(v)
                z = v * self.scale
                if self.convention == "distance":
                    z = z / ray_lengths(camera)
            elif self.convention == "inverse_z":
                sky = nan | (v == 0) | np.isinf(v)
                z = self.scale / v
            else:
                z, sky = self._normalized_to_z(v, nan)
        z = np.where(sky, np.inf, z)
        if self.far_clip is not None:
            z = np.where(z >= self.far_clip, np.inf, z)
        return z.astype(np.float32)

    def _normalized_to_z(self, v: np.ndarray, nan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        finite = v[~nan]
        if (finite < -_NORMALIZED_SLACK).any() or (finite > 1 + _NORMALIZED_SLACK).any():
            raise self._fail(f"normalized depth must lie in 0..1, found {finite.min():.4g}..{finite.max():.4g}",
                             hint="use convention 'z' or 'distance' for metric depth")
        t = np.clip(np.where(nan, 0.0, v), 0.0, 1.0)
        t_near = t if self.near_is_one else 1.0 - t  # 1 at near, 0 at far
        near, far = float(self.near), float(self.far)  # type: ignore[arg-type]
        if self.normalized_mapping == "linear":
            z = far + t_near * (near - far)
        else:
            z = 1.0 / (1.0 / far + t_near * (1.0 / near - 1.0 / far))
        return z, nan


def from_z(z: np.ndarray, camera: Camera, convention: str = "z", *, scale: float = 1.0,
           near: float | None = None, far: float | None = None, near_is_one: bool = True,
           normalized_mapping: str = "linear", sky_value: float = np.inf,
           far_clip: float | None = None) -> Depth:
    """Metric Z (H, W) (``inf`` = sky) -> a ``Depth`` in ``convention``, e.g. to write Nuke-style 1/z.

    ``sky_value`` is what z/distance maps store for sky (``inf`` or ``0``); inverse_z stores 0 and
    normalized stores its far end. For ``normalized`` without near/far, the finite Z range is used.
    """
    if convention not in CONVENTIONS:
        raise DepthError(f"unknown depth convention {convention!r}", hint="use one of: " + ", ".join(CONVENTIONS))
    if sky_value not in (0.0, np.inf):
        raise DepthError(f"sky_value must be inf or 0, got {sky_value}")
    zz = np.asarray(z, dtype=np.float64)
    check_depth_matches(zz.shape, (camera.height, camera.width))
    if (zz < 0).any():
        raise DepthError("metric Z has negative values", hint="Z is positive in front of the camera")
    sky = ~np.isfinite(zz) | (zz == 0)
    if far_clip is not None:
        sky |= zz >= far_clip
    with np.errstate(divide="ignore", invalid="ignore"):
        if convention == "z":
            vals = np.where(sky, sky_value, zz / scale)
        elif convention == "distance":
            vals = np.where(sky, sky_value, zz * ray_lengths(camera) / scale)
        elif convention == "inverse_z":
            vals = np.where(sky, 0.0, scale / zz)
        else:
            finite = zz[~sky]
            if near is None or far is None:
                if finite.size == 0:
                    raise DepthError("cannot normalize a depth map with no finite depth", hint="give near and far")
                near = float(finite.min()) if near is None else near
                far = float(finite.max()) if far is None else far
                if far <= near:
                    far = near * (1 + 1e-6) + 1e-6
            zc = np.clip(np.where(sky, far, zz), near, far)
            if normalized_mapping == "linear":
                t_near = (far - zc) / (far - near)
            else:
                t_near = (1.0 / zc - 1.0 / far) / (1.0 / near - 1.0 / far)
            vals = t_near if near_is_one else 1.0 - t_near
    return Depth(vals.astype(np.float32), convention, near=near, far=far, scale=scale, far_clip=far_clip,
                 near_is_one=near_is_one, normalized_mapping=normalized_mapping)
