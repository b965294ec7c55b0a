"""``mesh``: the user's own textured mesh — OBJ (+ MTL ``map_Kd``), glTF binary (GLB, what image-to-3D
tools write) and USD (usd-core) — as a :class:`Proxy`, scaled later to ``size_m``.

trimesh is not a gvfx dependency, so OBJ and GLB are read by the small parsers here (triangles and
polygons fanned, one base-colour texture, the first mesh's primitives); USD through ``pxr``. Any file
that does not parse, or has no triangles, is one InputError naming the file.
"""

from __future__ import annotations

import io
import json
import logging
import struct
from pathlib import Path

import numpy as np

from gvfx.engines.sim.insert3d.proxy import Proxy, vertex_normals
from gvfx.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["load_mesh", "MESH_SUFFIXES"]

MESH_SUFFIXES = (".obj", ".glb", ".usd", ".usda", ".usdc", ".usdz")
_GREY = np.full((2, 2, 3), 0.5, np.float32)


def load_mesh(path: str | Path) -> Proxy:
    """A proxy from a mesh file: centred on its vertical (Y) axis, base at y = 0, +Z its front."""
    p = Path(path)
    if not p.is_file():
        raise InputError("mesh file not found", path=p, hint="check the element's params.mesh path")
    suffix = p.suffix.lower()
    try:
        if suffix == ".obj":
            verts, faces, fuv, tex = _read_obj(p)
        elif suffix == ".glb":
            verts, faces, fuv, tex = _read_glb(p)
        elif suffix in (".usd", ".usda", ".usdc", ".usdz"):
            verts, faces, fuv, tex = _read_usd(p)
        else:
            raise InputError(f"unknown mesh format {suffix!r}", path=p,
                             hint=f"give one of {', '.join(MESH_SUFFIXES)}")
    except InputError:
        raise
    except Exception as exc:  # a parser's own error: one line naming the file
        raise InputError(f"mesh file does not parse ({_short(exc, p)})", path=p,
                         hint="re-export it as OBJ, GLB or USD from your 3D tool") from None
    if len(faces) == 0 or len(verts) < 3:
        raise InputError("mesh file has no triangles", path=p, hint="export the object's geometry, not an empty scene")
    verts = np.asarray(verts, np.float64)
    if not np.isfinite(verts).all():
        raise InputError("mesh file has non-finite vertex positions", path=p)
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    if hi[1] - lo[1] <= 1e-12:
        raise InputError("mesh is flat along Y (no height to scale to size_m)", path=p,
                         hint="export it Y-up, standing on its base")
    centre = 0.5 * (lo + hi)
    verts = verts - np.array([centre[0], lo[1], centre[2]])
    faces = np.asarray(faces, np.int32)
    fuv = np.asarray(fuv, np.float32)
    closed = _closed(faces)
    if closed and _volume(verts, faces) < 0:  # closed but inside out: turn it outward
        faces, fuv = faces[:, ::-1].copy(), fuv[:, ::-1].copy()
    log.info("mesh %s: %d vertices, %d triangles, %s", p.name, len(verts), len(faces),
             "closed (back faces culled)" if closed else "open (two-sided)")
    return Proxy("mesh", verts, faces, fuv, tex, vertex_normals(verts, faces), closed=closed)


def _closed(faces: np.ndarray) -> bool:
    """Every edge shared by exactly two triangles, in opposite directions (a closed, oriented surface)."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    if len(np.unique(directed, axis=0)) != len(directed):
        return False
    _, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    return bool((counts == 2).all())


def _volume(verts: np.ndarray, faces: np.ndarray) -> float:
    tri = verts[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def _short(exc: Exception, p: Path) -> str:
    """One line of a parser's error: usd-core's multi-line reports cut to the part naming the file's line."""
    text = " ".join(str(exc).split())
    at = text.find(p.name + ":")
    if at >= 0 and "Error in" in text:
        text = text[at:].split("'")[0] if "'" in text[at:] else text[at:]
    else:
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 160 else text[:157] + "..."


def _fan(poly: list) -> list:
    return [(poly[0], poly[k], poly[k + 1]) for k in range(1, len(poly) - 1)]


