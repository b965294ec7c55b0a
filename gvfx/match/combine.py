"""Combining matched elements: the occlusion between them folded into their holdouts, the comp rebuilt
from their layers with plain merges (the recipe is in :mod:`gvfx.match.stage`), and their EXRs."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gvfx.comp import lit_background
from gvfx.errors import InputError
from gvfx.match import lens as _lens
from gvfx.match.frame import MatchedFrame

__all__ = ["occlude", "layer_dict", "as_stored", "rebuild_comp", "write_matched"]


def occlude(frames: Sequence[MatchedFrame]) -> None:
    """Fold the occlusion between elements into their holdouts (display window, in place).

    At each pixel, element i's visibility becomes ``(1 - holdout_i) * prod_j (1 - a_j (1 - holdout_j))``
    over the elements j nearer than i (by Z; ties: later in the list is nearer), so that the plain
    sum of held-out elements equals the depth-sorted over of them.
    """
    n = len(frames)
    if n < 2:
        return
    zs = np.stack([np.where(np.isfinite(f.display("z")), f.display("z"), np.inf) for f in frames])
    vis = np.stack([1.0 - f.display("holdout") for f in frames])
    cover = np.stack([np.clip(f.display("rgba")[..., 3], 0, 1) for f in frames]) * vis
    # near to far by Z; at equal Z a later element is nearer (as in gvfx.comp.comp_elements)
    idx = np.arange(n)[:, None, None] * np.ones_like(zs)
    order = np.lexsort((-idx, zs), axis=0)
    trans = np.ones(zs.shape[1:], np.float32)
    new_vis = np.empty_like(vis)
    for k in range(n):
        i = order[k]
        v = np.take_along_axis(vis, i[None], 0)[0]
        c = np.take_along_axis(cover, i[None], 0)[0]
        np.put_along_axis(new_vis, i[None], (v * trans)[None], 0)
        trans = trans * (1.0 - c)
    for f, v in zip(frames, new_vis):
        f.display("holdout")[...] = (1.0 - v).astype(np.float32)


def layer_dict(mf: MatchedFrame) -> dict[str, np.ndarray]:
    """The display-window layers :func:`rebuild_comp` needs."""
    out = {k: mf.display(k) for k in ("rgba", "holdout", "shadow", "lightwrap", "grain")}
    if "platelight" in mf.extra:
        out["platelight"] = _lens.crop(mf.extra["platelight"], mf.margin)
    return out


def as_stored(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Layers rounded to half float, as the element EXR stores them: a render's comp built from these
    equals the comp rebuilt from its files (what ``--resume`` does for a frame whose comp is missing)."""
    from gvfx.match.half import round_to_half  # numpy's float16 cast is 5-10x slower on small values

    return {k: round_to_half(v) for k, v in layers.items()}


def rebuild_comp(plate_rgba: np.ndarray, layers: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The comp from the plate and each element's layers (module doc): (H, W, 4) float32.

    ``layers``: per element ``rgba`` (H, W, 4), ``holdout``, ``shadow`` (H, W) and optional
    ``lightwrap``, ``grain`` (H, W, 3). The plate's NaN/Inf become 0 so they cannot spread.
    """
    plate = np.nan_to_num(np.asarray(plate_rgba, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    h, w = plate.shape[:2]
    fg = np.zeros((h, w, 4), np.float32)
    keep = np.ones((h, w), np.float32)
    light = np.zeros((h, w, 3), np.float32)
    for el in layers:
        rgba = np.asarray(el["rgba"], np.float32)
        if rgba.shape[:2] != (h, w):
            raise InputError(f"element layers are {rgba.shape[1]}x{rgba.shape[0]}, the plate {w}x{h}")
        e = rgba.copy()
        for name in ("lightwrap", "grain"):
            if el.get(name) is not None:
                e[..., :3] += np.asarray(el[name], np.float32)[..., :3]
        e *= (1.0 - np.asarray(el["holdout"], np.float32))[..., None]
        fg += e
        if el.get("shadow") is not None:
            keep *= 1.0 - np.asarray(el["shadow"], np.float32)
        if el.get("platelight") is not None:
            light += np.asarray(el["platelight"], np.float32)[..., :3]
    bg = lit_background(plate, keep, light)
    return fg + bg * (1.0 - fg[..., 3:4])


def write_matched(path: Any, mf: MatchedFrame, *, width: int, height: int, metadata: dict,
                  colorspace: str = "ACEScg", frame: int | None = None) -> Any:
    """Write a matched element: rgba, Z and the layers (holdout, shadow, lightwrap, grain, motion, and
    any engine extras) with the overscan as a data window larger than the display window."""
    from gvfx.exr import write_layers

    m = mf.margin
    # Z is inf wherever alpha is 0 *as stored* (half): a tiny alpha rounds to 0 in the file
    from gvfx.match.half import round_to_half

    z = np.where(round_to_half(mf.rgba[..., 3]) == 0, np.float32(np.inf), mf.z).astype(np.float32)
    layers = {"holdout": mf.holdout, "shadow": mf.shadow, "lightwrap": mf.lightwrap, "grain": mf.grain,
              "motion": mf.motion, **mf.extra}
    return write_layers(path, rgba=mf.rgba, z=z, layers=layers, colorspace=colorspace,
                        display_window=(0, 0, width - 1, height - 1), data_origin=(-m, -m),
                        metadata={**metadata, **({"frame": int(frame)} if frame is not None else {}),
                                  "gvfx:match:overscan_px": int(m)})
