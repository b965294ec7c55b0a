"""Pieces every diffusion mode shares: parameters, image sizes and crops, the depth control image,
masks, the per-element frame cache, and one pipeline call with progress, cancel and OOM handling.

Arrays: images (H, W, C) float32; "model space" is display-encoded 0..1 (see colour.py); depth is
metric camera Z (H, W), ``inf`` = sky; boxes are (x0, y0, x1, y1) pixel bounds, x1/y1 exclusive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from gvfx.engines.base import ElementFrame, ElementSpec, Param, PlateContext
from gvfx.errors import CancelledError

__all__ = ["COMMON_PARAMS", "KEY_PROMPT", "video_window", "FrameResult", "model_size", "model_canvas", "resize", "depth_control", "ellipse_mask",
           "rect_mask", "crop_box", "paste", "screen_ellipse", "call_pipeline"]

log = logging.getLogger(__name__)

#: appended to the element prompt so the model paints the element alone on the key background
KEY_PROMPT = "isolated on a plain neutral grey background, studio backdrop"

COMMON_PARAMS: tuple[Param, ...] = (
    Param("prompt", str, "", "what to generate (the text prompt)"),
    Param("negative_prompt", str, "blurry, low quality, text, watermark, frame, border",
          "what the model should avoid"),
    Param("stack", str, "sd15_depth_ip", "model stack (manifest name; `gvfx models list`)"),
    Param("models", str, "", "model store folder (default $GVFX_MODELS, else ~/.cache/gvfx/models)"),
    Param("steps", int, 25, "denoising steps", 1, 200),
    Param("guidance", float, 7.0, "classifier-free guidance scale", 0.0, 30.0),
    Param("control_scale", float, 0.8, "depth ControlNet strength", 0.0, 2.0),
    Param("ip_scale", float, 0.6, "IP-Adapter strength of the reference image (when a reference is given)",
          0.0, 2.0),
    Param("model_resolution", int, 0, "long side the model works at in pixels (multiple of 8; 0: the stack's "
          "default); results are resized to the plate", 0, 4096),
    Param("consistency", bool, True, "shared noise across frames and the previous frame's result as the init"),
    Param("consistency_strength", float, 0.55, "img2img strength from the previous frame (lower: steadier)",
          0.05, 1.0),
    Param("device", str, "auto", "where the model runs", choices=("auto", "cuda", "mps", "cpu")),
    Param("dtype", str, "auto", "weights precision (auto: bf16 on a CUDA card that has it, else fp16 on a GPU; "
          "fp32 on the CPU)",
          choices=("auto", "fp16", "bf16", "fp32")),
    Param("memory", str, "auto", "memory plan (auto: from free GPU memory and the stack's computed needs; "
          "medium: VAE tiling; low: + model CPU offload; minimum: sequential offload)",
          choices=("auto", "high", "medium", "low", "minimum")),
    Param("variant", str, "auto", "weights files: auto (the fp16 variant files where present and the dtype is "
          "half, else the full files), fp16 (only *.fp16.safetensors), full", choices=("auto", "fp16", "full")),
    Param("allow_pickle", bool, False, "allow pickled .bin/.ckpt weights (they can run code: only trusted files)"),
    Param("window", int, 0, "video stacks: frames the model sees at once (0: the stack's gvfx.window, else 16)",
          0, 1024),
    Param("overlap", int, -1, "video stacks: frames consecutive windows share, cross-faded (-1: the stack's "
          "gvfx.overlap, else a quarter of the window)", -1, 1023),
)

#: window/overlap of a video stack when neither the element nor the manifest gives them
DEFAULT_WINDOW = 16


def video_window(params: dict, manifest: Any) -> tuple[int, int]:
    """``(window, overlap)`` of a video stack: the element's params, else the manifest's ``gvfx.window`` /
    ``gvfx.overlap`` (when less than the window), else 16 frames / a quarter of the window."""
    window = int(params.get("window") or 0) or manifest.window or DEFAULT_WINDOW
    overlap = int(params.get("overlap", -1))
    if overlap < 0:
        overlap = manifest.overlap if manifest.overlap is not None and manifest.overlap < window else window // 4
    return window, overlap


@dataclass
class FrameResult:
    """What a mode writes into the cache for one frame: a premultiplied ACEScg crop and its box, the
    element's Z (crop or a constant), an optional holdout crop, and the model-space result the next
    frame starts from."""

    rgba: np.ndarray  # (h, w, 4) premultiplied, plate colour space
    box: tuple[int, int, int, int]
    z: np.ndarray  # (h, w) or (1, 1)
    model_rgb: np.ndarray  # (mh, mw, 3) model space
    holdout: np.ndarray | None = None  # (h, w); None: from the plate depth at render time

    def arrays(self) -> dict[str, np.ndarray]:
        d = {"rgba": self.rgba.astype(np.float32), "box": np.asarray(self.box, np.int64),
             "z": self.z.astype(np.float32), "model_rgb": self.model_rgb.astype(np.float32)}
        if self.holdout is not None:
            d["holdout"] = self.holdout.astype(np.float32)
        return d


def model_size(width: int, height: int, long_side: int, multiple: int = 8) -> tuple[int, int]:
    """(w, h) at ``long_side`` with the aspect of ``width`` x ``height``, each a multiple of ``multiple``."""
    s = long_side / max(width, height)
    w = max(multiple, int(round(width * s / multiple)) * multiple)
    h = max(multiple, int(round(height * s / multiple)) * multiple)
    return w, h


def model_canvas(manifest: Any, long_side: int, aspect: tuple[float, float] = (1.0, 1.0)) -> tuple[int, int]:
    """(w, h) the model works at for content of ``aspect`` (width, height): a stack with ``trained_sizes``
    runs at the trained size whose aspect is closest (Wan 1.3B: 832x480 or 480x832, never square), scaled
    to ``long_side`` when that differs from the size's long side; other stacks at ``aspect`` itself."""
    multiple = int(getattr(manifest, "resolution_multiple", 8))
    sizes = tuple(getattr(manifest, "trained_sizes", ()) or ())
    if not sizes:
        return model_size(int(round(aspect[0] * 1000)), int(round(aspect[1] * 1000)), long_side, multiple)
    target = np.log(max(aspect[0], 1e-6) / max(aspect[1], 1e-6))
    tw, th = min(sizes, key=lambda wh: (abs(np.log(wh[0] / wh[1]) - target), -wh[0] * wh[1]))
    if long_side == max(tw, th):
        return int(tw), int(th)
    return model_size(tw, th, long_side, multiple)


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W[, C]) float32 resized to (height, width[, C]): bilinear, antialiased when shrinking."""
    import torch
    import torch.nn.functional as F

    a = np.asarray(img, dtype=np.float32)
    if a.shape[0] == height and a.shape[1] == width:
        return a.copy()
    squeeze = a.ndim == 2
    t = torch.from_numpy(np.ascontiguousarray(a[..., None] if squeeze else a)).permute(2, 0, 1)[None]
    shrink = height < a.shape[0] or width < a.shape[1]
    out = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)
    out = out[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out[..., 0] if squeeze else out)


def depth_control(z: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) float32 control image of metric Z: inverse depth normalised per frame to 0..1 (near =
    bright), sky/``inf`` = 0, the way depth ControlNets were trained (MiDaS-style disparity)."""
    z = np.asarray(z, dtype=np.float32)
    finite = np.isfinite(z) & (z > 0)
    if valid is not None:
        finite &= valid
    inv = np.zeros_like(z)
    inv[finite] = 1.0 / z[finite]
    if finite.any():
        lo, hi = float(inv[finite].min()), float(inv[finite].max())
        inv = np.where(finite, (inv - lo) / max(hi - lo, 1e-6) * 0.9 + 0.1, 0.0) if hi > lo else np.where(finite, 0.5, 0.0)
    return np.repeat(inv[..., None].astype(np.float32), 3, axis=-1)


