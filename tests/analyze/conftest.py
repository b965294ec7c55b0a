"""Fixtures shared by the analyze tests (helpers live in analyze_plates.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analyze_plates import render, wide_track
from gvfx.camera import CameraTrack


@pytest.fixture(scope="session")
def moving_plate() -> tuple[CameraTrack, dict[int, np.ndarray]]:
    """24 frames at 480x270 with a wide move, rendered once per session.

    24, not 12: at 480 px the focal length is weakly determined by this move (the reprojection error
    changes by 0.0003 px between 35.0 and 35.8 mm on 12 frames), so 12 frames put the estimated focal
    anywhere from -6% to +2.4% depending on the grain, and the orientations with it."""
    track = wide_track(480, 270, 24)
    return track, render(track)
