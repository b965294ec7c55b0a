"""The shot's USD layout (``layout.usda``): camera, plate card and one card or box per element.

What a layout artist or lighter opens to see where gvfx put things, in any USD tool:

- ``/World/Camera``: a ``UsdGeom.Camera`` with the plate's camera (time-sampled transform and focal
  length, lens and film back in tenths of a metre per UsdGeomCamera), as
  :func:`gvfx.camera_io.write_usd_camera` writes it;
- ``/World/Plate``: an Xform following the camera, holding ``Card``, a ``UsdGeom.Mesh`` quad filling
  the camera's view at :data:`PLATE_DISTANCE_M`, textured with the plate (``UsdUVTexture.inputs:file``
  time-sampled per frame);
- ``/World/Elements/NAME``: at the element's anchor (the sim cache's ``meta.json``), a ``Card`` (a quad
  facing the camera, ``2 * size_m`` wide) and, for volume effects (smoke, fire, explosion...), a
  ``Bounds`` ``UsdGeom.Cube`` scaled to the volume. Both carry the element's active version as a
  texture; the card's ``st`` is time-sampled to where its corners fall in the camera's image, so the
  full-frame element EXR lands on the card where it is seen through the camera (a camera projection
  baked per frame, affine across the quad); a 3D ``insert`` also gets ``Proxy``, its proxy mesh with
  its simulated motion and a UsdPreviewSurface material, the card then hidden;
- Y up, metres, start/end time codes and fps of the shot. Paths are relative to the layout file when
  the sequences are inside the shot folder. Textures are scene-linear EXRs (``sourceColorSpace raw``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gvfx.camera import CameraTrack
from gvfx.errors import GvfxError, InputError

if TYPE_CHECKING:
    from gvfx.job import Job
    from gvfx.plate import Plate

__all__ = ["LayoutSequence", "LayoutElement", "write_layout", "write_shot_layout", "layout_shot",
           "validate_layout", "PLATE_DISTANCE_M", "VOLUME_EFFECTS"]

log = logging.getLogger(__name__)

#: distance of the plate card from the camera, metres (inside the camera's clipping range)
PLATE_DISTANCE_M = 1000.0
#: effects drawn as a box (their volume) besides the card
VOLUME_EFFECTS = frozenset({"smoke", "fire", "explosion", "dust", "steam", "fog", "cloud"})


class LayoutError(GvfxError):
    """The layout cannot be built (no camera, no timeline, a bad stage)."""


@dataclass(frozen=True)
class LayoutSequence:
    """An image sequence to use as a texture: ``pattern`` (``name.####.exr``) and its frames."""

    pattern: str
    frames: tuple[int, ...]


@dataclass(frozen=True)
class LayoutElement:
    """One element: its texture sequence, world anchor (metres, Y up), size and whether it is a volume."""

    name: str
    sequence: LayoutSequence
    position: tuple[float, float, float]
    size_m: float
    volume: bool = False
    #: a 3D insert's proxy and animation (gvfx.engines.sim.insert3d.element.LayoutProxy), else None
    proxy: object | None = None


def _pxr():
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, Vt

    return Gf, Sdf, Usd, UsdGeom, UsdShade, Vt


def _asset(path: Path, root: Path) -> str:
    """A texture path for the layer at ``root``: ``./relative`` inside it, absolute otherwise."""
    p = Path(path).resolve()
    try:
        return "./" + p.relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def _material(stage, path: str, seq: LayoutSequence, root: Path, *, opacity: bool):
    """A UsdPreviewSurface material whose emissive colour (and opacity) is the sequence, per frame."""
    from gvfx.sequence import frame_path

    Gf, Sdf, Usd, UsdGeom, UsdShade, Vt = _pxr()
    mat = UsdShade.Material.Define(stage, path)
    surf = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
    surf.CreateIdAttr("UsdPreviewSurface")
    surf.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.0, 0.0, 0.0))
    surf.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(1.0)
    reader = UsdShade.Shader.Define(stage, f"{path}/stReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    tex = UsdShade.Shader.Define(stage, f"{path}/Texture")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(
        reader.CreateOutput("result", Sdf.ValueTypeNames.Float2))
    tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("raw")
    tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("black")
    tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("black")
    file_in = tex.CreateInput("file", Sdf.ValueTypeNames.Asset)
    for f in seq.frames:
        file_in.Set(Sdf.AssetPath(_asset(frame_path(seq.pattern, f), root)), Usd.TimeCode(f))
    surf.CreateInput("emissiveColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(
        tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3))
    if opacity:
        surf.CreateInput("opacity", Sdf.ValueTypeNames.Float).ConnectToSource(
            tex.CreateOutput("a", Sdf.ValueTypeNames.Float))
    mat.CreateSurfaceOutput().ConnectToSource(surf.ConnectableAPI(), "surface")
    return mat


