"""The ``estimator`` depth back-end: a monocular depth model (Depth Anything) from a LOCAL folder, made
metric and steady by aligning it to the camera solve.

Loading is one function you can read: the folder must hold ``config.json``, ``preprocessor_config.json``
and safetensors weights; the hub is forced offline while loading, remote code is never trusted, and
pickled ``.bin`` weights are refused unless ``allow_pickle`` is given (unpickling can run code).
gvfx never downloads weights: the user fetches them (see ``model/depth_anything_v2_small.yaml``).

Per frame the model's affine-invariant inverse depth ``d`` is sampled at the solve's visible points
and fitted as ``1/z = s d + t`` (``gvfx.analyze.align``); the ``(s, t)`` series is smoothed over a
window of ``± smooth_radius`` frames, so frames are yielded with that much look-ahead (memory holds
``smooth_radius + 1`` model outputs, whatever the sequence length).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gvfx.analyze.align import (AffineFit, apply_inverse_depth_affine, fit_inverse_depth_affine,
                                sample_bilinear, smooth_fit_at)
from gvfx.analyze.depth_backends import ImagesFn, ProgressFn, check_frame_output
from gvfx.analyze.depth_sfm import visible_points
from gvfx.color import preview_srgb
from gvfx.errors import InputError, ResolutionMismatchError

if TYPE_CHECKING:
    from gvfx.analyze.solve import Solve

log = logging.getLogger(__name__)

__all__ = ["EstimatorOptions", "DepthModel", "load_depth_model", "EstimatorDepthBackend", "DEFAULT_MODEL_REPO",
           "default_model_dir"]

#: Where the user can fetch the default weights themselves (Apache-2.0); gvfx never downloads them.
DEFAULT_MODEL_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
_DEFAULT_FOLDER = "depth_anything_v2_small"


def default_model_dir() -> Path:
    """``$GVFX_DEPTH_MODEL``, else ``depth_anything_v2_small`` in the model store (``$GVFX_MODELS``, else
    ``~/.cache/gvfx/models``: ``gvfx.config.models_dir_default``, the one rule every model uses)."""
    if os.environ.get("GVFX_DEPTH_MODEL"):
        return Path(os.environ["GVFX_DEPTH_MODEL"])
    from gvfx.config import models_dir_default

    return models_dir_default() / _DEFAULT_FOLDER


@dataclass(frozen=True)
class EstimatorOptions:
    """Options of the ``estimator`` back-end."""

    model_dir: str | Path | None = None  # None: default_model_dir()
    allow_pickle: bool = False           # accept pickled .bin weights (can run code when loaded)
    smooth_radius: int = 4               # frames each side in the (s, t) smoothing window (= look-ahead)
    smooth_sigma_frames: float = 2.0
    min_points: int = 8                  # fewer aligned points: the frame borrows its neighbours' fit
    sky_disparity_rel: float = 0.01      # model disparity below this share of its 98th percentile: sky
    residual_rel_ok: float = 0.05        # fit residual (relative depth) at which confidence halves
    device: str = "cpu"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "EstimatorOptions":
        from gvfx.analyze.depth_backends import options_from

        return options_from(cls, options, "estimator")


@dataclass(frozen=True)
class DepthModel:
    """A loaded depth model: ``predict`` turns an sRGB uint8 image into its raw output map."""

    model: Any
    processor: Any
    path: Path
    #: "relative" (output is affine-invariant disparity) or "metric" (output is depth in metres)
    output_kind: str
    device: str = "cpu"

    def predict(self, srgb_u8: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 sRGB -> (h, w) float32 raw model output at the model's working resolution."""
        import torch

        inputs = self.processor(images=srgb_u8, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(pixel_values=inputs["pixel_values"].to(self.device))
        return out.predicted_depth[0].float().cpu().numpy()


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Force the Hugging Face hub offline (environment and already-imported constants), then restore."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    constants = None
    saved_const = None
    try:
        from huggingface_hub import constants  # type: ignore[no-redef]
        saved_const = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
    except Exception:  # noqa: BLE001 - an older/newer hub without the constant: env vars suffice
        constants = None
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_const


def _check_folder(folder: Path, allow_pickle: bool) -> bool:
    """Validate a model folder before any loading; return whether weights are safetensors."""
    fetch = (f"put the model's config.json, preprocessor_config.json and model.safetensors there "
             f"(e.g. from {DEFAULT_MODEL_REPO}, see model/depth_anything_v2_small.yaml)")
    if not folder.is_dir():
        raise InputError("depth model folder not found", path=folder, hint=fetch)
    for name in ("config.json", "preprocessor_config.json"):
        if not (folder / name).is_file():
            raise InputError(f"depth model folder has no {name}", path=folder, hint=fetch)
    if (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file():
        return True
    pickles = sorted(folder.glob("*.bin"))
    if pickles:
        if not allow_pickle:
            raise InputError("refusing pickled weights (loading a pickle can run arbitrary code)",
                             path=pickles[0], hint="convert them to model.safetensors, or set the estimator "
                             "option allow_pickle: true if you trust the file")
        log.warning("loading pickled weights %s (allow_pickle is set)", pickles[0])
        return False
    raise InputError("depth model folder has no weights (model.safetensors)", path=folder, hint=fetch)


def load_depth_model(model_dir: str | Path, *, allow_pickle: bool = False, device: str = "cpu") -> DepthModel:
    """Load a Depth Anything model and its image processor from a local folder, offline."""
    folder = Path(model_dir).expanduser()
    safetensors = _check_folder(folder, allow_pickle)
    from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

    with _hub_offline():
        try:
            model = DepthAnythingForDepthEstimation.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=safetensors, trust_remote_code=False)
            processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True,
                                                           trust_remote_code=False)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"cannot load the depth model: {type(exc).__name__}: {exc}", path=folder,
                             hint="check the folder holds a transformers Depth Anything model") from None
    model = model.to(device).eval()
    kind = getattr(model.config, "depth_estimation_type", "relative") or "relative"
    log.info("depth model loaded from %s (%s output)", folder, kind)
    return DepthModel(model, processor, folder, kind, device)


