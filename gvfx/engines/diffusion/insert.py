"""``insert``: the model repaints a masked region of the plate (inpainting), guided by the plate's
depth and a reference; the element is what changed, so the plate outside the mask is untouched.

Read top to bottom:

1. The mask per frame: an ellipse or rectangle the size of the element at its anchor (projected with
   the plate camera each frame), a user matte sequence (``matte`` param, ``####`` pattern), or with
   ``mask: proxy`` the sim engine's 3D proxy of the reference (``proxy_condition.py``): its silhouette
   is the mask, its render over the plate the start image, its depth the control, its Z the element's —
   render-then-refine, so the model's look follows the proxy's geometry from every angle.
2. One crop for the whole shot: the union of every frame's mask, grown by ``crop_margin`` — the model
   works on that crop at ``model_resolution`` (aspect kept), never on the whole plate.
3. Per frame: plate crop -> model space (colour.py), depth crop -> inverse-depth control image, the
   mask (binarised for the model) -> the ControlNet inpaint pipeline. With ``consistency`` the frame
   starts from the previous frame's result inside the mask (at ``consistency_strength``) with the
   shot's shared noise; otherwise from the plate at ``strength`` with its own seed.
4. The result comes back to scene-linear through the exact inverse; the element is
   ``rgba = (m * R, m)`` with ``m`` the feathered mask: ``over(element, plate) = m R + (1 - m) P`` —
   the inpainted result inside the mask, and where ``m = 0`` the element is exactly 0, so the comp is
   the plate to the bit. The model saw the plate, so the element carries its own occlusion: no
   holdout; its Z is the anchor's depth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gvfx.engines.base import EffectInfo, Param
from gvfx.engines.diffusion.colour import from_model, to_model
from gvfx.engines.diffusion.common import (COMMON_PARAMS, FrameResult, Run, crop_box, depth_control, ellipse_mask,
                                           model_size, rect_mask, resize, screen_ellipse, to_pil)
from gvfx.errors import InputError

EFFECT = EffectInfo("insert", "the model inpaints a masked region of the plate (depth + reference guided)",
                    COMMON_PARAMS + (
                        Param("strength", float, 1.0, "how much of the masked region is repainted (first frame)",
                              0.05, 1.0),
                        Param("mask", str, "ellipse", "mask shape at the placement, a user matte sequence, or "
                              "proxy: the 3D proxy's render (silhouette, colour, depth) from the reference",
                              choices=("ellipse", "rect", "matte", "proxy")),
                        Param("proxy", str, "auto", "with mask: proxy, the sim insert's 3D shape (auto, lathe, "
                              "inflate, card, mesh)", choices=("auto", "lathe", "inflate", "card", "mesh")),
                        Param("proxy_strength", float, 0.55, "with mask: proxy, how much of the proxy's render "
                              "the model repaints (low: the proxy's look; high: the model's)", 0.05, 1.0),
                        Param("matte", str, "", "user matte sequence (alpha or first channel), e.g. "
                              "mattes/m.####.exr; with mask: matte"),
                        Param("mask_feather", float, 0.15, "soft edge of the mask (fraction of its radius)", 0.0, 1.0),
                        Param("crop_margin", float, 0.5, "context around the mask the model sees (fraction)", 0.0, 4.0),
                    ))


def mask_at(r: Run, frame: int) -> np.ndarray:
    """(H, W) float32 mask of ``frame`` on the context's canvas (0 outside, exactly)."""
    p = r.params
    shape = (r.ctx.height, r.ctx.width)
    if p["mask"] == "matte":
        return _user_matte(str(p["matte"]), frame, shape)
    if p["mask"] == "proxy":
        from gvfx.engines.diffusion.proxy_condition import proxy_view

        return proxy_view(r, frame).alpha
    centre, radii, _z = screen_ellipse(r.spec, r.ctx, r.anchor, frame)
    make = ellipse_mask if p["mask"] == "ellipse" else rect_mask
    return make(shape, centre, radii, float(p["mask_feather"]))


