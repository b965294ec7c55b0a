"""Frame windows and the array plumbing of the video stacks (numpy + torch, no diffusers).

A video model sees a fixed number of frames at once (Wan 2.1: 81, AnimateDiff: 16). A longer shot is
cut into overlapping windows, every window is generated with the same seed and the same control, and
consecutive windows are cross-faded linearly over the frames they share, so no frame jumps where one
window hands over to the next. Also here: metric depth to a depth-ControlNet/VACE control image, and
resizing to the model's working size.
"""

from __future__ import annotations

import numpy as np

from gvfx.errors import InputError

__all__ = ["plan_windows", "crossfade_into", "depth_to_control", "working_size", "resize_frames",
           "pad_frames", "to_uint8"]


def plan_windows(n_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` covering ``0..n_frames`` with windows of ``window`` frames, consecutive
    windows sharing ``overlap`` frames; the last window is moved back to end on the last frame (it then
    shares more than ``overlap`` frames with the one before). One window when ``window >= n_frames``."""
    if n_frames < 1:
        raise InputError("a video needs at least one frame")
    if window < 1:
        raise InputError(f"window is {window}; at least 1 frame")
    if not 0 <= overlap < window:
        raise InputError(f"overlap is {overlap}; between 0 and window - 1 ({window - 1})")
    if window >= n_frames:
        return [(0, n_frames)]
    stride = window - overlap
    starts = list(range(0, n_frames - window, stride))
    last = n_frames - window
    if starts[-1] != last:
        starts.append(last)
    return [(s, s + window) for s in starts]


def crossfade_into(out: np.ndarray | None, new: np.ndarray, start: int) -> np.ndarray:
    """Append window ``new`` (frames ``start .. start + len(new)``) to ``out`` (frames ``0 .. len(out)``).

    The frames both hold are a convex combination: frame ``j`` of an ``n``-frame overlap takes weight
    ``(j + 1) / (n + 1)`` from the new window, so the weight ramps from the old window to the new one and
    neither window's edge frame is used alone. Returns the longer array (``out`` is not modified)."""
    if out is None:
        if start != 0:
            raise ValueError("the first window must start at frame 0")
        return new.copy()
    n_overlap = len(out) - start
    if n_overlap < 0 or n_overlap > len(new):
        raise ValueError(f"window starting at {start} does not continue {len(out)} frames")
    weight = (np.arange(1, n_overlap + 1, dtype=np.float32) / (n_overlap + 1)).reshape(-1, *([1] * (new.ndim - 1)))
    blended = (1.0 - weight) * out[start:] + weight * new[:n_overlap]
    return np.concatenate([out[:start], blended, new[n_overlap:]], axis=0)


def depth_to_control(depth: np.ndarray) -> np.ndarray:
    """Metric camera Z ``(T, H, W)`` (``inf``/``nan``/``<= 0`` = sky or nothing) to the control image depth
    ControlNets and VACE were trained on: inverse depth, near = white, far and sky = black, as
    ``(T, H, W, 3)`` float32 0..1. Normalised once over the whole shot (robust percentiles of 1/Z) so
    every window sees the same mapping and the control does not flicker between windows."""
    z = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(z) & (z > 0)
    disparity = np.zeros_like(z)
    disparity[valid] = 1.0 / z[valid]
    if not valid.any():
        return np.zeros((*z.shape, 3), np.float32)
    d = disparity[valid]
    hi = float(np.percentile(d, 99.5))
    lo = 0.0 if not valid.all() else float(np.percentile(d, 0.5))  # sky present: far end is infinity
    if hi - lo <= 1e-12 * max(hi, 1e-12):  # a flat card: mid grey where there is something
        control = np.where(valid, 0.5, 0.0).astype(np.float32)
    else:
        control = np.clip((disparity - lo) / (hi - lo), 0.0, 1.0)
        control = np.where(valid, np.maximum(control, 0.02), 0.0).astype(np.float32)  # geometry never black
    return np.repeat(control[..., None], 3, axis=-1)


def working_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """``(height, width)`` rounded to the nearest multiples of ``multiple`` (at least one multiple)."""
    return (max(multiple, int(round(height / multiple)) * multiple),
            max(multiple, int(round(width / multiple)) * multiple))


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(T, H, W)`` or ``(T, H, W, C)`` float32 frames to ``size = (height, width)`` (bilinear,
    antialiased when shrinking); returns the input when it already has that size."""
    import torch

    if frames.shape[1:3] == tuple(size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    shrink = size[0] < frames.shape[1] or size[1] < frames.shape[2]
    y = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    y = y[:, 0] if frames.ndim == 3 else y.permute(0, 2, 3, 1)
    return np.ascontiguousarray(y.numpy(), dtype=np.float32)


def pad_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``frames`` with its last frame repeated up to ``n`` frames (unchanged when long enough)."""
    if len(frames) >= n:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)], axis=0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """0..1 float to 0..255 uint8, rounded."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
