"""Shared renders of the look tests: the demo plate once, each effect alone with the job defaults
(gvfx.demo.all_effects, the jobs `gvfx demo --all-effects` renders), measured from the written EXRs.

Truth comes from outside the render: the demo scene's own camera (gvfx.demo.scene.demo_camera) turns
each element pixel's Z into a world point, so "below the ground" and "how far a resting object moves"
are measured in metres against the scene's geometry, not against what the engine believes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from gvfx.demo.all_effects import EFFECTS, render_effect
from gvfx.demo.run import FIRST_FRAME
from gvfx.demo.scene import default_scene, demo_camera, write_demo_plate
from gvfx.exr import read_exr
from gvfx.sequence import frame_path

WIDTH, HEIGHT, N_FRAMES = 320, 180, 3


@dataclass
class Look:
    """One rendered effect: per frame the element's layers (display window) and the comp, plus the
    element's match metadata."""

    effect: str
    frames: list[int]
    rgba: list[np.ndarray] = field(default_factory=list)
    z: list[np.ndarray] = field(default_factory=list)
    shadow: list[np.ndarray] = field(default_factory=list)
    comp: list[np.ndarray] = field(default_factory=list)
    plate: list[np.ndarray] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    track: object = None

    def json(self, key: str):
        return json.loads(self.meta[f"gvfx:match:{key}"])

    def channels(self) -> list[np.ndarray]:
        return self.rgba + self.z + self.shadow + self.comp

    def coverage(self) -> float:
        """Largest per-frame fraction of the frame with alpha > 0.01."""
        return max(float((a[..., 3] > 0.01).mean()) for a in self.rgba)

    def shadow_dark_fraction(self, level: float = 0.5) -> float:
        """Largest per-frame fraction of the frame the shadow layer darkens by more than ``level``."""
        return max(float((s > level).mean()) for s in self.shadow)

    def world_points(self, k: int, min_alpha: float = 0.05) -> np.ndarray:
        """(N, 3) world points of frame k's element pixels (the scene's true camera, the element's Z)."""
        a, z = self.rgba[k][..., 3], self.z[k]
        ys, xs = np.nonzero((a > min_alpha) & np.isfinite(z) & (z > 0))
        uv = np.stack([xs + 0.5, ys + 0.5], -1).astype(np.float64)
        return self.track.unproject_world(uv, z[ys, xs].astype(np.float64), self.frames[k])

    def peak(self) -> float:
        """Largest premultiplied luminance-ish value (max of RGB) over the frames."""
        return max(float(a[..., :3].max()) for a in self.rgba)

    def median_lit(self, min_alpha: float = 0.05) -> float:
        """Median over frames of the median max(RGB) of pixels with alpha > ``min_alpha``."""
        vals = [np.median(a[..., :3].max(-1)[a[..., 3] > min_alpha]) for a in self.rgba if (a[..., 3] > min_alpha).any()]
        return float(np.median(vals)) if vals else 0.0


class Shot:
    """The demo plate (once) and each effect rendered on demand, once per test session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.frames = list(range(FIRST_FRAME, FIRST_FRAME + N_FRAMES))
        pattern, self.track, self.scene = write_demo_plate(root / "plate", WIDTH, HEIGHT, self.frames)
        self.pattern = Path(pattern)
        from gvfx.camera_io import write_usd_camera

        self.camera_file = root / "plate" / "camera.usda"
        write_usd_camera(self.camera_file, self.track, fps=24.0)
        self.truth = demo_camera(self.scene, WIDTH, HEIGHT, self.frames)
        self._looks: dict[str, Look] = {}

    def look(self, effect: str, match: dict | None = None) -> Look:
        key = effect + ("" if not match else json.dumps(match, sort_keys=True))
        if key not in self._looks:
            out = self.root / (effect if not match else f"{effect}-{len(self._looks)}")
            res = render_effect(effect, out, self.scene, self.pattern, self.camera_file, self.frames, match=match)
            lk = Look(effect, self.frames, track=self.truth)
            el = res.elements[effect]
            for f in self.frames:
                img = read_exr(frame_path(el.pattern, f))
                lk.rgba.append(img.rgba())
                lk.z.append(img.depth())
                lk.shadow.append(img.channels["shadow.A"])
                lk.comp.append(read_exr(frame_path(res.comp.pattern, f)).rgba())
                lk.plate.append(res.plate.rgba(f))
                lk.meta = dict(img.metadata)
            self._looks[key] = lk
        return self._looks[key]


@pytest.fixture(scope="session")
def shot(tmp_path_factory) -> Shot:
    return Shot(tmp_path_factory.mktemp("looks"))


@pytest.fixture(scope="session", params=EFFECTS)
def look(request, shot) -> Look:
    return shot.look(request.param)
