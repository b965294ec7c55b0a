"""Pinhole plate camera: intrinsics, per-frame transforms, projection and unprojection.

Conventions used everywhere in gvfx (the USD / Nuke / OpenGL ones):
- world space is Y-up, right-handed, in metres;
- camera space: X right, Y up, the camera looks down -Z;
- depth ``Z`` is metric camera-space distance along the optical axis, positive in front (``Z = -z_cam``);
- image pixels (u, v): origin at the top-left of the display window, u right, v down,
  pixel centres at ``i + 0.5``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gvfx.errors import CameraError

log = logging.getLogger(__name__)

#: The documented guess when a plate comes with no camera: a 35 mm lens on a 36 mm film back.
DEFAULT_FOCAL_MM = 35.0
DEFAULT_HAPERTURE_MM = 36.0


@dataclass(frozen=True)
class Camera:
    """Camera intrinsics for an image of ``width`` x ``height`` pixels.

    ``haperture_mm`` is the horizontal film back; the vertical one follows from the image aspect and
    ``pixel_aspect`` (pixel width / pixel height) unless given.
    """

    focal_mm: float
    haperture_mm: float
    width: int
    height: int
    vaperture_mm: float | None = None
    pixel_aspect: float = 1.0
    #: principal point offset from the image centre, in pixels
    center_offset_px: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not (self.focal_mm > 0 and self.haperture_mm > 0):
            raise CameraError(f"focal length ({self.focal_mm} mm) and film back ({self.haperture_mm} mm) "
                              "must be positive", hint="give the lens focal length and film back in mm")
        if self.width <= 0 or self.height <= 0:
            raise CameraError(f"resolution {self.width}x{self.height} is not valid")
        if self.pixel_aspect <= 0:
            raise CameraError(f"pixel aspect {self.pixel_aspect} must be positive")

    @property
    def fx(self) -> float:
        """Horizontal focal length in pixels."""
        return self.focal_mm / self.haperture_mm * self.width

    @property
    def fy(self) -> float:
        """Vertical focal length in pixels (square-pixel equivalent times pixel aspect)."""
        return self.fx * self.pixel_aspect

    @property
    def vaperture(self) -> float:
        """Vertical film back in mm (derived from the image aspect when not given)."""
        if self.vaperture_mm is not None:
            return self.vaperture_mm
        return self.haperture_mm * self.height / (self.width * self.pixel_aspect)

    @property
    def cx(self) -> float:
        return self.width / 2.0 + self.center_offset_px[0]

    @property
    def cy(self) -> float:
        return self.height / 2.0 + self.center_offset_px[1]

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix mapping (x, -y, -z)/(-z) camera coordinates to pixels."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    @property
    def hfov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.haperture_mm / (2 * self.focal_mm))))

    @property
    def vfov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.vaperture / (2 * self.focal_mm))))

    def scaled(self, width: int, height: int) -> "Camera":
        """The same lens for a resized image (proxy or full resolution)."""
        sx, sy = width / self.width, height / self.height
        return Camera(self.focal_mm, self.haperture_mm, width, height, self.vaperture_mm,
                      self.pixel_aspect * sy / sx,
                      (self.center_offset_px[0] * sx, self.center_offset_px[1] * sy))

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera-space points (N, 3) -> pixel coordinates (N, 2) and depth Z (N,); Z <= 0 is behind."""
        p = np.asarray(points_cam, dtype=np.float64)
        z = -p[..., 2]
        safe = np.where(np.abs(z) < 1e-12, 1e-12, z)
        u = self.cx + self.fx * p[..., 0] / safe
        v = self.cy - self.fy * p[..., 1] / safe
        return np.stack([u, v], axis=-1), z

    def unproject(self, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) and depth Z (N,) -> camera-space points (N, 3)."""
        uv = np.asarray(uv, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        x = (uv[..., 0] - self.cx) / self.fx * z
        y = -(uv[..., 1] - self.cy) / self.fy * z
        return np.stack([x, y, -z], axis=-1)

    def pixel_grid(self) -> np.ndarray:
        """(H, W, 2) pixel-centre coordinates of the whole image."""
        v, u = np.mgrid[0:self.height, 0:self.width].astype(np.float64) + 0.5
        return np.stack([u, v], axis=-1)

    def ray_directions(self) -> np.ndarray:
        """(H, W, 3) camera-space ray per pixel, scaled so that its Z component is -1.

        A point at depth ``Z`` on a pixel's ray is ``ray * Z``; its distance is ``|ray| * Z``.
        """
        return self.unproject(self.pixel_grid(), np.ones((self.height, self.width)))


def default_camera(width: int, height: int) -> Camera:
    """The documented guess for a plate with no camera: 35 mm lens, 36 mm film back, square pixels."""
    log.info("no camera given: assuming a %.0f mm lens on a %.0f mm film back", DEFAULT_FOCAL_MM,
             DEFAULT_HAPERTURE_MM)
    return Camera(DEFAULT_FOCAL_MM, DEFAULT_HAPERTURE_MM, width, height)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """4x4 camera-to-world matrix of a camera at ``eye`` looking at ``target``."""
    eye = np.asarray(eye, dtype=np.float64)
    fwd = np.asarray(target, dtype=np.float64) - eye
    if np.linalg.norm(fwd) < 1e-12:
        raise CameraError("look_at: eye and target are the same point")
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-9:
        raise CameraError("look_at: view direction is parallel to the up vector")
    right /= np.linalg.norm(right)
    true_up = np.cross(right, fwd)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, true_up, -fwd, eye
    return m


def _quat_from_matrix(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a 3x3 rotation."""
    t = np.trace(r)
    if t > 0:
        s = np.sqrt(t + 1.0) * 2
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k]) * 2
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (r[k, j] - r[j, k]) / s
        q[i + 1] = 0.25 * s
        q[j + 1] = (r[j, i] + r[i, j]) / s
        q[k + 1] = (r[k, i] + r[i, k]) / s
    q = np.array(q)
    return q / np.linalg.norm(q)


