"""The diffusion engine on the tiny *video* stacks (Wan VACE, AnimateDiff), through the engine API and
through ``render_job`` on a tiny plate: every mode, shapes/alpha/premultiplication, the plate untouched
outside an insert mask, bitwise determinism, a chunk equal to the full render, the ``window``/``overlap``
params, model/prompt in the OTIO timeline, non-commercial weights flagged end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import yaml

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine
from gvfx.errors import InputError

STACKS = ("wan_vace", "animatediff_depth")
FRAMES = (1001, 1002, 1003)
#: two windows over three frames (one shared, cross-faded): the windowed path runs, not just one call
VIDEO = {"window": 2, "overlap": 1, "model_resolution": 32}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine run much faster on one thread than fighting for two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video_store")
    tiny = kit.tiny_module()
    for name in STACKS:
        tiny.build_tiny(name, root / name)
    return root


def _spec(effect: str, store: Path, stack: str, **params):
    return kit.spec(effect, store, stack, **{**VIDEO, **params})


def _render(spec, ctx, cache_dir):
    eng = DiffusionEngine()
    eng.validate(spec, ctx)
    eng.prepare(spec, ctx, cache_dir)
    return [eng.render_frame(spec, ctx, f, cache_dir) for f in ctx.frames]


# ------------------------------------------------------------------------------------ window / overlap


def test_window_and_overlap_are_params_defaulting_to_the_manifest(store, tmp_path):
    from gvfx.engines.diffusion.common import video_window
    from gvfx.engines.diffusion.stacks import load_manifest

    wan, ad = load_manifest("wan_vace"), load_manifest("animatediff_depth")
    assert (wan.window, wan.overlap, ad.window, ad.overlap) == (81, 16, 16, 4)
    assert load_manifest("sd15_depth_ip").window is None
    eng = DiffusionEngine()
    for effect, info in eng.effects().items():
        names = {p.name for p in info.params}
        assert {"window", "overlap"} <= names, effect
    assert video_window(eng.params(kit.spec("element", store, "wan_vace")), wan) == (81, 16)
    assert video_window(eng.params(kit.spec("element", store, "animatediff_depth")), ad) == (16, 4)
    assert video_window(eng.params(_spec("element", store, "wan_vace")), wan) == (2, 1)  # a job sets them
    assert video_window({"window": 8, "overlap": -1}, wan) == (8, 2)  # manifest overlap >= window: a quarter
    with pytest.raises(InputError, match=r"overlap: 3 frames; it must be less than the window \(2\)"):
        eng.validate(_spec("element", store, "wan_vace", overlap=3), kit.plate_ctx())
    meta = eng.metadata(_spec("element", store, "animatediff_depth"))
    assert (meta["window"], meta["overlap"]) == (2, 1)
    bad = Path(wan.path).read_text().replace("overlap: 16", "overlap: 81")
    (tmp_path / "bad.yaml").write_text(bad)
    with pytest.raises(InputError, match=r"gvfx.overlap \(81\) must be less than gvfx.window \(81\)"):
        load_manifest(tmp_path / "bad.yaml")


# ---------------------------------------------------------------------------------------- engine API


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("effect", ["element", "insert", "refine"])
def test_mode_outputs_are_valid_and_deterministic(store, tmp_path, stack, effect):
    ctx = kit.plate_ctx(FRAMES)
    spec = _spec(effect, store, stack)
    first = _render(spec, ctx, tmp_path / "a")
    again = _render(spec, ctx, tmp_path / "b")
    kit.check_mode_outputs(ctx, effect, first, again)


def test_a_farm_chunk_reads_the_same_cache(store, tmp_path):
    ctx = kit.plate_ctx(FRAMES)
    spec = _spec("insert", store, "animatediff_depth")
    full = _render(spec, ctx, tmp_path / "c")
    eng2 = DiffusionEngine()  # another process: prepare finds the cache complete, render_frame reads it
    eng2.prepare(spec, ctx, tmp_path / "c")
    assert np.array_equal(eng2.render_frame(spec, ctx, 1002, tmp_path / "c").rgba, full[1].rgba)


# ------------------------------------------------------------------------------------------ render_job


def _job(root: Path, elements: list[dict], frames=FRAMES, name: str = "v") -> Path:
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate

    if not (root / "plate").is_dir():
        _pattern, track, _scene = write_demo_plate(root / "plate", 64, 48, list(frames))
        write_usd_camera(root / "plate" / "camera.usda", track, fps=24.0)
    job = {"version": 1, "name": name, "plate": {"path": "plate/plate.####.exr", "frames": f"{frames[0]}-{frames[-1]}"},
           "depth": {"layer": "Z"}, "camera": {"file": "plate/camera.usda"}, "output": "out", "elements": elements}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _element(effect: str, store: Path, stack: str, **params) -> dict:
    from gvfx.demo.scene import default_scene

    cx, top_y, cz = default_scene().table_top_center
    p = {"stack": stack, "models": str(store), "steps": 2, "prompt": f"a brass {effect}", **VIDEO, **params}
    if effect == "refine":
        p.update(sim_effect="sparks", strength=0.5)
    return {"name": effect, "engine": "diffusion", "effect": effect, "seed": 5, "size_m": 0.4,
            "placement": {"point": [cx, top_y, cz]}, "params": p}


def _channels(path: Path) -> dict[str, np.ndarray]:
    from gvfx.exr import read_exr

    return read_exr(path).channels


@pytest.mark.parametrize("stack", STACKS)
def test_render_job_every_mode_chunk_equals_full_and_timeline_names_the_model(store, tmp_path, stack):
    from gvfx.exr import read_exr
    from gvfx.job import load_job
    from gvfx.render import render_job
    from gvfx.sequence import frame_path

    job = load_job(_job(tmp_path, [_element(e, store, stack) for e in ("element", "insert", "refine")]))
    res = render_job(job)
    alphas = {f: np.zeros((48, 64), np.float32) for f in FRAMES}
    for effect, out in res.elements.items():
        assert out.frames == list(FRAMES)
        for f in FRAMES:
            img = read_exr(frame_path(out.pattern, f))
            assert (img.width, img.height) == (64, 48) and {"R", "G", "B", "A", "Z"} <= set(img.channels)
            a, rgb = img.channels["A"], np.stack([img.channels[c] for c in "RGB"], -1)
            assert a.min() >= 0.0 and a.max() <= 1.0 and np.isfinite(rgb).all()
            # premultiplied; the file is half: an alpha below half's smallest step rounds to 0 while its
            # (smaller still) colour survives as a subnormal, so allow that rounding and nothing more
            assert np.abs(rgb[a == 0]).max(initial=0.0) < 1e-6 and np.all(np.isinf(img.channels["Z"][a == 0]))
            md = img.metadata
            assert md["gvfx:model"] == stack and md["gvfx:prompt"] == f"a brass {effect}"
            assert md["gvfx:mode"] == effect and md["gvfx:window"] == 2 and md["gvfx:overlap"] == 1
            assert "transformer" in md["gvfx:model_hashes"] or "unet" in md["gvfx:model_hashes"]
            # what the match stage adds around the element (contact shadow, light wrap) also touches the plate
            alphas[f] += a + sum(np.abs(v) for k, v in img.channels.items() if k.startswith(("shadow.", "lightwrap.")))
        assert max(float(_channels(frame_path(out.pattern, f))["A"].max()) for f in FRAMES) > 0, effect
    for f in FRAMES:  # the comp is the plate, to the bit, wherever no element has alpha, shadow or wrap
        comp = read_exr(frame_path(res.comp.pattern, f)).rgba()
        plate = read_exr(tmp_path / "plate" / f"plate.{f}.exr").rgba()
        empty = alphas[f] == 0
        assert empty.any() and np.array_equal(comp[empty], plate[empty])

    chunk = render_job(replace(job, output=tmp_path / "chunk"), frames=(1002, 1003), write_timeline_file=False)
    for name, out in chunk.elements.items():
        assert out.frames == [1002, 1003]
        for f in (1002, 1003):
            full, part = _channels(frame_path(res.elements[name].pattern, f)), _channels(frame_path(out.pattern, f))
            assert full.keys() == part.keys()
            for c in full:
                assert np.array_equal(full[c], part[c]), f"{name} frame {f} channel {c} differs"
        assert not frame_path(out.pattern, 1001).exists()

    tl = otio.adapters.read_from_file(str(tmp_path / "out" / "v.otio"))
    for effect in ("element", "insert", "refine"):
        track = next(t for t in tl.tracks if t.name == effect)
        md = [c for c in track if isinstance(c, otio.schema.Clip)][0].metadata["gvfx"]
        assert md["model"] == stack and md["prompt"] == f"a brass {effect}"


def test_timeline_keeps_model_and_prompt_of_older_versions(store, tmp_path):
    """v001's model/prompt stay on its media reference when v002 is rendered, from version.json or,
    for a version.json that never recorded them, from v001's EXR headers."""
    from gvfx.job import load_job
    from gvfx.render import render_job

    frames = (1001, 1002)
    el = _element("element", store, "wan_vace", window=0, overlap=-1)
    render_job(load_job(_job(tmp_path, [el], frames)))
    info_path = tmp_path / "out" / "elements" / "element" / "v001" / "version.json"
    info = json.loads(info_path.read_text())
    assert info["model"] == "wan_vace" and info["prompt"] == "a brass element"
    for k in ("model", "prompt", "negative_prompt"):  # as a version.json from before this was recorded
        info.pop(k, None)
    info_path.write_text(json.dumps(info))
    el["params"]["prompt"] = "a copper element"
    render_job(load_job(_job(tmp_path, [el], frames)))
    tl = otio.adapters.read_from_file(str(tmp_path / "out" / "v.otio"))
    clip = [c for c in next(t for t in tl.tracks if t.name == "element") if isinstance(c, otio.schema.Clip)][0]
    refs = clip.media_references()
    old, new = refs["v001"].metadata["gvfx"], refs["v002"].metadata["gvfx"]
    assert (old["model"], old["prompt"]) == ("wan_vace", "a brass element")
    assert (new["model"], new["prompt"]) == ("wan_vace", "a copper element")
    assert clip.metadata["gvfx"]["prompt"] == "a copper element"