def _bind(prim, mat) -> None:
    from pxr import UsdShade

    UsdShade.MaterialBindingAPI.Apply(prim).Bind(mat)


def _quad(stage, path: str, corners_by_frame: dict[int, np.ndarray] | np.ndarray, st_by_frame=None):
    """A one-face mesh (corners bottom-left, bottom-right, top-right, top-left) with an ``st`` primvar."""
    Gf, Sdf, Usd, UsdGeom, UsdShade, Vt = _pxr()
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreateFaceVertexCountsAttr([4])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateDoubleSidedAttr(True)
    points, extent = mesh.CreatePointsAttr(), mesh.CreateExtentAttr()

    def put(corners: np.ndarray, t) -> None:
        arr = Vt.Vec3fArray([Gf.Vec3f(*map(float, c)) for c in corners])
        points.Set(arr, t)
        extent.Set(UsdGeom.PointBased.ComputeExtent(arr), t)

    if isinstance(corners_by_frame, dict):
        for f, c in corners_by_frame.items():
            put(c, Usd.TimeCode(f))
    else:
        put(corners_by_frame, Usd.TimeCode.Default())
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
    if st_by_frame is None:
        st.Set(Vt.Vec2fArray([Gf.Vec2f(0, 0), Gf.Vec2f(1, 0), Gf.Vec2f(1, 1), Gf.Vec2f(0, 1)]))
    else:
        for f, uv in st_by_frame.items():
            st.Set(Vt.Vec2fArray([Gf.Vec2f(float(u), float(v)) for u, v in uv]), Usd.TimeCode(f))
    return mesh


def _camera(stage, track: CameraTrack, path: str, transform_op_prims: list) -> None:
    """The camera (camera_io.author_usd_camera: spec units) and the same transform on ``transform_op_prims``."""
    from gvfx.camera_io import author_usd_camera

    Gf, Sdf, Usd, UsdGeom, UsdShade, Vt = _pxr()
    cam = author_usd_camera(stage, track, path)
    cam.GetClippingRangeAttr().Set(Gf.Vec2f(0.01, float(PLATE_DISTANCE_M * 2)))
    ops = [UsdGeom.Xformable(p).AddTransformOp() for p in transform_op_prims]
    for i, frame in enumerate(track.frames):
        m = Gf.Matrix4d(track.cam_to_world[i].T.tolist())
        for op in ops:
            op.Set(m, Usd.TimeCode(frame))


def _plate_corners(track: CameraTrack, frame: int) -> np.ndarray:
    """Camera-space corners of the image plane at PLATE_DISTANCE_M (bl, br, tr, tl)."""
    cam = track.camera_at(frame)
    w, h = cam.width, cam.height
    uv = np.array([[0, h], [w, h], [w, 0], [0, 0]], dtype=np.float64)
    return cam.unproject(uv, np.full(4, PLATE_DISTANCE_M))