def _to_disparity(raw: np.ndarray, kind: str) -> np.ndarray:
    """Model output -> something affine in inverse depth (metric models output depth: invert it)."""
    if kind == "metric":
        with np.errstate(divide="ignore"):
            return np.where(raw > 0, 1.0 / np.maximum(raw, 1e-12), 0.0).astype(np.float32)
    return raw.astype(np.float32)


def _upsample(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize (pixel edges aligned) of a (h0, w0) map to (h, w)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


@dataclass
class _Pending:
    frame: int
    disparity: np.ndarray  # model resolution
    fit: AffineFit
    d_range: tuple[float, float]


class EstimatorDepthBackend:
    """``estimator``: a monocular depth model aligned per frame to the solve, smoothed over time."""

    name = "estimator"

    def estimate_sequence(self, frames: list[int], images: ImagesFn, solve: "Solve", *,
                          progress: ProgressFn | None = None, **options: Any
                          ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        opts = EstimatorOptions.from_options(options)
        dm = load_depth_model(opts.model_dir or default_model_dir(), allow_pickle=opts.allow_pickle,
                              device=opts.device)
        errors = np.asarray(solve.point_errors, dtype=np.float64).reshape(-1)
        n_pts = len(np.asarray(solve.points).reshape(-1, 3))
        weights_all = 1.0 / (1.0 + errors ** 2) if len(errors) == n_pts else np.ones(n_pts)
        fits: list[AffineFit] = []
        pending: deque[tuple[int, _Pending]] = deque()
        shape: tuple[int, int] | None = None
        done = 0
        for i, frame in enumerate(frames):
            rgb = np.asarray(images(frame), dtype=np.float32)[..., :3]
            cam = solve.track.camera_at(frame)
            if rgb.shape[:2] != (cam.height, cam.width):
                raise ResolutionMismatchError(f"plate is {rgb.shape[1]}x{rgb.shape[0]} but the solve is "
                                              f"{cam.width}x{cam.height}", frame=frame,
                                              hint="solve and estimate depth on the same plate")
            shape = rgb.shape[:2]
            disp = _to_disparity(dm.predict(preview_srgb(rgb)), dm.output_kind)
            ids, uv, z = visible_points(solve, frame) if n_pts else (np.zeros(0, int), np.zeros((0, 2)),
                                                                    np.zeros(0))
            h, w = disp.shape
            d_at = sample_bilinear(disp, uv * np.array([w / cam.width, h / cam.height])) if len(ids) else np.zeros(0)
            fit = fit_inverse_depth_affine(d_at, z, weights_all[ids] if len(ids) else None,
                                           min_points=opts.min_points)
            if not fit.valid:
                log.warning("frame %d: %d solve points visible, borrowing the neighbours' depth alignment",
                            frame, len(ids))
            d_range = (float(np.percentile(d_at, 2)), float(np.percentile(d_at, 98))) if len(d_at) else (0.0, 0.0)
            fits.append(fit)
            pending.append((i, _Pending(frame, disp, fit, d_range)))
            while pending and pending[0][0] + opts.smooth_radius <= i:
                done += 1
                yield self._emit(*pending.popleft(), fits, shape, opts, progress, done, len(frames))
        while pending:
            done += 1
            yield self._emit(*pending.popleft(), fits, shape, opts, progress, done, len(frames))

    def _emit(self, index: int, p: _Pending, fits: list[AffineFit], shape: tuple[int, int] | None,
              opts: EstimatorOptions, progress: ProgressFn | None, done: int, total: int
              ) -> tuple[int, np.ndarray, np.ndarray]:
        assert shape is not None
        s, t = smooth_fit_at(fits, index, radius=opts.smooth_radius, sigma_frames=opts.smooth_sigma_frames)
        disp = p.disparity
        top = float(np.percentile(disp, 98)) if disp.size else 0.0
        sky_m = disp < opts.sky_disparity_rel * top if top > 0 and opts.sky_disparity_rel > 0 else None
        if sky_m is not None and sky_m.any() and not sky_m.all():
            # sky takes its nearest solid neighbour's value before the bilinear upsample (no flying
            # pixels halfway to infinity along the horizon), then is cut out again with a nearest upsample
            from scipy import ndimage

            near = ndimage.distance_transform_edt(sky_m, return_distances=False, return_indices=True)
            disp = disp[near[0], near[1]]
        d = _upsample(disp, *shape)
        z = apply_inverse_depth_affine(d, s, t)
        if sky_m is not None and sky_m.any():
            h0, w0 = sky_m.shape
            rows = np.minimum(((np.arange(shape[0]) + 0.5) * h0 / shape[0]).astype(np.int64), h0 - 1)
            cols = np.minimum(((np.arange(shape[1]) + 0.5) * w0 / shape[1]).astype(np.int64), w0 - 1)
            z = np.where(sky_m[rows][:, cols], np.float32(np.inf), z)
        # confidence: how well the points agreed (frame), how far the pixel extrapolates beyond the
        # disparities seen at points, and how steep the model's depth is there (edges are unreliable)
        res = p.fit.residual_rel if p.fit.valid else np.median([f.residual_rel for f in fits if f.valid] or [1.0])
        c_fit = 1.0 / (1.0 + (res / opts.residual_rel_ok) ** 2)
        lo, hi = p.d_range
        span = max(hi - lo, 1e-6 * max(abs(hi), 1e-12))
        outside = np.maximum(lo - d, 0.0) + np.maximum(d - hi, 0.0)
        c_range = np.exp(-outside / (0.5 * span))
        gy, gx = np.gradient(d)
        steep = np.hypot(gx, gy) / np.maximum(np.abs(d), 1e-6)
        c_edge = np.exp(-(steep / 0.05) ** 2)
        conf = (c_fit * c_range * c_edge).astype(np.float32)
        zf, cf = check_frame_output(p.frame, z, conf, shape, self.name)
        if progress is not None:
            progress(done, total, f"depth (estimator) frame {p.frame}")
        return p.frame, zf, cf