# ------------------------------------------------------------------------------------- non-commercial


def test_non_commercial_stack_is_flagged_by_models_list_and_in_every_exr(store, tmp_path, monkeypatch, capsys):
    from gvfx.cli import main
    from gvfx.engines.diffusion.stacks import load_manifest
    from gvfx.exr import read_exr
    from gvfx.job import load_job
    from gvfx.render import render_job
    from gvfx.sequence import frame_path

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    text = Path(load_manifest("wan_vace").path).read_text().replace("name: wan_vace", "name: wan_vace_nc", 1)
    head, sep, rest = text.partition("  transformer:")  # the transformer's licence only
    rest = rest.replace("license: {id: apache-2.0, non_commercial: false}",
                        "license: {id: CC-BY-NC-SA-4.0, non_commercial: true}", 1)
    (manifests / "wan_vace_nc.yaml").write_text(head + sep + rest)  # folder: wan_vace (the same tiny files)
    monkeypatch.setenv("GVFX_STACKS", str(manifests))

    assert main(["models", "--models", str(store), "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("wan_vace_nc "))
    assert "installed" in line and "NON-COMMERCIAL: transformer" in line

    res = render_job(load_job(_job(tmp_path, [_element("element", store, "wan_vace_nc")], (1001, 1002))),
                     write_timeline_file=False)
    for f in (1001, 1002):
        md = read_exr(frame_path(res.elements["element"].pattern, f)).metadata
        assert md["gvfx:model"] == "wan_vace_nc" and "transformer=CC-BY-NC-SA-4.0 (NC)" in md["gvfx:licenses"]
        assert "NON-COMMERCIAL" in md["gvfx:license_warning"] and "transformer" in md["gvfx:license_warning"]
