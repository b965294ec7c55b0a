"""The engine's modes on a *video* stack: gather the shot's frames, call ``video.run_video`` once
(windows inside), then matte/difference exactly as the image modes do, frame by frame into the cache.

* element: key-grey frames with the proxy ellipsoid as depth; each result keyed (matte.py) and placed.
* insert: the shot crop of the plate, its depth and the masks; element = ``(m R, m)`` (insert.py).
* refine: the sim frames over key grey with their depth; colour premultiplied by the sim alpha.
"""

from __future__ import annotations

import numpy as np

from gvfx.engines.diffusion.colour import from_model, to_model
from gvfx.engines.diffusion.common import FrameResult, Run, model_canvas, resize, screen_ellipse, video_window
from gvfx.engines.diffusion.matte import KEY_GREY, garbage_matte, key_matte

__all__ = ["run_video_mode"]


def _run(r: Run, mode: str, frames: np.ndarray, depth: np.ndarray, mask: np.ndarray | None,
         strength: float) -> np.ndarray:
    """``run_video`` at the model's working size (``model_resolution`` long side; the crop is resized there
    and the result back to the crop's size), with the element's window/overlap."""
    from gvfx.engines.diffusion.video import run_video
    from gvfx.engines.diffusion.video_windows import resize_frames

    p = r.params
    window, overlap = video_window(p, r.stack.manifest)
    h, w = frames.shape[1:3]
    mw, mh = model_canvas(r.stack.manifest, r.long_side, (w, h))
    if (mh, mw) != (h, w):
        frames = resize_frames(frames, (mh, mw))
        mask = None if mask is None else resize_frames(mask, (mh, mw))
        ys = np.minimum(((np.arange(mh) + 0.5) * h / mh).astype(np.intp), h - 1)  # nearest: Z may be inf
        xs = np.minimum(((np.arange(mw) + 0.5) * w / mw).astype(np.intp), w - 1)
        depth = np.ascontiguousarray(depth[:, ys][:, :, xs])
    out = run_video(r.stack, mode=mode, frames_rgb=frames, depth=depth, mask=mask, reference_rgb=r.reference,
                    prompt=p["prompt"], negative_prompt=p["negative_prompt"], seed=int(r.spec.seed),
                    steps=int(p["steps"]), strength=strength, guidance=float(p["guidance"]),
                    window=window, overlap=overlap, control_scale=float(p["control_scale"]),
                    ip_scale=float(p["ip_scale"]),
                    callback=(lambda d, t: r.progress(d, t, f"{mode} step {d}/{t}")) if r.progress else None,
                    cancel=r.cancel)
    return out if (mh, mw) == (h, w) else np.clip(resize_frames(out, (h, w)), 0.0, 1.0)


def run_video_mode(r: Run) -> None:
    """Generate every frame of ``r`` with its video stack into the cache."""
    {"element": _element, "insert": _insert, "refine": _refine}[r.spec.effect](r)


def _element(r: Run) -> None:
    from gvfx.engines.diffusion.element import FILL, proxy_control

    mw, mh = model_canvas(r.stack.manifest, r.long_side)  # Wan: its trained 832x480, never square
    d = proxy_control(mw, mh)[..., 0]
    z = np.where(d > 0, 1.0 / np.maximum(d, 1e-6), np.inf).astype(np.float32)
    n = len(r.frames)
    out = _run(r, "element", np.full((n, mh, mw, 3), KEY_GREY, np.float32), np.repeat(z[None], n, 0), None, 1.0)
    short = min(mw, mh)
    garbage = garbage_matte((mh, mw), (mw / 2, mh / 2), (FILL * short / 2, FILL * short / 2))
    for i, f in enumerate(r.frames):
        alpha, straight = key_matte(out[i], low=float(r.params["matte_low"]), high=float(r.params["matte_high"]),
                                    garbage=garbage)
        rgba_m = np.concatenate([from_model(straight, r.ctx.colorspace) * alpha[..., None], alpha[..., None]], -1)
        (cx, cy), (rx, ry), zc = screen_ellipse(r.spec, r.ctx, r.anchor, f)
        # the element spans FILL of the canvas' short side: the canvas is that many element sizes across
        cw, ch = max(2.0, 2 * rx / FILL * mw / short), max(2.0, 2 * ry / FILL * mh / short)
        box = (int(round(cx - cw / 2)), int(round(cy - ch / 2)), int(round(cx + cw / 2)), int(round(cy + ch / 2)))
        crop = resize(rgba_m, box[2] - box[0], box[3] - box[1])
        crop[..., 3] = np.clip(crop[..., 3], 0.0, 1.0)
        crop[..., :3] = np.where(crop[..., 3:] > 0, crop[..., :3], 0.0)
        r.cache.write(f, **FrameResult(crop, box, np.full((1, 1), zc, np.float32), out[i]).arrays())


