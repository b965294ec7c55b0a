"""Shadows an element casts onto the plate's depth-derived surface, and the light they come from.

``shadow_matte`` unprojects the element's visible pixels (alpha > 0, element Z) and the plate's surface
points (plate Z) to world space, and shadow-maps the element orthographically along the light:
a surface point is shadowed where an element point lies between it and the light (further along the
light direction) in the same shadow-map cell, with the element's alpha there as its opacity. A contact
term darkens the surface where the element touches it: a Gaussian falloff of the distance from each
surface point to the nearest element point. Output: (H, W) shadow density in 0..1 (1 = fully dark).

The work is done on a reduced grid (at most ~``max_px`` surface samples across) and upsampled: shadows
here are soft, and this keeps 4K frames cheap.

Both terms scale with each particle, not with the whole element: every connected part of the matte
(a drop, a flake, a chunk, a spark streak, a plume) has a size -- twice its inscribed radius (the
largest distance inside it to its edge) in pixels, times the pixel footprint at its depth -- and each
element point reaches ``contact_radius`` x its own part's size, darkening by ``contact_strength`` x
its own opacity (alpha). The cast shadow is blurred by ``softness`` x the median part size. A rain
element's contact is thus a millimetre-scale dab under each faint streak, not a frame-wide stain (it
was: the old radius, 0.15 x the element's extent, put every surface point of the frame within reach
of some drop, darkening 91% of the demo frame by more than half).

``estimate_light``: the key light when the job gives none, with a confidence. The only evidence it
trusts is a light source in frame: the plate's brightest 0.5% pixels (sky pixels preferred when there
is sky) must be much brighter than the frame (``contrast`` = their mean luminance over the frame's
median, confidence rising from 0 at ``CONTRAST_NONE`` to 1 at ``CONTRAST_FULL``) and gathered in one
compact blob (the largest connected part's share of them); the direction is then the
luminance-weighted mean ray of that blob, raised to 45 degrees keeping its azimuth when it is below
15 degrees of elevation (shadows need a light from above). A bright sky gradient, a white wall or a
floor highlight is not a light source: on the demo plate the brightest pixels are the horizon sky
above the wall, 77 degrees from the real sun. Below ``MIN_CONFIDENCE`` the estimate is the documented
default :func:`default_light_dir` -- a key from above (50 degrees of elevation) and behind the
camera, so shadows fall away from it -- and a warning says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from gvfx.camera import Camera

log = logging.getLogger(__name__)

__all__ = ["shadow_matte", "estimate_light", "estimate_light_dir", "default_light_dir", "LightEstimate",
           "MIN_CONFIDENCE"]

_UP = np.array([0.0, 1.0, 0.0])
#: brightest-pixels-over-median luminance ratio at which a light source starts / fully counts
CONTRAST_NONE, CONTRAST_FULL = 3.0, 10.0
#: below this confidence the estimate is the default light (and a warning)
MIN_CONFIDENCE = 0.5
#: elevation of the default light (degrees), behind the camera
DEFAULT_ELEVATION_DEG = 50.0


@dataclass(frozen=True)
class LightEstimate:
    """A key light direction (world, towards the light, unit), how sure it is (0..1) and from what."""

    direction: tuple[float, float, float]
    confidence: float
    source: str  # "light source in frame" | "default"
    note: str = ""


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def default_light_dir(cam_to_world: np.ndarray) -> np.ndarray:
    """The documented default key: ``DEFAULT_ELEVATION_DEG`` up, from behind the camera (world, unit)."""
    back = np.asarray(cam_to_world, np.float64)[:3, 2]  # camera +Z: from the scene towards the camera
    flat = back - (back @ _UP) * _UP
    flat = _unit(flat) if np.linalg.norm(flat) > 1e-6 else np.array([0.0, 0.0, 1.0])
    e = np.radians(DEFAULT_ELEVATION_DEG)
    return _unit(flat * np.cos(e) + _UP * np.sin(e))


def estimate_light(plate_rgb: np.ndarray, plate_z: np.ndarray | None, camera: Camera,
                   cam_to_world: np.ndarray, *, min_confidence: float = MIN_CONFIDENCE) -> LightEstimate:
    """The key light from a light source in frame, with a confidence; the default below
    ``min_confidence`` (module doc)."""
    rgb = np.nan_to_num(np.asarray(plate_rgb, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
    lum = rgb @ np.array([0.2722, 0.6741, 0.0537], np.float32)
    stride = max(1, lum.shape[1] // 512)
    lum_s = lum[::stride, ::stride]
    cand = np.ones_like(lum_s, dtype=bool)
    if plate_z is not None:
        sky = ~np.isfinite(np.asarray(plate_z)[::stride, ::stride])
        if sky.mean() > 0.01:
            cand = sky
    vals = lum_s[cand]
    conf, d, note = 0.0, None, "no bright pixels"
    if vals.size and float(vals.max()) > 0:
        thr = np.quantile(vals, 0.995)
        sel = cand & (lum_s >= thr)
        labels, n = ndimage.label(ndimage.binary_dilation(sel, iterations=1) & cand)
        sizes = ndimage.sum(sel, labels, index=np.arange(1, n + 1)) if n else np.zeros(0)
        blob = sel & (labels == (int(np.argmax(sizes)) + 1)) if n else sel
        compact = float(blob.sum()) / max(float(sel.sum()), 1.0)
        contrast = float(lum_s[blob].mean()) / max(float(np.median(lum_s)), 1e-6)
        conf = float(np.clip((contrast - CONTRAST_NONE) / (CONTRAST_FULL - CONTRAST_NONE), 0.0, 1.0)) * compact
        note = f"brightest pixels {contrast:.1f}x the frame's median, {compact:.0%} in one blob"
        ys, xs = np.nonzero(blob)
        uv = np.stack([xs * stride + 0.5, ys * stride + 0.5], axis=-1)
        rays = camera.unproject(uv, np.ones(len(uv)))
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        d = _unit(np.asarray(cam_to_world)[:3, :3] @ _unit((rays * lum_s[blob][:, None]).sum(0)))
        elev = np.degrees(np.arcsin(np.clip(d @ _UP, -1, 1)))
        if elev < 15.0:
            flat = d - (d @ _UP) * _UP
            flat = _unit(flat) if np.linalg.norm(flat) > 1e-6 else np.array([0.0, 0.0, 1.0])
            d = _unit(flat * np.cos(np.radians(45)) + _UP * np.sin(np.radians(45)))
    if d is None or conf < min_confidence:
        d = default_light_dir(cam_to_world)
        log.warning("light: no clear light source in the plate (%s; confidence %.2f < %.2f): using the default key "
                    "from above and behind the camera %s; give match.light_dir for real shadows", note, conf,
                    min_confidence, np.round(d, 3).tolist())
        return LightEstimate(tuple(float(x) for x in d), round(conf, 4), "default", note)
    log.info("light: %s towards the light source in frame (confidence %.2f: %s)", np.round(d, 3).tolist(), conf, note)
    return LightEstimate(tuple(float(x) for x in d), round(conf, 4), "light source in frame", note)


def estimate_light_dir(plate_rgb: np.ndarray, plate_z: np.ndarray | None, camera: Camera,
                       cam_to_world: np.ndarray) -> np.ndarray:
    """Unit world direction towards the key light: :func:`estimate_light`'s direction."""
    return np.asarray(estimate_light(plate_rgb, plate_z, camera, cam_to_world).direction)


