"""A 3D insert's proxy in the shot's USD layout: ``/World/Elements/NAME/Proxy``, a ``UsdGeom.Mesh``
(object-space points, face-varying ``st``) with a time-sampled transform (its simulated motion) and a
``UsdPreviewSurface`` whose ``diffuseColor`` is the proxy's texture (``proxies/NAME.exr`` next to the
layout, scene-linear, ``sourceColorSpace raw``), so Blender or Nuke's 3D system can re-render it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["write_proxy_mesh"]


def write_proxy_mesh(stage, base: str, name: str, lp, anchor: np.ndarray, root: Path, frames: tuple[int, ...]):
    """Define ``{base}/Proxy`` from ``lp`` (:class:`gvfx.engines.sim.insert3d.element.LayoutProxy`);
    transforms are relative to the element's Xform at ``anchor``. Returns the mesh prim."""
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