def _user_matte(pattern: str, frame: int, shape: tuple[int, int]) -> np.ndarray:
    from gvfx.exr import read_exr
    from gvfx.sequence import frame_path

    path = frame_path(pattern, frame)
    if not Path(path).is_file():
        raise InputError("insert matte frame not found", path=path, frame=frame,
                         hint="params.matte is a frame pattern (####) covering every frame of the element")
    img = read_exr(path)
    names = list(img.channels)
    chan = "A" if "A" in names else names[0]
    m = np.clip(np.nan_to_num(img.channels[chan].astype(np.float32)), 0.0, 1.0)
    if m.shape != shape:  # the render canvas may have overscan: pad evenly
        dy, dx = shape[0] - m.shape[0], shape[1] - m.shape[1]
        if dy < 0 or dx < 0 or dy % 2 or dx % 2:
            raise InputError(f"insert matte is {m.shape[1]}x{m.shape[0]}, the plate {shape[1]}x{shape[0]}",
                             path=path, frame=frame, hint="give a matte at the plate's resolution")
        m = np.pad(m, ((dy // 2, dy // 2), (dx // 2, dx // 2)))
    return m


def shot_box(r: Run) -> tuple[int, int, int, int] | None:
    """The union of every frame's mask bounds, grown by ``crop_margin``."""
    boxes = [b for b in (crop_box(mask_at(r, f), float(r.params["crop_margin"])) for f in r.frames) if b]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def run(r: Run) -> None:
    """Inpaint every frame of ``r`` into its cache (cached frames are kept and feed the next)."""
    p = r.params
    if r.ctx.image is None:
        raise InputError(f"elements[{r.spec.name}]: insert needs the plate's pixels", hint="give the job a plate")
    if p["mask"] == "proxy":
        from gvfx.engines.diffusion.proxy_condition import prepare_proxy

        prepare_proxy(r)
    box = shot_box(r)
    if box is None:  # the mask never touches the frame
        for f in r.frames:
            r.cache.write(f, rgba=np.zeros((1, 1, 4), np.float32), box=np.array([0, 0, 1, 1]),
                          z=np.full((1, 1), np.inf, np.float32), model_rgb=np.zeros((1, 1, 3), np.float32),
                          no_holdout=np.zeros(1))
        return
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    mw, mh = model_size(bw, bh, r.long_side, r.stack.manifest.resolution_multiple)
    if p["mask"] == "proxy":
        from gvfx.engines.diffusion.proxy_condition import run_on_proxy

        run_on_proxy(r, box, (mw, mh))
        return
    prev: np.ndarray | None = None
    for i, f in enumerate(r.frames):
        if r.cache.has(f):
            prev = r.cache.read(f)["model_rgb"]
            continue
        m = mask_at(r, f)[y0:y1, x0:x1]
        plate_m = resize(to_model(r.ctx.image(f)[y0:y1, x0:x1, :3], r.ctx.colorspace, what=f"plate frame {f}"), mw, mh)
        control = resize(depth_control(r.ctx.depth(f)[y0:y1, x0:x1]), mw, mh)
        mask_m = resize((m > 0).astype(np.float32), mw, mh)
        kw = r.base_kwargs(i)
        if r.use_previous(i) and prev is not None:
            init = mask_m[..., None] * prev + (1.0 - mask_m[..., None]) * plate_m
            strength = float(p["consistency_strength"])
        else:
            init, strength = plate_m, float(p["strength"])
        kw.update(image=to_pil(init), mask_image=to_pil(mask_m > 0), control_image=to_pil(control), strength=strength)
        out = r.call("insert", kw, mw, mh, i)
        lin = from_model(resize(out, bw, bh), r.ctx.colorspace)
        rgba = np.where(m[..., None] > 0, np.concatenate([lin * m[..., None], m[..., None]], -1), 0.0)
        _c, _r, z = screen_ellipse(r.spec, r.ctx, r.anchor, f)
        res = FrameResult(rgba.astype(np.float32), box, np.full((1, 1), z, np.float32), out)
        r.cache.write(f, **res.arrays(), no_holdout=np.zeros(1))
        prev = out
