"""`gvfx demo --all-effects` at a tiny size: every effect rendered alone, a contact sheet each."""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image

from gvfx.cli import main
import pytest

from gvfx.errors import GvfxError

# the particle and insert effects (seconds at this size); tests/looks renders every effect's jobs
SOME = ("sparks", "rain", "insert")


def test_all_effects_writes_a_contact_sheet_per_effect(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--all-effects", "--effects", ",".join(SOME), "--quiet", "--frames", "2",
                 "--resolution", "96x54", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.stem for p in (out / "effects").glob("*.png")) == sorted(SOME)
    for effect in SOME:
        sheet = out / "effects" / f"{effect}.png"
        assert sheet.is_file() and effect in printed, effect
        img = Image.open(sheet)
        assert img.width > 96 * 2 and img.height > 54 * 3, effect  # plate, element, ..., comp rows
        job = yaml.safe_load((out / "effects" / effect / "job.yaml").read_text())
        assert [e["effect"] for e in job["elements"]] == [effect]
        assert "match" not in job and "match" not in job["elements"][0]  # the defaults are what is shown
        assert len(list((out / "effects" / effect / "elements" / effect).glob("v001/*.exr"))) == 2


def test_unknown_effect_is_one_clear_error(tmp_path: Path) -> None:
    from gvfx.demo.all_effects import run_all_effects

    with pytest.raises(GvfxError, match="unknown effect 'lava'"):
        run_all_effects(tmp_path, frames=2, width=64, height=36, effects=("lava",))