def _facing_basis(track: CameraTrack, position: np.ndarray, frames: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Right and up unit vectors of an upright card at ``position`` facing the camera (middle frame)."""
    up = np.array([0.0, 1.0, 0.0])
    to_cam = track.position(frames[len(frames) // 2]) - position
    to_cam[1] = 0.0
    if np.linalg.norm(to_cam) < 1e-9:
        to_cam = np.array([0.0, 0.0, 1.0])
    n = to_cam / np.linalg.norm(to_cam)
    right = np.cross(up, n)
    return right / np.linalg.norm(right), up


def _projected_st(track: CameraTrack, corners_world: np.ndarray, frames: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Per frame, the corners' image positions as texture coordinates (0..1, origin bottom-left)."""
    out = {}
    for f in frames:
        cam = track.camera_at(f)
        uv, _ = track.project_world(corners_world, f)
        out[f] = np.stack([uv[:, 0] / cam.width, 1.0 - uv[:, 1] / cam.height], axis=-1)
    return out


def write_layout(path: str | Path, *, camera: CameraTrack, fps: float, plate: LayoutSequence,
                 elements: list[LayoutElement]) -> Path:
    """Write ``layout.usda`` (see module doc) atomically; texture paths are relative to its folder."""
    from gvfx.versions import atomic_write_text

    Gf, Sdf, Usd, UsdGeom, UsdShade, Vt = _pxr()
    out = Path(path)
    root = out.parent
    frames = plate.frames
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetStartTimeCode(frames[0])
    stage.SetEndTimeCode(frames[-1])
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    world = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(world.GetPrim())
    stage.GetRootLayer().documentation = "gvfx shot layout: camera, plate card, element cards (docs/shot_layout.md)"
    UsdGeom.Scope.Define(stage, "/World/Looks")

    plate_xf = UsdGeom.Xform.Define(stage, "/World/Plate")
    _camera(stage, camera, "/World/Camera", [plate_xf])
    cam_frames = [f for f in frames if camera.frames[0] <= f <= camera.frames[-1]] or list(camera.frames)
    if camera.focal_mm is None:
        card = _quad(stage, "/World/Plate/Card", _plate_corners(camera, cam_frames[0]))
    else:
        card = _quad(stage, "/World/Plate/Card", {f: _plate_corners(camera, f) for f in cam_frames})
    _bind(card.GetPrim(), _material(stage, "/World/Looks/Plate", plate, root, opacity=False))

    UsdGeom.Scope.Define(stage, "/World/Elements")
    for el in elements:
        base = f"/World/Elements/{el.name}"
        xf = UsdGeom.Xform.Define(stage, base)
        pos = np.asarray(el.position, dtype=np.float64)
        xf.AddTranslateOp().Set(Gf.Vec3d(*map(float, pos)))
        mat = _material(stage, f"/World/Looks/{el.name}", el.sequence, root, opacity=True)
        right, up = _facing_basis(camera, pos, el.sequence.frames)
        s = float(el.size_m)
        local = np.array([-right * s - up * 0.5 * s, right * s - up * 0.5 * s,
                          right * s + up * 1.5 * s, -right * s + up * 1.5 * s])
        st = _projected_st(camera, local + pos, tuple(f for f in el.sequence.frames if f in cam_frames))
        card = _quad(stage, f"{base}/Card", local, st)
        _bind(card.GetPrim(), mat)
        if el.proxy is not None:
            _proxy_mesh(stage, base, el.name, el.proxy, pos, root, el.sequence.frames)
            card.CreateVisibilityAttr("invisible")  # the mesh is the object; the card stays for reference
        if el.volume:
            cube = UsdGeom.Cube.Define(stage, f"{base}/Bounds")
            cube.CreateSizeAttr(1.0)
            cube.CreateExtentAttr([Gf.Vec3f(-0.5, -0.5, -0.5), Gf.Vec3f(0.5, 0.5, 0.5)])
            cube.AddTranslateOp().Set(Gf.Vec3d(0.0, 0.5 * s, 0.0))
            cube.AddScaleOp().Set(Gf.Vec3f(2 * s, 2 * s, 2 * s))
            cube.CreateDisplayOpacityAttr([0.25])
            _bind(cube.GetPrim(), mat)
    atomic_write_text(out, stage.GetRootLayer().ExportToString())
    log.info("wrote layout %s (%d elements)", out, len(elements))
    return out


def _proxy_mesh(stage, base: str, name: str, lp, anchor: np.ndarray, root: Path, frames: tuple[int, ...]):
    """Define ``{base}/Proxy``, a 3D insert's proxy mesh, from ``lp``
    (:class:`gvfx.engines.sim.insert3d.element.LayoutProxy`): object-space points, face-varying ``st``,
    a time-sampled transform relative to the element's Xform at ``anchor``, and a UsdPreviewSurface whose
    ``diffuseColor`` is the proxy's texture (``proxies/NAME.exr`` next to the layout, ``raw``)."""
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, Vt

    from gvfx.exr import write_layers

    pr = lp.proxy
    mesh = UsdGeom.Mesh.Define(stage, f"{base}/Proxy")
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(pr.verts, np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray([3] * len(pr.faces)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray(pr.faces.astype(int).ravel().tolist()))
    mesh.CreateExtentAttr([Gf.Vec3f(*map(float, pr.verts.min(0))), Gf.Vec3f(*map(float, pr.verts.max(0)))])
    mesh.CreateSubdivisionSchemeAttr("none")
    mesh.CreateDoubleSidedAttr(not pr.closed)
    st = pr.face_uv.reshape(-1, 2).astype(np.float32).copy()
    st[:, 1] = 1.0 - st[:, 1]  # USD st: t up
    pv = UsdGeom.PrimvarsAPI(mesh.GetPrim()).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray,
                                                           UsdGeom.Tokens.faceVarying)
    pv.Set(Vt.Vec2fArray.FromNumpy(st))
    op = mesh.AddTransformOp()
    for f in sorted(lp.pose_by_frame):
        if frames and not (frames[0] <= f <= frames[-1]):
            continue
        rot, t = lp.pose_by_frame[f]
        m = np.eye(4)
        m[:3, :3] = rot.T  # USD matrices act on row vectors: p_world = p_local @ M
        m[3, :3] = t - anchor
        op.Set(Gf.Matrix4d(m.tolist()), Usd.TimeCode(f))
    tex_path = root / "proxies" / f"{name}.exr"
    tex_path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.ascontiguousarray(pr.texture[..., :3], np.float32)
    write_layers(tex_path, rgba=np.concatenate([rgb, np.ones_like(rgb[..., :1])], -1))
    path = f"/World/Looks/{name}_proxy"
    mat = UsdShade.Material.Define(stage, path)
    surf = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
    surf.CreateIdAttr("UsdPreviewSurface")
    surf.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.8)
    reader = UsdShade.Shader.Define(stage, f"{path}/stReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    tex = UsdShade.Shader.Define(stage, f"{path}/Texture")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.CreateOutput("result", Sdf.ValueTypeNames.Float2))
    tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("raw")
    tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(f"./proxies/{name}.exr"))
    surf.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3))
    mat.CreateSurfaceOutput().ConnectToSource(surf.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(mat)
    log.info("layout: %s as a %d-triangle %s proxy mesh", name, len(pr.faces), pr.kind)
    return mesh


def _anchor(cache_dir: Path) -> tuple[float, float, float] | None:
    import json

    try:
        meta = json.loads((cache_dir / "meta.json").read_text())
        return tuple(float(x) for x in meta["anchor"])  # type: ignore[return-value]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _unprojected_anchor(job: "Job", plate: "Plate", spec) -> tuple[float, float, float] | None:
    """An element's world point from its placement (a point, or a screen position on the plate's depth)."""
    pl = spec.placement
    if pl.point is not None:
        return tuple(pl.point)
    try:
        from gvfx.engines import get_engine

        anchor = get_engine(spec.engine).anchor(spec, plate.context())  # sim engine API
        return tuple(float(x) for x in anchor.point)
    except Exception as exc:  # noqa: BLE001 - an engine without anchors: the element is left out, said so
        log.warning("layout: no 3D position for element %s (%s)", spec.name, exc)
        return None


def _insert_proxy(spec, plate: "Plate", cache_dir: Path):
    """A sim insert's 3D proxy for the layout (None for a card, another engine, or on failure, said so)."""
    if spec.engine != "sim":
        return None
    try:
        from gvfx.engines.sim.insert3d.element import layout_proxy

        return layout_proxy(spec, plate.context(), cache_dir)
    except GvfxError as exc:
        log.warning("layout: element %s drawn as a card, its proxy failed (%s)", spec.name, exc)
        return None


def write_shot_layout(path: str | Path, *, job: "Job", plate: "Plate", timeline: str | Path) -> Path:
    """The layout of a shot: the job's camera and plate, each element's active version in ``timeline``."""
    from gvfx.timeline import active_versions

    tl_path = Path(timeline)
    active = active_versions(tl_path)
    elements = []
    for spec in job.elements:
        entry = active.get(spec.name)
        if entry is None:
            continue
        seq = entry.seq
        folder = seq.directory if seq.directory.is_absolute() else tl_path.resolve().parent / seq.directory
        pattern = str(folder / f"{seq.prefix}{'#' * seq.padding}{seq.suffix}")
        cache = entry.metadata.get("cache")
        pos = _anchor(job.output / cache) if cache else None
        if pos is None:
            pos = _unprojected_anchor(job, plate, spec)
        if pos is None:
            continue
        proxy = _insert_proxy(spec, plate, job.output / cache) if cache and spec.effect == "insert" else None
        elements.append(LayoutElement(spec.name, LayoutSequence(pattern, tuple(range(seq.start_frame, seq.end_frame + 1))),
                                      pos, float(spec.size_m), spec.effect in VOLUME_EFFECTS, proxy))
    return write_layout(path, camera=plate.camera, fps=job.fps,
                        plate=LayoutSequence(plate.sequence.pattern, tuple(plate.frames)), elements=elements)


def layout_shot(shot_root: str | Path, *, job_path: str | Path | None = None, out: str | Path | None = None) -> Path:
    """``gvfx layout SHOT_ROOT``: rebuild ``layout.usda`` from the shot's timeline and its job file."""
    from gvfx.job import load_job
    from gvfx.plate import open_plate
    from gvfx.timeline import plain, read_timeline

    root = Path(shot_root)
    timelines = sorted(root.glob("*.otio"))
    if not timelines:
        raise InputError("no .otio timeline in the shot folder", path=root, hint="render the shot first (gvfx render)")
    if len(timelines) > 1 and job_path is None:
        raise InputError(f"{len(timelines)} timelines in the shot folder", path=root, hint="give --job JOB")
    if job_path is None:
        tl = read_timeline(timelines[0])  # keep the timeline alive while its metadata is read
        job_path = plain(tl.metadata.get("gvfx", {})).get("job")
        if not job_path:
            raise InputError("the timeline names no job file", path=timelines[0], hint="give --job JOB")
    job = load_job(job_path)
    tl = root / f"{job.name}.otio"
    if not tl.exists():
        raise InputError(f"no timeline {tl.name} for job {job.name!r}", path=root)
    return write_shot_layout(Path(out) if out else job.output / "layout.usda", job=job, plate=open_plate(job), timeline=tl)


def validate_layout(path: str | Path) -> list[str]:
    """USD's own validators on a layout: one line per error (empty = valid).

    usd-core 26 ships them as ``UsdValidation`` (the successor of ``UsdUtils.ComplianceChecker``, which
    is used instead when present); warnings are not returned.
    """
    from pxr import Usd

    stage = Usd.Stage.Open(str(path))
    try:
        from pxr import UsdValidation as V
    except ImportError:  # older usd-core
        from pxr import UsdUtils

        checker = UsdUtils.ComplianceChecker()
        checker.CheckCompliance(str(path))
        return list(checker.GetErrors()) + list(checker.GetFailedChecks())
    validators = [v for v in V.ValidationRegistry().GetOrLoadAllValidators()
                  if "Package" not in v.GetMetadata().name and "Physics" not in v.GetMetadata().name]
    errors = V.ValidationContext(validators).Validate(stage)
    return [f"{e.GetName()}: {e.GetMessage()}" for e in errors if e.GetType() == V.ValidationErrorType.Error]
