"""Fixtures shared by the analyze tests (helpers live in analyze_plates.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analyze_plates import render, wide_track
from gvfx.camera import CameraTrack


@pytest.fixture(scope="session")
def moving_plate() -> tuple[CameraTrack, dict[int, np.ndarray]]:
    """12 frames at 480x270 with a wide move, rendered once per session."""
    track = wide_track(480, 270, 12)
    return track, render(track)