def _read_obj(p: Path):
    v, vt, faces, fuv = [], [], [], []
    mtl_tex = None
    for line in p.read_text(errors="strict").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "v":
            v.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            vt.append([float(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0])
        elif parts[0] == "f":
            idx = []
            for tok in parts[1:]:
                f = tok.split("/")
                vi = int(f[0])
                ti = int(f[1]) if len(f) > 1 and f[1] else None
                idx.append((vi - 1 if vi > 0 else len(v) + vi, None if ti is None else (ti - 1 if ti > 0 else len(vt) + ti)))
            if len(idx) < 3:
                raise ValueError(f"face with {len(idx)} vertices")
            for a, b, c in _fan(idx):
                faces.append([a[0], b[0], c[0]])
                fuv.append([vt[x[1]] if x[1] is not None else (0.5, 0.5) for x in (a, b, c)])
        elif parts[0] == "mtllib" and mtl_tex is None:
            mtl_tex = _mtl_texture(p.parent / " ".join(parts[1:]))
        elif parts[0] not in ("vn", "vp", "o", "g", "s", "usemtl", "l"):
            raise ValueError(f"unknown OBJ statement {parts[0]!r}")
    faces_a = np.asarray(faces, np.int64).reshape(-1, 3)
    if faces_a.size and (faces_a.max() >= len(v) or faces_a.min() < 0):
        raise ValueError("a face refers to a vertex that does not exist")
    uv = np.asarray(fuv, np.float32).reshape(-1, 3, 2)
    uv[..., 1] = 1.0 - uv[..., 1]  # OBJ v is up
    return v, faces_a, uv, _GREY if mtl_tex is None else mtl_tex


def _mtl_texture(mtl: Path) -> np.ndarray | None:
    if not mtl.is_file():
        log.warning("OBJ material library %s not found: mesh is grey", mtl)
        return None
    for line in mtl.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts and parts[0] == "map_Kd":
            return _image(mtl.parent / parts[-1])
        if parts and parts[0] == "Kd" and len(parts) >= 4:
            kd = np.array([float(x) for x in parts[1:4]], np.float32)
            return np.broadcast_to(kd, (2, 2, 3)).copy()
    return None


def _image(path: Path) -> np.ndarray:
    from gvfx.engines.sim import look

    img = look.load_reference_rgb(str(path), field="params.mesh texture")
    return np.ascontiguousarray(np.asarray(img, np.float32)[..., :3])


def _image_bytes(data: bytes) -> np.ndarray:
    """A PNG/JPEG embedded in a GLB, display sRGB to ACEScg (texture colours are sRGB by glTF's spec)."""
    from PIL import Image

    from gvfx.color import from_display

    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32) / 255.0
    return np.asarray(from_display(img), np.float32)[..., :3]


_COMP = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _read_glb(p: Path):
    data = p.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError("not a glTF 2.0 binary (GLB)")
    off, doc, binchunk = 12, None, b""
    while off < min(length, len(data)):
        clen, ctype = struct.unpack_from("<II", data, off)
        chunk = data[off + 8: off + 8 + clen]
        if ctype == 0x4E4F534A:
            doc = json.loads(chunk)
        elif ctype == 0x004E4942:
            binchunk = chunk
        off += 8 + clen
    if doc is None:
        raise ValueError("no JSON chunk")

    def accessor(i: int) -> np.ndarray:
        a = doc["accessors"][i]
        bv = doc["bufferViews"][a["bufferView"]]
        dt = np.dtype(_COMP[a["componentType"]])
        nc = _NCOMP[a["type"]]
        start = bv.get("byteOffset", 0) + a.get("byteOffset", 0)
        stride = bv.get("byteStride", 0) or dt.itemsize * nc
        raw = np.frombuffer(binchunk, np.uint8, count=stride * (a["count"] - 1) + dt.itemsize * nc, offset=start)
        rows = np.lib.stride_tricks.as_strided(raw, (a["count"], dt.itemsize * nc), (stride, 1))
        return np.ascontiguousarray(rows).view(dt).reshape(a["count"], nc)

    verts, faces, fuv, tex = [], [], [], None
    base = 0
    for prim in doc["meshes"][0]["primitives"]:
        if prim.get("mode", 4) != 4:
            continue
        pos = accessor(prim["attributes"]["POSITION"]).astype(np.float64)
        idx = accessor(prim["indices"]).ravel().astype(np.int64) if "indices" in prim else np.arange(len(pos))
        tri = idx.reshape(-1, 3)
        uv = accessor(prim["attributes"]["TEXCOORD_0"]).astype(np.float32) if "TEXCOORD_0" in prim["attributes"] \
            else np.full((len(pos), 2), 0.5, np.float32)
        verts.append(pos)
        faces.append(tri + base)
        fuv.append(uv[tri])
        base += len(pos)
        if tex is None and "material" in prim:
            tex = _glb_texture(doc, binchunk, doc["materials"][prim["material"]])
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3, 2)), _GREY
    return (np.concatenate(verts), np.concatenate(faces), np.concatenate(fuv),
            _GREY if tex is None else tex)