def ellipse_mask(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float],
                 feather: float = 0.1) -> np.ndarray:
    """(H, W) float32 ellipse, 1 inside, a linear ramp of ``feather`` (fraction of the radius) inside
    its edge, exactly 0 outside."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    r = np.sqrt(((x - centre[0]) / max(radii[0], 1e-3)) ** 2 + ((y - centre[1]) / max(radii[1], 1e-3)) ** 2)
    return np.clip((1.0 - r) / max(feather, 1e-3), 0.0, 1.0).astype(np.float32)


def rect_mask(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float],
              feather: float = 0.1) -> np.ndarray:
    """(H, W) float32 rectangle (half-sizes ``radii``) with a feathered inner edge, 0 outside."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dx = 1.0 - np.abs(x - centre[0]) / max(radii[0], 1e-3)
    dy = 1.0 - np.abs(y - centre[1]) / max(radii[1], 1e-3)
    return np.clip(np.minimum(dx, dy) / max(feather, 1e-3), 0.0, 1.0).astype(np.float32)


def crop_box(mask: np.ndarray, margin: float = 0.25, min_px: int = 16) -> tuple[int, int, int, int] | None:
    """Bounds of ``mask > 0`` grown by ``margin`` of its size (at least ``min_px``), clipped to the
    image; ``None`` for an empty mask."""
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    mx = max(min_px, int(round((x1 - x0) * margin)))
    my = max(min_px, int(round((y1 - y0) * margin)))
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def paste(canvas: np.ndarray, crop: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``crop`` written into ``canvas`` at ``box`` (in place, clipped to the canvas); returns canvas."""
    x0, y0, x1, y1 = box
    h, w = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = crop[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return canvas


def screen_ellipse(spec: ElementSpec, ctx: PlateContext, anchor: Any, frame: int) -> tuple[tuple[float, float],
                                                                                              tuple[float, float], float]:
    """(centre px, radii px, camera Z) of the element at ``frame``: the anchor's point raised by half
    the size along the world up (the element stands on its anchor), projected with the plate camera;
    radii are ``size_m / 2`` at that depth."""
    centre_w = np.asarray(anchor.point, np.float64) + np.asarray(anchor.up, np.float64) * spec.size_m / 2.0
    uv, z = ctx.camera.project_world(centre_w[None], frame)
    cam = ctx.camera.camera_at(frame)
    zc = float(max(z[0], 1e-3))
    rx = 0.5 * spec.size_m * cam.fx / zc
    ry = 0.5 * spec.size_m * cam.fy / zc
    return (float(uv[0, 0]), float(uv[0, 1])), (rx, ry), zc


def call_pipeline(pipe: Any, kwargs: dict, *, stack: str, runtime: Any, width: int, height: int,
                  on_step: Callable[[int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None, frame: int | None = None) -> np.ndarray:
    """Run one diffusers pipeline call; returns (H, W, 3) float32 0..1. Progress per step through
    ``on_step(step, total)``; ``cancel()`` is checked after every step and stops the loop through the
    pipeline's ``_interrupt`` flag (diffusers' documented way), then :class:`CancelledError` is raised."""
    import torch

    from gvfx.engines.diffusion.runtime import check_finite, guard_oom

    state = {"cancelled": False}
    where = f"frame {frame}" if frame is not None else "image"

    def _on_step_end(p: Any, step: int, timestep: Any, cb_kwargs: dict) -> dict:
        check_finite(cb_kwargs.get("latents"), stack, runtime, where, step + 1)
        total = int(getattr(p, "_num_timesteps", 0) or kwargs.get("num_inference_steps", 0))
        if on_step is not None:
            on_step(step + 1, total)
        if cancel is not None and cancel():
            state["cancelled"] = True
            p._interrupt = True
        return cb_kwargs

    runtime.tile_vae(pipe, width, height)
    with guard_oom(stack, runtime, width, height, what=where), torch.inference_mode():
        out = pipe(**kwargs, height=height, width=width, output_type="np", callback_on_step_end=_on_step_end)
    if state["cancelled"]:
        raise CancelledError("diffusion render cancelled")
    img = np.asarray(out.images[0], dtype=np.float32)
    return np.clip(img, 0.0, 1.0)


def empty_frame(ctx: PlateContext) -> ElementFrame:
    """An element frame with nothing in it (frames before the element's start)."""
    h, w = ctx.height, ctx.width
    return ElementFrame(np.zeros((h, w, 4), np.float32), np.full((h, w), np.inf, np.float32),
                        np.zeros((h, w), np.float32))


@dataclass
class Run:
    """One element being generated: the spec, the plate, the resolved params, the loaded stack, the
    frames to make, the cache, the reference (model space) and progress/cancel."""

    spec: ElementSpec
    ctx: PlateContext
    params: dict
    stack: Any  # loader.ImageStack
    frames: list[int]
    cache: Any  # gvfx.engines.sim.common.SimCache
    reference: np.ndarray | None = None  # (h, w, 3) model space
    progress: Callable[[int, int, str], None] | None = None
    cancel: Callable[[], bool] | None = None
    anchor: Any = None

    @property
    def long_side(self) -> int:
        return int(self.params["model_resolution"]) or max(self.stack.manifest.default_resolution)

    def seed_for(self, index: int) -> int:
        """Consistency on: one seed (shared noise) for every frame; off: each frame its own seed."""
        return int(self.spec.seed) if self.params["consistency"] else int(self.spec.seed) + index

    def use_previous(self, index: int) -> bool:
        return bool(self.params["consistency"]) and index > 0

    def base_kwargs(self, index: int, prompt_suffix: str = "") -> dict:
        """The arguments every mode's pipeline call shares (prompt, steps, guidance, control, reference)."""
        from PIL import Image

        p = self.params
        prompt = p["prompt"] + (", " + prompt_suffix if prompt_suffix and p["prompt"] else prompt_suffix)
        kw: dict[str, Any] = dict(prompt=prompt, negative_prompt=p["negative_prompt"] or None,
                                  num_inference_steps=int(p["steps"]), guidance_scale=float(p["guidance"]),
                                  controlnet_conditioning_scale=float(p["control_scale"]),
                                  generator=self.stack.runtime.generator(self.seed_for(index)))
        if self.stack.has_ip_adapter:
            ref = self.reference
            scale = float(p["ip_scale"]) if ref is not None else 0.0
            if ref is None:  # the adapter is loaded: give it a neutral image at zero weight
                ref = np.full((32, 32, 3), 0.5, np.float32)
            self.stack.pipeline("element").set_ip_adapter_scale(scale)
            kw["ip_adapter_image"] = Image.fromarray((np.clip(ref, 0, 1) * 255 + 0.5).astype(np.uint8))
        return kw

    def step_callback(self, index: int, what: str) -> Callable[[int, int], None]:
        n, steps = len(self.frames), int(self.params["steps"])

        def on_step(step: int, total: int) -> None:
            # img2img runs fewer steps than asked (strength): report in units of the nominal steps
            if self.progress is not None:
                done = index * steps + min(steps, round(step * steps / max(total, 1)))
                self.progress(done, n * steps, f"{what} frame {self.frames[index]} step {step}/{total}")
        return on_step

    def call(self, mode: str, kwargs: dict, width: int, height: int, index: int) -> np.ndarray:
        return call_pipeline(self.stack.pipeline(mode), kwargs, stack=self.stack.manifest.name,
                             runtime=self.stack.runtime, width=width, height=height,
                             on_step=self.step_callback(index, mode), cancel=self.cancel, frame=self.frames[index])


def to_pil(img: np.ndarray) -> Any:
    """(H, W, 3|1) or (H, W) float32 0..1 -> an 8-bit PIL image (what the pipelines' processors take)."""
    from PIL import Image

    a = np.clip(np.asarray(img, np.float32), 0.0, 1.0)
    return Image.fromarray((a * 255.0 + 0.5).astype(np.uint8))


def render_cached(ctx: PlateContext, frame: int, data: dict[str, np.ndarray]) -> ElementFrame:
    """A full-canvas element frame from a cached :class:`FrameResult` (see common docstring): the crop
    pasted at its box, Z ``inf`` where alpha is 0, the holdout from the cache or from the plate depth."""
    from gvfx.engines.sim.common import holdout_from_depth

    h, w = ctx.height, ctx.width
    box = tuple(int(v) for v in data["box"])
    rgba = paste(np.zeros((h, w, 4), np.float32), data["rgba"], box)
    zc = data["z"]
    zcrop = np.broadcast_to(zc, data["rgba"].shape[:2]) if zc.shape == (1, 1) else zc
    z = paste(np.full((h, w), np.inf, np.float32), np.ascontiguousarray(zcrop), box)
    z[rgba[..., 3] <= 0] = np.inf
    if "holdout" in data:
        hold = paste(np.zeros((h, w), np.float32), data["holdout"], box)
    elif "no_holdout" in data:
        hold = np.zeros((h, w), np.float32)
    else:
        hold = holdout_from_depth(z, ctx.depth(frame))
    return ElementFrame(rgba, z, hold)
