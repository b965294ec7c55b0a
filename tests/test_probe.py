"""gvfx probe: the stable dict, its JSON form, stats streamed over a sequence, and the text form."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gvfx.errors import SequenceError
from gvfx.exr import write_layers
from gvfx.probe import PROBE_VERSION, format_probe, probe

H, W = 12, 16


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    for f in (1001, 1002, 1004):
        rgba = np.full((H, W, 4), f - 1000, np.float32)
        rgba[0, 0, 0] = np.nan
        z = np.full((H, W), 10.0 * (f - 1000), np.float32)
        z[0, :3] = np.inf
        write_layers(tmp_path / f"plate.{f:04d}.exr", rgba=rgba, z=z, layers={"holdout": rgba[..., 3]},
                     data_origin=(-2, -2), display_window=(0, 0, W - 5, H - 5), metadata={"seed": 7}, clean=False)
    return tmp_path / "plate.####.exr"


def test_probe_fields(plate: Path) -> None:
    d = probe(plate)
    json.dumps(d)  # JSON-able
    assert d["probe_version"] == PROBE_VERSION
    assert d["pattern"] == str(plate) and not d["is_still"] and d["padding"] == 4
    assert d["frames"] == {"first": 1001, "last": 1004, "count": 3, "missing": [1003], "missing_count": 1}
    part = d["parts"][0]
    assert part["display_window"] == {"x0": 0, "y0": 0, "x1": W - 5, "y1": H - 5, "width": W - 4, "height": H - 4}
    assert part["data_window"]["x0"] == -2 and part["data_window"]["width"] == W
    types = {c["name"]: c["type"] for c in part["channels"]}
    assert types["R"] == "half" and types["Z"] == "float"
    assert part["layers"]["holdout"] == ["holdout.A"] and part["compression"] == "zip"
    assert d["layers"]["rgba"][:4] == ["R", "G", "B", "A"]
    assert d["depth"] == {"present": True, "channel": "Z"}
    assert d["colorspace"]["gvfx:colorspace"] == "ACEScg"
    assert d["colorspace"]["chromaticities"][:2] == [0.713, 0.293]
    assert d["gvfx"]["gvfx:seed"] == 7
    assert d["views"] == [] and d["stats"] is None


def test_probe_stats(plate: Path) -> None:
    d = probe(plate, stats=True)
    st = d["stats"]
    assert st["frames_read"] == 3
    r = st["channels"]["R"]
    assert (r["nan"], r["inf"]) == (3, 0)
    n = (W - 4) * (H - 4)
    # display-window pixels: values 1, 2, 4 per frame, the NaN pixel (outside the display) is cropped
    assert r["min"] == 1.0 and r["max"] == 4.0
    assert r["mean"] == pytest.approx((1 + 2 + 4) / 3, rel=1e-6) and n > 0
    z = st["channels"]["Z"]
    assert z["inf"] == 3 * 3  # counts cover every stored pixel (the data window)
    assert z["min"] == 10.0 and z["max"] == 40.0


def test_probe_still_and_text(plate: Path) -> None:
    still = probe(plate.parent / "plate.1002.exr")
    assert still["is_still"] and still["frames"]["count"] == 1
    assert still["sequence_around"]["pattern"] == str(plate) and still["sequence_around"]["count"] == 3
    text = format_probe(probe(plate, stats=True))
    assert "frames 1001-1004" in text and "MISSING 1 frame(s): 1003" in text
    assert "depth: Z" in text and "holdout: holdout.A(half)" in text
    assert re.search(r"R\s+3\s+0\s+1\s+4", text)


def test_probe_errors(tmp_path: Path) -> None:
    with pytest.raises(SequenceError, match="no frames match"):
        probe(tmp_path / "none.####.exr")


def test_docs_example_matches_probe_fields(plate: Path) -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "probe.md"
    block = re.search(r"```json\n(.*?)```", doc.read_text(), re.S)
    assert block is not None
    example = json.loads(block.group(1))
    d = probe(plate, stats=True)
    assert set(example) == set(d)
    assert set(example["parts"][0]) == set(d["parts"][0])
    assert set(example["frames"]) == set(d["frames"]) and set(example["stats"]) == set(d["stats"])
    assert set(example["stats"]["channels"]["R"]) == set(d["stats"]["channels"]["R"])