def _glb_texture(doc: dict, binchunk: bytes, mat: dict) -> np.ndarray | None:
    pbr = mat.get("pbrMetallicRoughness", {})
    if "baseColorTexture" in pbr:
        img = doc["images"][doc["textures"][pbr["baseColorTexture"]["index"]]["source"]]
        if "bufferView" in img:
            bv = doc["bufferViews"][img["bufferView"]]
            o = bv.get("byteOffset", 0)
            return _image_bytes(binchunk[o:o + bv["byteLength"]])
    if "baseColorFactor" in pbr:
        return np.broadcast_to(np.asarray(pbr["baseColorFactor"][:3], np.float32), (2, 2, 3)).copy()
    return None


def _read_usd(p: Path):
    from pxr import Usd, UsdGeom, UsdShade

    stage = Usd.Stage.Open(str(p))
    if stage is None:
        raise ValueError("USD stage did not open")
    up = UsdGeom.GetStageUpAxis(stage)
    verts, faces, fuv, tex = [], [], [], None
    base = 0
    for prim in stage.Traverse():
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = UsdGeom.Mesh(prim)
        pts = np.asarray(mesh.GetPointsAttr().Get() or [], np.float64).reshape(-1, 3)
        counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get() or [], np.int64)
        idx = np.asarray(mesh.GetFaceVertexIndicesAttr().Get() or [], np.int64)
        if len(pts) == 0 or len(counts) == 0:
            continue
        xf = np.asarray(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()), np.float64)
        pts = pts @ xf[:3, :3] + xf[3, :3]
        st = None
        pv = UsdGeom.PrimvarsAPI(prim).GetPrimvar("st")
        if pv and pv.HasValue():
            vals = np.asarray(pv.ComputeFlattened(), np.float32).reshape(-1, 2)
            interp = pv.GetInterpolation()
            st = (vals, interp)
        corner = 0
        for n in counts:
            poly = list(range(corner, corner + int(n)))
            for a, b, c in _fan(poly):
                faces.append([idx[a] + base, idx[b] + base, idx[c] + base])
                if st is not None and st[1] == "faceVarying":
                    fuv.append([st[0][a], st[0][b], st[0][c]])
                elif st is not None and st[1] == "vertex":
                    fuv.append([st[0][idx[a]], st[0][idx[b]], st[0][idx[c]]])
                else:
                    fuv.append([(0.5, 0.5)] * 3)
            corner += int(n)
        verts.append(pts)
        base += len(pts)
        if tex is None:
            tex = _usd_texture(p, prim, UsdShade)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3, 2)), _GREY
    v = np.concatenate(verts)
    if up == UsdGeom.Tokens.z:
        v = v[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    uv = np.asarray(fuv, np.float32).reshape(-1, 3, 2)
    uv[..., 1] = 1.0 - uv[..., 1]  # USD st has t up
    return v, np.asarray(faces, np.int64), uv, _GREY if tex is None else tex


def _usd_texture(p: Path, prim, UsdShade) -> np.ndarray | None:
    """The diffuse texture (UsdUVTexture ``inputs:file``) or colour of the prim's bound preview material."""
    mat, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
    if not mat:
        return None
    for sh in mat.GetPrim().GetStage().Traverse():
        if not sh.GetPath().HasPrefix(mat.GetPath()) or not sh.IsA(UsdShade.Shader):
            continue
        shader = UsdShade.Shader(sh)
        f = shader.GetInput("file")
        if f and f.Get() is not None:
            asset = f.Get()
            path = Path(asset.resolvedPath or (p.parent / asset.path))
            if path.is_file():
                return _image(path)
        c = shader.GetInput("diffuseColor")
        if c and c.Get() is not None and not c.HasConnectedSource():
            return np.broadcast_to(np.asarray(c.Get(), np.float32), (2, 2, 3)).copy()
    return None
