"""The ``user`` depth back-end: a depth pass the user already has (an EXR sequence from a render, a
LiDAR scan, another tool), read per frame and converted from its convention to metric Z.

Options (from the job file or the CLI): ``pattern`` (``/path/depth.####.exr``), ``convention``
(``z``, ``distance``, ``inverse_z``, ``normalized``), ``layer`` (a layer or channel name; default: the
file's depth channel), ``scale`` (file units to metres), ``near``/``far`` (metres, for normalized),
``near_is_one``, ``normalized_mapping``, ``far_clip``. Confidence is 1 wherever the depth is finite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gvfx.analyze.depth_backends import ImagesFn, ProgressFn, check_frame_output
from gvfx.depth import CONVENTIONS, Depth, check_depth_matches
from gvfx.errors import InputError, LayerError
from gvfx.exr import read_exr
from gvfx.sequence import frame_path

if TYPE_CHECKING:
    from gvfx.analyze.solve import Solve

log = logging.getLogger(__name__)

__all__ = ["UserDepthOptions", "UserDepthBackend", "read_user_depth"]


@dataclass(frozen=True)
class UserDepthOptions:
    """Where the depth pass is and how to read it."""

    pattern: str | Path | None = None
    convention: str = "z"
    layer: str | None = None
    scale: float = 1.0
    near: float | None = None
    far: float | None = None
    near_is_one: bool = True
    normalized_mapping: str = "linear"
    far_clip: float | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "UserDepthOptions":
        from gvfx.analyze.depth_backends import options_from

        opts = options_from(cls, options, "user")
        if not opts.pattern:
            raise InputError("the 'user' depth back-end needs a depth pass",
                             hint="give the depth sequence pattern, e.g. depth: {pattern: /shots/sh010/depth.####.exr, "
                                  "convention: z}")
        if opts.convention not in CONVENTIONS:
            raise InputError(f"unknown depth convention {opts.convention!r}",
                             hint="use one of: " + ", ".join(CONVENTIONS))
        return opts


def read_user_depth(path: Path, frame: int, opts: UserDepthOptions) -> Depth:
    """One frame of the depth pass, as a ``Depth`` in the given convention (not yet converted)."""
    img = read_exr(path, frame=frame)
    if opts.layer:
        values = img.layer(opts.layer)[..., 0]
    else:
        values = img.depth()
        if values is None:
            raise LayerError(f"no depth channel; channels are {', '.join(img.channel_names)}", path=path,
                             frame=frame, hint="name the depth layer/channel with the 'layer' option")
    return Depth(values, opts.convention, near=opts.near, far=opts.far, scale=opts.scale, far_clip=opts.far_clip,
                 near_is_one=opts.near_is_one, normalized_mapping=opts.normalized_mapping, path=str(path),
                 frame=frame)


class UserDepthBackend:
    """``user``: the user's own depth pass, converted to metric Z (confidence 1 where finite)."""

    name = "user"

    def estimate_sequence(self, frames: list[int], images: ImagesFn, solve: "Solve", *,
                          progress: ProgressFn | None = None, **options: Any
                          ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        opts = UserDepthOptions.from_options(options)
        for n, frame in enumerate(frames):
            path = frame_path(str(opts.pattern), frame)
            depth = read_user_depth(path, frame, opts)
            cam = solve.track.camera_at(frame)
            check_depth_matches(depth.shape, (cam.height, cam.width), path=path, frame=frame)
            z = depth.to_z(cam)
            conf = np.isfinite(z).astype(np.float32)
            z, conf = check_frame_output(frame, z, conf, (cam.height, cam.width), self.name)
            if progress is not None:
                progress(n + 1, len(frames), f"depth (user) frame {frame}")
            yield frame, z, conf