def _matrix_from_quat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def interpolate_transform(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Blend two rigid 4x4 transforms: linear in translation, spherical in rotation."""
    qa, qb = _quat_from_matrix(a[:3, :3]), _quat_from_matrix(b[:3, :3])
    if np.dot(qa, qb) < 0:
        qb = -qb
    d = float(np.clip(np.dot(qa, qb), -1.0, 1.0))
    if d > 0.9995:
        q = qa + t * (qb - qa)
    else:
        th = np.arccos(d)
        q = (np.sin((1 - t) * th) * qa + np.sin(t * th) * qb) / np.sin(th)
    q /= np.linalg.norm(q)
    m = np.eye(4)
    m[:3, :3] = _matrix_from_quat(q)
    m[:3, 3] = (1 - t) * a[:3, 3] + t * b[:3, 3]
    return m


@dataclass(frozen=True)
class CameraTrack:
    """A camera over a frame range: intrinsics plus one camera-to-world matrix per frame.

    ``focal_mm`` may vary per frame (zooms); sub-frame times (motion blur) interpolate between frames,
    and times outside the range hold the nearest frame.
    """

    camera: Camera
    frames: tuple[int, ...]
    cam_to_world: np.ndarray  # (N, 4, 4) float64
    focal_mm: tuple[float, ...] | None = None
    metadata: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        m = np.asarray(self.cam_to_world, dtype=np.float64)
        if m.shape != (len(self.frames), 4, 4):
            raise CameraError(f"camera track has {len(self.frames)} frames but {m.shape} matrices")
        if len(self.frames) == 0:
            raise CameraError("camera track has no frames")
        if any(b <= a for a, b in zip(self.frames, self.frames[1:])):
            raise CameraError("camera track frames must be strictly increasing (no repeats)")
        object.__setattr__(self, "cam_to_world", m)

    @classmethod
    def static(cls, camera: Camera, frames: list[int] | tuple[int, ...],
               cam_to_world: np.ndarray | None = None) -> "CameraTrack":
        """A locked-off camera (identity pose unless given) over ``frames``."""
        m = np.eye(4) if cam_to_world is None else np.asarray(cam_to_world, dtype=np.float64)
        return cls(camera, tuple(frames), np.repeat(m[None], len(frames), axis=0))

    def _bracket(self, frame: float) -> tuple[int, int, float]:
        fr = self.frames
        if frame <= fr[0]:
            return 0, 0, 0.0
        if frame >= fr[-1]:
            return len(fr) - 1, len(fr) - 1, 0.0
        j = int(np.searchsorted(fr, frame, side="right"))
        i = j - 1
        t = (frame - fr[i]) / (fr[j] - fr[i])
        return i, j, float(t)

    def transform(self, frame: float) -> np.ndarray:
        """4x4 camera-to-world matrix at a (possibly sub-) frame."""
        i, j, t = self._bracket(frame)
        if i == j or t == 0.0:
            return self.cam_to_world[i].copy()
        return interpolate_transform(self.cam_to_world[i], self.cam_to_world[j], t)

    def world_to_camera(self, frame: float) -> np.ndarray:
        return np.linalg.inv(self.transform(frame))

    def camera_at(self, frame: float) -> Camera:
        """Intrinsics at a frame (the focal length may be animated)."""
        if self.focal_mm is None:
            return self.camera
        i, j, t = self._bracket(frame)
        f = (1 - t) * self.focal_mm[i] + t * self.focal_mm[j]
        c = self.camera
        return Camera(f, c.haperture_mm, c.width, c.height, c.vaperture_mm, c.pixel_aspect, c.center_offset_px)

    def to_camera_space(self, points_world: np.ndarray, frame: float) -> np.ndarray:
        p = np.asarray(points_world, dtype=np.float64)
        m = self.world_to_camera(frame)
        return p @ m[:3, :3].T + m[:3, 3]

    def to_world(self, points_cam: np.ndarray, frame: float) -> np.ndarray:
        p = np.asarray(points_cam, dtype=np.float64)
        m = self.transform(frame)
        return p @ m[:3, :3].T + m[:3, 3]

    def project_world(self, points_world: np.ndarray, frame: float) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixels (N, 2) and depth Z (N,) in the plate at ``frame``."""
        return self.camera_at(frame).project(self.to_camera_space(points_world, frame))

    def unproject_world(self, uv: np.ndarray, z: np.ndarray, frame: float) -> np.ndarray:
        """Pixels (N, 2) with depth Z (N,) at ``frame`` -> world points (N, 3)."""
        return self.to_world(self.camera_at(frame).unproject(uv, z), frame)

    def position(self, frame: float) -> np.ndarray:
        return self.transform(frame)[:3, 3].copy()


def load_camera(path: str | Path, width: int, height: int, frames: list[int] | None = None,
                prim: str | None = None) -> CameraTrack:
    """Load a camera track from a USD file (``prim``: that camera, else the first) or a Nuke ``.chan``."""
    p = Path(path)
    if not p.exists():
        raise CameraError("camera file not found", path=p, hint="check the path in the job's camera field")
    suffix = p.suffix.lower()
    if suffix == ".chan":
        if prim:
            raise CameraError(f"a .chan file holds one camera: prim {prim} does not apply", path=p)
        from gvfx.camera_io import read_chan
        return read_chan(p, width, height)
    if suffix in (".usd", ".usda", ".usdc", ".usdz"):
        from gvfx.camera_io import read_usd_camera
        return read_usd_camera(p, width, height, frames=frames, prim_path=prim)
    raise CameraError(f"unknown camera file type {suffix!r}", path=p, hint="give a .usd/.usda/.usdc or a Nuke .chan")
