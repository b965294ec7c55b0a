"""Camera files: Nuke ``.chan`` and USD ``UsdGeom.Camera``, read into and written from ``CameraTrack``.

Conventions (see ``gvfx/camera.py`` and docs/conventions.md):

- ``.chan``: one line per frame, ``frame tx ty tz rx ry rz [vfov_deg]``, whitespace separated,
  rotations in degrees, Y-up. Rotation order defaults to Nuke's Camera default ``ZXY``: rotate about
  Z first, then X, then Y, i.e. ``R = Ry @ Rx @ Rz`` (column vectors). The optional last column is the
  *vertical* field of view in degrees (Nuke's and Blender's exporters write it); the focal length is
  derived from it with a vertical film back of ``haperture_mm * height / width`` (horizontal fit).
- USD: matrices are row-vector (``p' = p @ M``), transposed here to gvfx's column convention.
  Z-up stages are rotated -90 deg about X into gvfx's Y-up world, translations are scaled by
  ``metersPerUnit``; focal length, apertures and offsets are in tenths of a scene unit (UsdGeomCamera,
  "Units of Measure for Camera Properties"): mm = value x 100 x metersPerUnit, read per frame.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from gvfx.camera import DEFAULT_FOCAL_MM, DEFAULT_HAPERTURE_MM, Camera, CameraTrack
from gvfx.errors import CameraError

__all__ = ["read_chan", "write_chan", "read_usd_camera", "write_usd_camera", "author_usd_camera", "UNITS_KEY", "euler_to_matrix",
           "matrix_to_euler_zxy", "Z_UP_TO_Y_UP"]

log = logging.getLogger(__name__)

#: Rotation taking a Z-up world to gvfx's Y-up world (-90 deg about X): (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])


# --- rotations -------------------------------------------------------------------------------------

def _axis_rotation(axis: str, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    if axis == "X":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "Y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def euler_to_matrix(rx_deg: float, ry_deg: float, rz_deg: float, order: str = "ZXY") -> np.ndarray:
    """3x3 rotation from Euler angles in degrees; ``order`` lists the axes in the order applied."""
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise CameraError(f"rotation order {order!r} is not a permutation of XYZ", hint="e.g. ZXY (Nuke's default)")
    angles = {"X": rx_deg, "Y": ry_deg, "Z": rz_deg}
    r = np.eye(3)
    for axis in order:  # first axis applied first: it ends up rightmost
        r = _axis_rotation(axis, angles[axis]) @ r
    return r


def matrix_to_euler_zxy(r: np.ndarray) -> tuple[float, float, float]:
    """(rx, ry, rz) degrees with ``R = Ry @ Rx @ Rz`` (Nuke's ZXY order), the inverse of ``euler_to_matrix``."""
    sx = float(np.clip(-r[1, 2], -1.0, 1.0))
    rx = math.asin(sx)
    if abs(math.cos(rx)) > 1e-9:
        ry = math.atan2(r[0, 2], r[2, 2])
        rz = math.atan2(r[1, 0], r[1, 1])
    else:  # gimbal lock: put everything in Y
        rz = 0.0
        ry = math.atan2(-r[2, 0], r[0, 0])
    return math.degrees(rx), math.degrees(ry), math.degrees(rz)


def _orthonormal(m: np.ndarray) -> np.ndarray:
    """The nearest rotation to the 3x3 part of ``m`` (drops scale/shear from parent transforms)."""
    u, _, vt = np.linalg.svd(m[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    out = np.array(m, dtype=np.float64, copy=True)
    out[:3, :3] = r
    return out


# --- Nuke .chan ------------------------------------------------------------------------------------

def read_chan(path: str | Path, width: int, height: int, *, haperture_mm: float = DEFAULT_HAPERTURE_MM,
              rot_order: str = "ZXY", focal_mm: float | None = None, units_to_m: float = 1.0) -> CameraTrack:
    """Read a Nuke ``.chan`` file into a CameraTrack for a ``width`` x ``height`` plate.

    Without a vfov column the focal length is ``focal_mm`` (default: gvfx's 35 mm guess, logged).
    ``units_to_m`` scales translations to metres. Bad lines raise CameraError naming file and line.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise CameraError(f"cannot read chan file: {exc.strerror or exc}", path=p) from exc
    frames: list[int] = []
    mats: list[np.ndarray] = []
    vfovs: list[float | None] = []
    vap = haperture_mm * height / width
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"line {lineno}"
        parts = line.split()
        if len(parts) not in (7, 8):
            raise CameraError(f"{where}: expected 7 or 8 columns (frame tx ty tz rx ry rz [vfov]), "
                              f"got {len(parts)}", path=p, hint="export the camera from Nuke as .chan")
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            raise CameraError(f"{where}: not a number in {line!r}", path=p) from None
        if not all(math.isfinite(v) for v in vals):
            raise CameraError(f"{where}: non-finite value in {line!r}", path=p)
        if vals[0] != round(vals[0]):
            raise CameraError(f"{where}: frame {vals[0]} is not a whole frame", path=p)
        frame = int(round(vals[0]))
        if frames and frame <= frames[-1]:
            raise CameraError(f"{where}: frame {frame} does not follow frame {frames[-1]}", path=p,
                              hint="frames must increase, one line per frame")
        if len(vals) == 8 and not 0 < vals[7] < 180:
            raise CameraError(f"{where}: vertical field of view {vals[7]} deg is not in (0, 180)", path=p)
        m = np.eye(4)
        m[:3, :3] = euler_to_matrix(vals[4], vals[5], vals[6], rot_order)
        m[:3, 3] = np.array(vals[1:4]) * units_to_m
        frames.append(frame)
        mats.append(m)
        vfovs.append(vals[7] if len(vals) == 8 else None)
    if not frames:
        raise CameraError("chan file has no frames", path=p)
    if any(v is None for v in vfovs) and not all(v is None for v in vfovs):
        raise CameraError("some lines have a vfov column and some do not", path=p)
    if vfovs[0] is None:
        f = focal_mm if focal_mm is not None else DEFAULT_FOCAL_MM
        if focal_mm is None:
            log.info("%s has no field of view column: assuming a %.0f mm lens", p, f)
        focals = [f] * len(frames)
    else:
        focals = [vap / (2 * math.tan(math.radians(v) / 2)) for v in vfovs]  # type: ignore[arg-type]
    cam = Camera(focals[0], haperture_mm, width, height)
    varying = max(focals) - min(focals) > 1e-6
    return CameraTrack(cam, tuple(frames), np.stack(mats), tuple(focals) if varying else None,
                       metadata={"source": str(p), "format": "chan", "rot_order": rot_order})


def write_chan(path: str | Path, track: CameraTrack) -> None:
    """Write ``track`` as a Nuke ``.chan`` (ZXY rotations in degrees, vertical fov column)."""
    lines = []
    for i, frame in enumerate(track.frames):
        m = _orthonormal(track.cam_to_world[i])
        rx, ry, rz = matrix_to_euler_zxy(m[:3, :3])
        tx, ty, tz = m[:3, 3]
        vfov = track.camera_at(frame).vfov_deg
        lines.append(f"{frame} {tx:.9g} {ty:.9g} {tz:.9g} {rx:.9g} {ry:.9g} {rz:.9g} {vfov:.9g}")
    try:
        Path(path).write_text("\n".join(lines) + "\n")
    except OSError as exc:
        raise CameraError(f"cannot write chan file: {exc.strerror or exc}", path=path) from exc


# --- USD -------------------------------------------------------------------------------------------

def _pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom
    except ImportError as exc:
        raise CameraError("USD support needs usd-core", hint="pip install usd-core") from exc
    return Gf, Sdf, Usd, UsdGeom


def _open_stage(p: Path):
    _, _, Usd, _ = _pxr()
    if not p.exists():
        raise CameraError("USD file not found", path=p)
    try:
        stage = Usd.Stage.Open(str(p))
    except Exception as exc:  # pxr raises Tf.ErrorException with a multi-line C++ message
        first = str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else type(exc).__name__
        raise CameraError(f"cannot open USD stage: {first}", path=p) from None
    if stage is None:
        raise CameraError("cannot open USD stage", path=p)
    return stage


def _find_camera(stage, p: Path, prim_path: str | None):
    _, _, Usd, UsdGeom = _pxr()
    if prim_path:
        try:
            prim = stage.GetPrimAtPath(prim_path)
        except Exception:  # noqa: BLE001 - pxr raises on a malformed path
            prim = None
        if not prim or not prim.IsValid():
            cams = [str(q.GetPath()) for q in stage.Traverse() if q.IsA(UsdGeom.Camera)][:8]
            raise CameraError(f"camera.prim: no prim at {prim_path}", path=p,
                              hint=f"cameras in the file: {', '.join(cams) or 'none'}")
        if not prim.IsA(UsdGeom.Camera):
            raise CameraError(f"camera.prim: prim {prim_path} is a {prim.GetTypeName() or 'typeless prim'}, not a Camera",
                              path=p)
        return UsdGeom.Camera(prim)
    for prim in stage.Traverse():
        if prim.IsA(UsdGeom.Camera):
            return UsdGeom.Camera(prim)
    raise CameraError("no UsdGeom.Camera in the stage", path=p, hint="export the camera with the scene")


#: customData key gvfx writes on every camera prim from now on; its value names the unit convention.
UNITS_KEY = "gvfx:cameraUnits"
#: UsdGeomCamera's own convention: lens and film back in tenths of a scene unit.
UNITS_SPEC = "tenthsOfSceneUnit"
#: The layer doc string gvfx writes on camera.usda (layout.usda has its own, also starting with "gvfx").
CAMERA_DOC = "gvfx camera (lens and film back in tenths of a scene unit, docs/conventions.md)"


def _camera_attrs(cam) -> list:
    return [cam.GetFocalLengthAttr(), cam.GetHorizontalApertureAttr(), cam.GetVerticalApertureAttr(),
            cam.GetHorizontalApertureOffsetAttr(), cam.GetVerticalApertureOffsetAttr()]


def _time_samples(cam) -> list[float]:
    _, _, _, UsdGeom = _pxr()
    times: set[float] = set()
    for attr in _camera_attrs(cam):
        times.update(attr.GetTimeSamples())
    prim = cam.GetPrim()
    while prim and not prim.IsPseudoRoot():
        xf = UsdGeom.Xformable(prim)
        if xf:
            times.update(xf.GetTimeSamples())
        prim = prim.GetParent()
    return sorted(times)


def _num(v) -> str:
    return "unset" if v is None else f"{float(v):.6g}"


def _legacy_gvfx_mm(stage, cam, up, mpu: float) -> bool:
    """True for a camera gvfx wrote before it followed the spec (lens in mm on a metre stage).

    Such a file has no ``gvfx:cameraUnits`` key and is gvfx's own: its root layer doc string starts with
    "gvfx" (layout.usda), or it has the exact shape of the old camera.usda (Y up, metres, ``/World/Camera``
    as default prim's only camera with a single ``xformOp:transform``).
    """
    _, _, _, UsdGeom = _pxr()
    prim = cam.GetPrim()
    if prim.GetCustomDataByKey(UNITS_KEY) is not None:
        return False
    if stage.GetRootLayer().documentation.startswith("gvfx"):
        return True
    ops = [str(n) for n in UsdGeom.Xformable(prim).GetXformOpOrderAttr().Get() or []]
    default = stage.GetDefaultPrim()
    return (up == UsdGeom.Tokens.y and mpu == 1.0 and str(prim.GetPath()) == "/World/Camera"
            and bool(default) and str(default.GetPath()) == "/World" and ops == ["xformOp:transform"])


def read_usd_camera(path: str | Path, width: int, height: int, *, prim_path: str | None = None,
                    frames: Sequence[int] | None = None) -> CameraTrack:
    """Read the first ``UsdGeom.Camera`` (or ``prim_path``) of a USD file into a CameraTrack.

    Lens and film back are in tenths of a scene unit (mm = value x 100 x metersPerUnit), each read at the
    frame's time code (falling back to the default value); gvfx's own pre-spec files are read as mm.
    Frames are ``frames`` when given, else every whole frame spanned by the time samples of the camera's
    attributes and of its (and its ancestors') transforms, else the stage's start frame.
    """
    p = Path(path)
    Gf, _, Usd, UsdGeom = _pxr()
    stage = _open_stage(p)
    cam = _find_camera(stage, p, prim_path)
    if frames is not None:
        frame_list = sorted({int(f) for f in frames})
        if not frame_list:
            raise CameraError("no frames asked for", path=p)
    else:
        times = _time_samples(cam)
        if times:
            frame_list = list(range(math.ceil(times[0]), math.floor(times[-1]) + 1)) or [round(times[0])]
        elif stage.HasAuthoredMetadata("startTimeCode"):
            frame_list = [int(stage.GetStartTimeCode())]
        else:
            frame_list = [1]
    up = UsdGeom.GetStageUpAxis(stage)
    mpu = float(UsdGeom.GetStageMetersPerUnit(stage))
    legacy = _legacy_gvfx_mm(stage, cam, up, mpu)
    to_mm = 1.0 if legacy else 100.0 * mpu
    if legacy:
        log.info("%s: camera written by gvfx before it followed UsdGeomCamera units: reading lens and film "
                 "back as millimetres", p)
    world = Z_UP_TO_Y_UP if up == UsdGeom.Tokens.z else np.eye(4)
    focal_a, hap_a, vap_a, hoff_a, voff_a = _camera_attrs(cam)
    where = f"camera {cam.GetPath()}"
    mats, focals, offsets, haps = [], [], [], []
    vap0 = 0.0
    for f in frame_list:
        t = Usd.TimeCode(f)
        m = np.array(cam.ComputeLocalToWorldTransform(t), dtype=np.float64).T  # row -> column vectors
        m = world @ m
        m[:3, 3] *= mpu
        mats.append(_orthonormal(m))
        focal, hap = focal_a.Get(t), hap_a.Get(t)
        if focal is None or not math.isfinite(focal) or not focal > 0:
            raise CameraError(f"{where}: focalLength is {_num(focal)} at frame {f}", path=p, frame=f,
                              hint="a camera needs a positive focal length")
        if hap is None or not math.isfinite(hap) or not hap > 0:
            raise CameraError(f"{where}: horizontalAperture is {_num(hap)} at frame {f}", path=p, frame=f,
                              hint="a camera needs a positive film back width")
        vap = vap_a.Get(t)
        if vap is not None and not vap > 0:
            raise CameraError(f"{where}: verticalAperture is {_num(vap)} at frame {f}", path=p, frame=f,
                              hint="a camera needs a positive film back height")
        if f == frame_list[0]:
            vap0 = float(vap or 0.0)
        focals.append(float(focal) * to_mm)
        haps.append(float(hap) * to_mm)
        offsets.append((float(hoff_a.Get(t) or 0.0) / float(hap), float(voff_a.Get(t) or 0.0) / float(hap)))
    hap0 = haps[0]
    # gvfx's CameraTrack has one film back: a time-varying one becomes the same field of view in the lens
    focals = [fo * hap0 / h for fo, h in zip(focals, haps)]
    if max(abs(o[0] - offsets[0][0]) + abs(o[1] - offsets[0][1]) for o in offsets) > 1e-6:
        log.warning("%s: %s has animated aperture offsets; gvfx uses frame %d's", p, where, frame_list[0])
    if vap0 > 0 and abs(vap0 * to_mm / hap0 - height / width) > 1e-3:
        log.info("%s: film back aspect %.4f differs from the plate's %.4f; gvfx fits the horizontal aperture",
                 p, vap0 * to_mm / hap0, height / width)
    # the offset moves the film window: the principal point moves the other way (Gf.Camera's frustum)
    offset_px = (-offsets[0][0] * width, offsets[0][1] * width)
    if legacy:  # gvfx's old writer stored the principal-point offset with the opposite sign
        offset_px = (-offset_px[0], -offset_px[1])
    camera = Camera(focals[0], hap0, width, height, center_offset_px=offset_px)
    varying = max(focals) - min(focals) > 1e-6
    return CameraTrack(camera, tuple(frame_list), np.stack(mats), tuple(focals) if varying else None,
                       metadata={"source": str(p), "format": "usd", "prim": str(cam.GetPath()),
                                 "up_axis": str(up), "meters_per_unit": mpu,
                                 "lens_units": "mm (legacy gvfx file)" if legacy else UNITS_SPEC})


def author_usd_camera(stage, track: CameraTrack, prim_path: str):
    """Define ``prim_path`` as a ``UsdGeom.Camera`` for ``track`` on ``stage`` in the spec's units.

    Lens and film back become mm / (100 x the stage's metersPerUnit); the transform is one time-sampled
    ``xformOp:transform`` in the stage's metres. Returns the ``UsdGeom.Camera`` (callers add clipping etc.).
    """
    Gf, Sdf, Usd, UsdGeom = _pxr()
    mpu = float(UsdGeom.GetStageMetersPerUnit(stage))
    k = 1.0 / (100.0 * mpu)
    cam = UsdGeom.Camera.Define(stage, prim_path)
    cam.GetPrim().SetCustomDataByKey(UNITS_KEY, UNITS_SPEC)
    c = track.camera
    cam.GetHorizontalApertureAttr().Set(float(c.haperture_mm * k))
    cam.GetVerticalApertureAttr().Set(float(c.vaperture * k))
    cam.GetHorizontalApertureOffsetAttr().Set(float(-c.center_offset_px[0] / c.width * c.haperture_mm * k))
    cam.GetVerticalApertureOffsetAttr().Set(float(c.center_offset_px[1] / c.width * c.haperture_mm * k))
    op = cam.AddTransformOp()
    focal_attr = cam.GetFocalLengthAttr()
    for i, frame in enumerate(track.frames):
        m = np.array(track.cam_to_world[i], dtype=np.float64, copy=True)
        m[:3, 3] /= mpu
        op.Set(Gf.Matrix4d(m.T.tolist()), Usd.TimeCode(frame))
        if track.focal_mm is not None:
            focal_attr.Set(float(track.focal_mm[i] * k), Usd.TimeCode(frame))
    if track.focal_mm is None:
        focal_attr.Set(float(c.focal_mm * k))
    return cam


def write_usd_camera(path: str | Path, track: CameraTrack, fps: float = 24.0,
                     prim_path: str = "/World/Camera") -> None:
    """Write ``track`` as a ``UsdGeom.Camera`` with a time-sampled transform and focal length.

    Y-up, metersPerUnit 1, start/end time codes = the track's frames, lens and film back in tenths of a
    metre (UsdGeomCamera's units: 35 mm is 0.35), marked with ``gvfx:cameraUnits``.
    """
    Gf, Sdf, Usd, UsdGeom = _pxr()
    p = Path(path)
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetStartTimeCode(track.frames[0])
    stage.SetEndTimeCode(track.frames[-1])
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    stage.GetRootLayer().documentation = CAMERA_DOC
    root = Sdf.Path(prim_path).GetPrefixes()[0]
    UsdGeom.Xform.Define(stage, root)
    stage.SetDefaultPrim(stage.GetPrimAtPath(root))
    author_usd_camera(stage, track, prim_path)
    try:
        ok = stage.GetRootLayer().Export(str(p))
    except Exception as exc:
        raise CameraError(f"cannot write USD camera: {str(exc).strip().splitlines()[-1]}", path=p) from None
    if not ok:
        raise CameraError("cannot write USD camera", path=p)
