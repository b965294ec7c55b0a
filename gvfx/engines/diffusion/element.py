"""``element``: a prompt (and an optional reference image) becomes an RGBA element placed in the plate.

Read top to bottom:

1. A square model canvas at ``model_resolution``; the element fills ``FILL`` of it. The depth control
   image is a proxy ellipsoid (inverse depth: bright bulge) in front of a far, black backdrop.
2. Frame by frame, the model paints the element on a neutral key background (the prompt gets
   ``KEY_PROMPT``; the reference steers it through the IP-Adapter). With ``consistency`` every frame
   shares the seed's noise and starts from the previous frame's picture (img2img at
   ``consistency_strength``); without it each frame is generated from its own seed.
3. A premultiplied matte is pulled against the key (matte.py), the straight colour converted to
   scene-linear through the exact inverse (colour.py) and premultiplied.
4. The canvas is placed where the element's anchor projects (the sim engine's placement), scaled so
   the element is ``size_m`` across at its depth; its Z is the anchor's depth; the holdout comes from
   the plate depth at render time.
"""

from __future__ import annotations

import numpy as np

from gvfx.engines.base import EffectInfo, Param
from gvfx.engines.diffusion.colour import from_model
from gvfx.engines.diffusion.common import (COMMON_PARAMS, KEY_PROMPT, FrameResult, Run, model_size, resize,
                                           screen_ellipse, to_pil)
from gvfx.engines.diffusion.matte import garbage_matte, key_matte

EFFECT = EffectInfo("element", "a generated element (prompt + optional reference) on a key, matted and placed",
                    COMMON_PARAMS + (
                        Param("matte_low", float, 0.04, "key distance below which a pixel is background", 0.0, 1.0),
                        Param("matte_high", float, 0.16, "key distance above which a pixel is solid", 0.0, 1.0),
                        Param("tile_refine", bool, False, "image stacks: refine the element again at its size in "
                              "the plate, in overlapping model-sized tiles (same seed, feathered blend): sharper "
                              "than the model's output resized up; costs one light pass per tile"),
                        Param("tile_strength", float, 0.3, "img2img strength of each refinement tile (lower: "
                              "closer to the upscaled picture)", 0.05, 1.0),
                    ))

#: fraction of the model canvas the element's size_m spans
FILL = 0.7


def proxy_control(width: int, height: int) -> np.ndarray:
    """(H, W, 3) depth control of the proxy: a sphere spanning ``FILL`` of the canvas' short side
    (round on a non-square canvas too), inverse depth 0.5 at its rim to 1 at its centre, 0 (far) around it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    radius = FILL * min(width, height) / 2
    r2 = ((x - width / 2) / radius) ** 2 + ((y - height / 2) / radius) ** 2
    d = np.where(r2 < 1.0, 0.5 + 0.5 * np.sqrt(np.maximum(1.0 - r2, 0.0)), 0.0).astype(np.float32)
    return np.repeat(d[..., None], 3, axis=-1)


def run(r: Run) -> None:
    """Generate every frame of ``r`` into its cache (frames already cached are kept and feed the next)."""
    p = r.params
    mw, mh = model_size(1, 1, r.long_side, r.stack.manifest.resolution_multiple)
    control = to_pil(proxy_control(mw, mh))
    garbage = garbage_matte((mh, mw), (mw / 2, mh / 2), (FILL * mw / 2, FILL * mh / 2))
    prev: np.ndarray | None = None
    for i, f in enumerate(r.frames):
        if r.cache.has(f):
            prev = r.cache.read(f)["model_rgb"]
            continue
        kw = r.base_kwargs(i, KEY_PROMPT)
        if r.use_previous(i) and prev is not None:
            kw.update(image=to_pil(prev), control_image=control, strength=float(p["consistency_strength"]))
            out = r.call("refine", kw, mw, mh, i)
        else:
            kw.update(image=control)
            out = r.call("element", kw, mw, mh, i)
        (cx, cy), (rx, ry), z = screen_ellipse(r.spec, r.ctx, r.anchor, f)
        cw, ch = max(2.0, 2 * rx / FILL), max(2.0, 2 * ry / FILL)
        box = (int(round(cx - cw / 2)), int(round(cy - ch / 2)), int(round(cx + cw / 2)), int(round(cy + ch / 2)))
        bw, bh = box[2] - box[0], box[3] - box[1]
        if p.get("tile_refine") and max(bw, bh) > max(mw, mh):
            crop = _refined_crop(r, i, out, mw, mh, bw, bh)
        else:
            alpha, straight = key_matte(out, low=float(p["matte_low"]), high=float(p["matte_high"]), garbage=garbage)
            rgba_m = np.concatenate([from_model(straight, r.ctx.colorspace) * alpha[..., None], alpha[..., None]], -1)
            crop = resize(rgba_m, bw, bh)
        crop[..., 3] = np.clip(crop[..., 3], 0.0, 1.0)
        crop[..., :3] = np.where(crop[..., 3:] > 0, crop[..., :3], 0.0)
        r.cache.write(f, **FrameResult(crop, box, np.full((1, 1), z, np.float32), out).arrays())
        prev = out


def _refined_crop(r: Run, i: int, out: np.ndarray, mw: int, mh: int, bw: int, bh: int) -> np.ndarray:
    """The element at its plate size ``bw`` x ``bh``: the model's picture resized up, refined in tiles
    (tiles.py), then keyed and premultiplied at that size."""
    from gvfx.engines.diffusion.tiles import refine_tiled, tile_kwargs

    p = r.params
    up = resize(out, bw, bh)
    control = resize(proxy_control(mw, mh), bw, bh)

    def run_tile(rgb: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
        kw = tile_kwargs(r.base_kwargs(i, KEY_PROMPT), rgb, ctrl, float(p["tile_strength"]), to_pil)
        return r.call("refine", kw, rgb.shape[1], rgb.shape[0], i)

    sharp = refine_tiled(up, control, max(mw, mh), run_tile, r.stack.manifest.resolution_multiple)
    garbage = garbage_matte((bh, bw), (bw / 2, bh / 2), (FILL * bw / 2, FILL * bh / 2))
    alpha, straight = key_matte(sharp, low=float(p["matte_low"]), high=float(p["matte_high"]), garbage=garbage)
    return np.concatenate([from_model(straight, r.ctx.colorspace) * alpha[..., None], alpha[..., None]], -1)
