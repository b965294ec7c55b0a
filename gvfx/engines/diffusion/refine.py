"""``refine``: physical motion from a sim element, appearance from the model.

Read top to bottom:

1. The sim engine renders the element first (its effect named by ``sim_effect``, its own seed
   ``sim_seed``) into ``<cache>/sim`` — the same cache a sim element would have.
2. One crop for the shot: the union of the sim alpha's bounds over every frame.
3. Per frame: the sim's straight colour in model space over the neutral key grey, the depth control
   from the sim's Z where it has alpha and the plate's elsewhere, img2img through the depth ControlNet
   at ``strength`` (low: the sim's shapes; high: the model's). Every frame shares the seed's noise
   (``consistency``); the init is always the *current* sim frame, so the motion stays the sim's.
4. The model's colour comes back to scene-linear (exact inverse) and is premultiplied by the **sim's**
   alpha; Z and holdout are the sim's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gvfx.engines.base import EffectInfo, ElementSpec, Param
from gvfx.engines.diffusion.colour import from_model, to_model
from gvfx.engines.diffusion.common import (COMMON_PARAMS, FrameResult, Run, crop_box, depth_control, model_size,
                                           resize, to_pil)
from gvfx.engines.diffusion.matte import KEY_GREY

EFFECT = EffectInfo("refine", "a sim element re-rendered by the model (img2img + depth control), sim alpha kept",
                    COMMON_PARAMS + (
                        Param("strength", float, 0.45, "img2img strength over the sim render", 0.05, 1.0),
                        Param("sim_effect", str, "smoke", "the sim engine's effect that makes the motion"),
                        Param("sim_seed", int, 0, "seed of the sim", 0, 2**31 - 1),
                    ))


def sim_spec(spec: ElementSpec, params: dict) -> ElementSpec:
    """The sim element under the refine: same placement and size, the sim's effect and seed, and the
    element's params that the sim effect knows."""
    from gvfx.engines.sim import SimEngine

    info = SimEngine().effects()[params["sim_effect"]]
    known = {p.name for p in info.params} | {"light_dir"}
    return dataclasses.replace(spec, engine="sim", effect=params["sim_effect"], seed=int(params["sim_seed"]),
                               params={k: v for k, v in spec.params.items() if k in known})


def run(r: Run) -> None:
    """Simulate, then refine every frame of ``r`` into its cache."""
    from gvfx.engines.sim import SimEngine

    sim = SimEngine()
    sspec = sim_spec(r.spec, r.params)
    sim_dir = r.cache.root / "sim"
    sim.prepare(sspec, r.ctx, sim_dir,
                progress=lambda d, t, m="": r.progress(0, 1, f"sim {sspec.effect} {d}/{t}") if r.progress else None)
    boxes = [b for b in (crop_box(sim.render_frame(sspec, r.ctx, f, sim_dir).rgba[..., 3], 0.1) for f in r.frames) if b]
    if not boxes:
        box = (0, 0, 1, 1)
    else:
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    mw, mh = model_size(bw, bh, r.long_side, r.stack.manifest.resolution_multiple)
    for i, f in enumerate(r.frames):
        if r.cache.has(f):
            continue
        ef = sim.render_frame(sspec, r.ctx, f, sim_dir)
        rgba = ef.rgba[y0:y1, x0:x1]
        a = np.clip(rgba[..., 3], 0.0, 1.0)
        if not boxes or float(a.max(initial=0.0)) <= 0.0:
            res = FrameResult(np.zeros((bh, bw, 4), np.float32), box, np.full((bh, bw), np.inf, np.float32),
                              np.zeros((mh, mw, 3), np.float32), np.zeros((bh, bw), np.float32))
            r.cache.write(f, **res.arrays())
            continue
        straight = np.where(a[..., None] > 1e-6, rgba[..., :3] / np.maximum(a[..., None], 1e-6), 0.0)
        init = a[..., None] * to_model(straight, r.ctx.colorspace, what=f"sim frame {f}") + (1.0 - a[..., None]) * KEY_GREY
        z = np.where(a > 0, ef.z[y0:y1, x0:x1], r.ctx.depth(f)[y0:y1, x0:x1])
        kw = r.base_kwargs(i)
        kw.update(image=to_pil(resize(init, mw, mh)), control_image=to_pil(resize(depth_control(z), mw, mh)),
                  strength=float(r.params["strength"]))
        out = r.call("refine", kw, mw, mh, i)
        lin = from_model(resize(out, bw, bh), r.ctx.colorspace)
        el = np.where(a[..., None] > 0, np.concatenate([lin * a[..., None], a[..., None]], -1), 0.0).astype(np.float32)
        r.cache.write(f, **FrameResult(el, box, ef.z[y0:y1, x0:x1], out, ef.holdout[y0:y1, x0:x1]).arrays())
