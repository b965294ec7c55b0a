"""Where per-frame metric depth comes from: one interface, several back-ends, found by name.

Every back-end turns a plate (and its camera solve) into, per frame, metric camera-space ``Z`` and a
confidence, streamed one frame at a time so memory stays flat in sequence length:

- ``sfm`` (default, no weights): the solve's sparse points densified edge-aware, guided by the plate;
- ``estimator``: a monocular depth model from a local folder, made metric by aligning it to the solve;
- ``user``: a depth pass the user already has (an EXR sequence), converted from its convention.

Back-ends are imported lazily so that asking for ``sfm`` never imports torch.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from gvfx.errors import DepthError, InputError

if TYPE_CHECKING:
    from gvfx.analyze.solve import Solve

log = logging.getLogger(__name__)

__all__ = ["DepthBackend", "ProgressFn", "ImagesFn", "DEPTH_BACKENDS", "DEFAULT_DEPTH_BACKEND",
           "get_depth_backend", "check_frame_output"]

#: ``progress(done, total, message)``: called once per frame a back-end finishes.
ProgressFn = Callable[[int, int, str], None]
#: ``images(frame)``: the plate (H, W, 3) float32 scene-linear ACEScg at plate resolution.
ImagesFn = Callable[[int], np.ndarray]


@runtime_checkable
class DepthBackend(Protocol):
    """A source of metric, temporally stable depth for a plate."""

    name: str

    def estimate_sequence(self, frames: list[int], images: ImagesFn, solve: "Solve", *,
                          progress: ProgressFn | None = None, **options: Any
                          ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(frame, z, confidence)`` per frame, in ``frames`` order.

        ``z``: (H, W) float32 metric camera-space Z at plate resolution, ``inf`` for sky / unknown.
        ``confidence``: (H, W) float32 in 0..1 (0 wherever ``z`` is ``inf``).
        """
        ...


#: name -> "module:Class", imported on first use.
DEPTH_BACKENDS: dict[str, str] = {
    "sfm": "gvfx.analyze.depth_sfm:SfmDepthBackend",
    "estimator": "gvfx.analyze.depth_estimator:EstimatorDepthBackend",
    "user": "gvfx.analyze.depth_user:UserDepthBackend",
}
DEFAULT_DEPTH_BACKEND = "sfm"


def get_depth_backend(name: str) -> DepthBackend:
    """The depth back-end called ``name`` (``sfm``, ``estimator`` or ``user``), ready to use."""
    target = DEPTH_BACKENDS.get(str(name).strip().lower())
    if target is None:
        raise InputError(f"unknown depth back-end {name!r}", hint="use one of: " + ", ".join(DEPTH_BACKENDS))
    module_name, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"depth back-end {name!r} failed to load ({module_name}): {exc}",
                         hint="run `gvfx doctor` to check the installation") from exc
    return cls()


def check_frame_output(frame: int, z: np.ndarray, confidence: np.ndarray, shape: tuple[int, int],
                       backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Make one frame's output obey the interface: (H, W) float32, ``inf`` = unknown, confidence 0..1
    and 0 where ``z`` is unknown. A wrong shape is a programming error in the back-end."""
    z = np.asarray(z, dtype=np.float32)
    c = np.asarray(confidence, dtype=np.float32)
    if z.shape != tuple(shape) or c.shape != tuple(shape):
        raise DepthError(f"depth back-end {backend!r} produced {z.shape} depth / {c.shape} confidence, "
                         f"expected {tuple(shape)}", frame=frame)
    bad = ~np.isfinite(z) | (z <= 0)
    if bad.any():
        z = np.where(bad, np.float32(np.inf), z)
    c = np.where(bad | ~np.isfinite(c), np.float32(0.0), np.clip(c, 0.0, 1.0)).astype(np.float32)
    return np.ascontiguousarray(z), np.ascontiguousarray(c)


def options_from(cls: type, options: dict[str, Any], what: str) -> Any:
    """Build a back-end's frozen options dataclass from a mapping; an unknown key is a clear error."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown {what} depth option(s): {', '.join(unknown)}",
                         hint="known options: " + ", ".join(sorted(known)))
    return cls(**options)