def _part_sizes_px(vis: np.ndarray) -> np.ndarray:
    """(H, W) float: per element pixel, twice the inscribed radius (px) of its connected part (0 outside)."""
    out = np.zeros(vis.shape, np.float32)
    rows, cols = np.flatnonzero(vis.any(axis=1)), np.flatnonzero(vis.any(axis=0))
    if rows.size == 0:
        return out
    # on the parts' box plus a ring of background: the same distances as on the whole frame
    h, w = vis.shape
    box = (slice(max(0, rows[0] - 1), min(h, rows[-1] + 2)), slice(max(0, cols[0] - 1), min(w, cols[-1] + 2)))
    v = vis[box]
    labels, n = ndimage.label(v)
    edt = ndimage.distance_transform_edt(v)
    lab = labels[v]
    thick = np.zeros(n + 1, np.float64)
    np.maximum.at(thick, lab, edt[v])  # per part (ndimage.maximum sorts the whole frame: 10x slower)
    out[box][v] = 2.0 * thick[lab].astype(np.float32)
    return out


def _basis(light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = _UP if abs(light @ _UP) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = _unit(np.cross(light, helper))
    return e1, np.cross(light, e1)


def _upsample(small: np.ndarray, h: int, w: int, stride: int) -> np.ndarray:
    """Bilinear upsampling of a grid sampled at pixel centres ``i * stride + stride / 2``."""
    def axis_coords(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = np.clip((np.arange(n) + 0.5) / stride - 0.5, 0, m - 1)
        i0 = np.floor(c).astype(np.int64)
        i1 = np.minimum(i0 + 1, m - 1)
        return i0, i1, (c - i0).astype(np.float32)

    y0, y1, ty = axis_coords(h, small.shape[0])
    x0, x1, tx = axis_coords(w, small.shape[1])
    rows = small[y0] * (1 - ty[:, None]) + small[y1] * ty[:, None]
    return rows[:, x0] * (1 - tx) + rows[:, x1] * tx


def shadow_matte(element_alpha: np.ndarray, element_z: np.ndarray, plate_z: np.ndarray, camera: Camera,
                 cam_to_world: np.ndarray, light_dir: np.ndarray, *, strength: float = 0.6,
                 softness: float = 0.05, contact_strength: float = 0.8, contact_radius: float = 0.15,
                 max_px: int = 480, max_element_points: int = 40000) -> np.ndarray:
    """(H, W) float32 shadow density in 0..1 cast by the element onto the plate surface (module doc).

    ``element_alpha``, ``element_z``, ``plate_z``: (H, W) on ``camera``'s canvas (Z metric, inf = none).
    ``light_dir``: world direction towards the light. ``strength``: density of the cast shadow under an
    opaque element; ``softness``: blur of the cast shadow as a fraction of the element's size;
    ``contact_strength``/``contact_radius``: darkening where the element touches the surface, the
    radius as a fraction of the element's size.
    """
    alpha = np.asarray(element_alpha, np.float32)
    ez = np.asarray(element_z, np.float64)
    h, w = alpha.shape
    out = np.zeros((h, w), np.float32)
    vis = (alpha > 0.02) & np.isfinite(ez) & (ez > 0)
    if not vis.any() or (strength <= 0 and contact_strength <= 0):
        return out
    m = np.asarray(cam_to_world, np.float64)
    light = _unit(light_dir)
    e1, e2 = _basis(light)

    # element points (world), thinned to a bounded count
    part_px = _part_sizes_px(vis)
    ys, xs = np.nonzero(vis)
    if len(ys) > max_element_points:
        keep = np.linspace(0, len(ys) - 1, max_element_points).astype(np.int64)
        ys, xs = ys[keep], xs[keep]
    uv = np.stack([xs + 0.5, ys + 0.5], axis=-1)
    ep = camera.unproject(uv, ez[ys, xs]) @ m[:3, :3].T + m[:3, 3]
    ea = alpha[ys, xs]
    lo, hi = np.percentile(ep, 2, axis=0), np.percentile(ep, 98, axis=0)
    size_m = max(float(np.linalg.norm(hi - lo)), 1e-3)  # the whole element: bounds the shadow map only
    part_m = np.maximum(part_px[ys, xs] * ez[ys, xs] / camera.fx, 1e-4)  # each point's own part

    # surface points on a reduced grid
    stride = max(1, int(np.ceil(max(h, w) / max_px)))
    pz = np.asarray(plate_z, np.float64)[stride // 2::stride, stride // 2::stride]
    gh, gw = pz.shape
    gy, gx = np.mgrid[0:gh, 0:gw]
    suv = np.stack([gx * stride + stride / 2.0, gy * stride + stride / 2.0], axis=-1).reshape(-1, 2)
    sz = pz.reshape(-1)
    sok = np.isfinite(sz) & (sz > 0)
    sp = camera.unproject(suv[sok], sz[sok]) @ m[:3, :3].T + m[:3, 3]
    dens = np.zeros(gh * gw, np.float32)

    if strength > 0 and len(sp):
        # orthographic shadow map along the light: per cell the max element alpha and the highest
        # element point along the light (the occluder nearest the light)
        footprint = float(np.median(ez[ys, xs])) / camera.fx
        cell = max(footprint * 1.5, size_m / 256.0)
        ea_, eb_ = ep @ e1, ep @ e2
        a0, b0 = ea_.min() - 2 * cell, eb_.min() - 2 * cell
        na = int(np.ceil((ea_.max() - a0) / cell)) + 3
        nb = int(np.ceil((eb_.max() - b0) / cell)) + 3
        if na * nb > 2048 * 2048:  # cap the map; coarser cells still cover the element
            cell *= np.sqrt(na * nb / (2048.0 * 2048.0))
            na = int(np.ceil((ea_.max() - a0) / cell)) + 3
            nb = int(np.ceil((eb_.max() - b0) / cell)) + 3
        ia = ((ea_ - a0) / cell).astype(np.int64)
        ib = ((eb_ - b0) / cell).astype(np.int64)
        occ = np.zeros((na, nb), np.float32)
        top = np.full((na, nb), -np.inf)
        np.maximum.at(occ, (ia, ib), ea)
        np.maximum.at(top, (ia, ib), ep @ light)
        occ = ndimage.grey_dilation(occ, size=3)  # close pinholes between splatted element pixels
        top = ndimage.grey_dilation(top, size=3)
        sigma = softness * float(np.median(part_m)) / cell
        if sigma > 0.3:
            occ = ndimage.gaussian_filter(occ, sigma)
        sa = np.floor((sp @ e1 - a0) / cell).astype(np.int64)
        sb = np.floor((sp @ e2 - b0) / cell).astype(np.int64)
        inside = (sa >= 0) & (sa < na) & (sb >= 0) & (sb < nb)
        bias = 2.0 * cell
        cast = np.zeros(len(sp), np.float32)
        ii = np.flatnonzero(inside)
        shadowed = top[sa[ii], sb[ii]] > (sp[ii] @ light) + bias
        cast[ii] = np.where(shadowed, occ[sa[ii], sb[ii]], 0.0)
        dens[np.flatnonzero(sok)] = strength * cast

    if contact_strength > 0 and len(sp):
        # per part size: element points binned by their reach (log-spaced), a nearest-point query per bin;
        # a point darkens by its own opacity
        radius = np.maximum(contact_radius * part_m, 1e-4)
        edges = np.geomspace(radius.min(), radius.max() * 1.0001 + 1e-9, 9)
        which = np.clip(np.searchsorted(edges, radius, side="right") - 1, 0, len(edges) - 2)
        contact = np.zeros(len(sp), np.float32)
        for b in np.unique(which):
            sel = which == b
            rb = float(np.median(radius[sel]))
            dist, j = cKDTree(ep[sel]).query(sp, k=1, distance_upper_bound=3 * rb)
            hit = np.isfinite(dist)
            c = np.zeros(len(sp), np.float32)
            c[hit] = ea[sel][j[hit]] * np.exp(-0.5 * (dist[hit] / rb) ** 2)
            contact = np.maximum(contact, c)
        idx = np.flatnonzero(sok)
        dens[idx] = np.maximum(dens[idx], contact_strength * np.clip(contact, 0.0, 1.0))

    small = dens.reshape(gh, gw)
    full = _upsample(small, h, w, stride) if stride > 1 else small
    return np.clip(full, 0.0, 1.0).astype(np.float32)
