"""``insert`` with ``mask: proxy``: the sim engine's 3D proxy of the reference conditions the model.

The sim insert builds the proxy (lathe, inflate, card or mesh; cached by the reference's content hash)
and renders it through the plate camera every frame into ``<cache>/proxy``. Per frame the model gets
the proxy's silhouette (held out where the plate stands in front) as the inpainting mask, the proxy's
shaded render over the plate as the start image (repainted at ``proxy_strength``), and the proxy's depth
over the plate's as the depth control. The element is the model's colour premultiplied by that
silhouette, with the proxy's Z: the same object from every angle the camera takes, painted by the model.
The stacks' ControlNet is a depth one, so the proxy's normals reach the model through the render's
shading, not as an image of their own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from gvfx.engines.base import ElementSpec
from gvfx.engines.diffusion.colour import from_model, to_model
from gvfx.engines.diffusion.common import FrameResult, Run, depth_control, resize, to_pil

__all__ = ["ProxyView", "proxy_spec", "prepare_proxy", "proxy_view", "run_on_proxy"]


@dataclasses.dataclass(frozen=True)
class ProxyView:
    """One frame of the proxy on the plate canvas: ``alpha`` (H, W) held out by the plate, ``rgb``
    (H, W, 3) straight scene-linear colour, ``z`` (H, W) metres (inf off the proxy)."""

    alpha: np.ndarray
    rgb: np.ndarray
    z: np.ndarray


def proxy_spec(spec: ElementSpec) -> ElementSpec:
    """The sim insert under the element: same reference, placement, size and start; the element's
    params the sim insert knows (``proxy``, ``facing_deg``, ``velocity_mps``…)."""
    from gvfx.engines.sim import SimEngine

    known = {p.name for p in SimEngine().effects()["insert"].params}
    return dataclasses.replace(spec, engine="sim", effect="insert",
                               params={k: v for k, v in spec.params.items() if k in known})


def _proxy_dir(r: Run) -> Path:
    return Path(r.cache.root) / "proxy"


def prepare_proxy(r: Run) -> None:
    """Build and simulate the proxy once into ``<cache>/proxy`` (idempotent, like any sim cache)."""
    from gvfx.engines.sim import SimEngine

    sspec = proxy_spec(r.spec)
    progress = (lambda d, t, m="": r.progress(0, 1, f"proxy {d}/{t}")) if r.progress else None
    SimEngine().prepare(sspec, r.ctx, _proxy_dir(r), progress=progress)


def proxy_view(r: Run, frame: int) -> ProxyView:
    """The proxy rendered at ``frame`` (``prepare_proxy`` first)."""
    from gvfx.engines.sim import SimEngine

    ef = SimEngine().render_frame(proxy_spec(r.spec), r.ctx, frame, _proxy_dir(r))
    a = np.clip(ef.rgba[..., 3], 0.0, 1.0) * (1.0 - np.clip(ef.holdout, 0.0, 1.0))
    straight = np.where(ef.rgba[..., 3:4] > 1e-6, ef.rgba[..., :3] / np.maximum(ef.rgba[..., 3:4], 1e-6), 0.0)
    z = np.where(a > 0, ef.z, np.inf).astype(np.float32)
    return ProxyView(a.astype(np.float32), straight.astype(np.float32), z)


def run_on_proxy(r: Run, box: tuple[int, int, int, int], model_wh: tuple[int, int]) -> None:
    """Inpaint every frame of ``r`` inside ``box`` from the proxy's render into the cache."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    mw, mh = model_wh
    for i, f in enumerate(r.frames):
        if r.cache.has(f):
            continue
        v = proxy_view(r, f)
        a = v.alpha[y0:y1, x0:x1]
        plate_lin = r.ctx.image(f)[y0:y1, x0:x1, :3]
        plate_m = to_model(plate_lin, r.ctx.colorspace, what=f"plate frame {f}")
        render_m = to_model(v.rgb[y0:y1, x0:x1], r.ctx.colorspace, what=f"proxy frame {f}")
        init = a[..., None] * render_m + (1.0 - a[..., None]) * plate_m
        zc = np.where(a > 0, v.z[y0:y1, x0:x1], r.ctx.depth(f)[y0:y1, x0:x1])
        mask_m = resize((a > 0.01).astype(np.float32), mw, mh)
        kw = r.base_kwargs(i)
        kw.update(image=to_pil(resize(init, mw, mh)), mask_image=to_pil(mask_m > 0),
                  control_image=to_pil(resize(depth_control(zc), mw, mh)),
                  strength=float(r.params["proxy_strength"]))
        out = r.call("insert", kw, mw, mh, i)
        lin = from_model(resize(out, bw, bh), r.ctx.colorspace)
        rgba = np.where(a[..., None] > 0, np.concatenate([lin * a[..., None], a[..., None]], -1), 0.0)
        res = FrameResult(rgba.astype(np.float32), box, v.z[y0:y1, x0:x1], out)
        r.cache.write(f, **res.arrays(), no_holdout=np.zeros(1))