def _insert(r: Run) -> None:
    from gvfx.engines.diffusion.insert import mask_at, shot_box

    box = shot_box(r)
    if box is None:
        box = (0, 0, 1, 1)
    x0, y0, x1, y1 = box
    masks = np.stack([mask_at(r, f)[y0:y1, x0:x1] for f in r.frames])
    plate = np.stack([to_model(r.ctx.image(f)[y0:y1, x0:x1, :3], r.ctx.colorspace) for f in r.frames])
    depth = np.stack([r.ctx.depth(f)[y0:y1, x0:x1] for f in r.frames]).astype(np.float32)
    out = _run(r, "insert", plate, depth, (masks > 0).astype(np.float32), float(r.params["strength"]))
    for i, f in enumerate(r.frames):
        m = masks[i]
        lin = from_model(out[i], r.ctx.colorspace)
        rgba = np.where(m[..., None] > 0, np.concatenate([lin * m[..., None], m[..., None]], -1), 0.0)
        _c, _r, z = screen_ellipse(r.spec, r.ctx, r.anchor, f)
        r.cache.write(f, **FrameResult(rgba.astype(np.float32), box, np.full((1, 1), z, np.float32), out[i]).arrays(),
                      no_holdout=np.zeros(1))


def _refine(r: Run) -> None:
    from gvfx.engines.diffusion.common import crop_box
    from gvfx.engines.diffusion.refine import sim_spec
    from gvfx.engines.sim import SimEngine

    sim = SimEngine()
    sspec = sim_spec(r.spec, r.params)
    sim_dir = r.cache.root / "sim"
    sim.prepare(sspec, r.ctx, sim_dir)
    efs = [sim.render_frame(sspec, r.ctx, f, sim_dir) for f in r.frames]
    boxes = [b for b in (crop_box(ef.rgba[..., 3], 0.1) for ef in efs) if b] or [(0, 0, 1, 1)]
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    x0, y0, x1, y1 = box
    alphas = np.stack([np.clip(ef.rgba[y0:y1, x0:x1, 3], 0.0, 1.0) for ef in efs])
    inits, depths = [], []
    for ef, a, f in zip(efs, alphas, r.frames):
        rgb = ef.rgba[y0:y1, x0:x1, :3]
        straight = np.where(a[..., None] > 1e-6, rgb / np.maximum(a[..., None], 1e-6), 0.0)
        inits.append(a[..., None] * to_model(straight, r.ctx.colorspace) + (1.0 - a[..., None]) * KEY_GREY)
        depths.append(np.where(a > 0, ef.z[y0:y1, x0:x1], r.ctx.depth(f)[y0:y1, x0:x1]))
    out = _run(r, "refine", np.stack(inits).astype(np.float32), np.stack(depths).astype(np.float32), None,
               float(r.params["strength"]))
    for i, (ef, a, f) in enumerate(zip(efs, alphas, r.frames)):
        lin = from_model(out[i], r.ctx.colorspace)
        el = np.where(a[..., None] > 0, np.concatenate([lin * a[..., None], a[..., None]], -1), 0.0).astype(np.float32)
        r.cache.write(f, **FrameResult(el, box, ef.z[y0:y1, x0:x1], out[i], ef.holdout[y0:y1, x0:x1]).arrays())
