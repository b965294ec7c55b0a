"""The diffusion insert conditioned on the 3D proxy (issue 14, point 6): the element's silhouette and Z
are the proxy's, frame by frame, as the sim engine renders that proxy through the plate camera; an
ellipse mask, the old conditioning, does not follow the object. Run through render_job on the demo plate
with the tiny stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import gvfx_image_testkit as kit
from gvfx.errors import InputError

FRAMES = (1001, 1003)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return kit.tiny_store(tmp_path_factory)


@pytest.fixture(scope="module")
def rendered(store, tmp_path_factory):
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.run import reference_image
    from gvfx.demo.scene import write_demo_plate
    from gvfx.job import load_job
    from gvfx.render import render_job

    tmp = tmp_path_factory.mktemp("proxyjob")
    pattern, track, scene = write_demo_plate(tmp / "plate", 192, 108, list(range(FRAMES[0], FRAMES[1] + 1)))
    write_usd_camera(tmp / "plate" / "camera.usda", track, fps=24.0)
    cx, top_y, cz = scene.table_top_center
    place = {"point": [cx, top_y, cz]}
    diff = {"stack": "sd15_depth_ip", "models": str(store), "model_resolution": 64, "steps": 2,
            "prompt": "a beach ball", "proxy": "lathe"}
    common = {"effect": "insert", "seed": 3, "size_m": 0.3, "placement": place, "reference": str(reference_image())}
    job = {"version": 1, "name": "p", "plate": {"path": str(Path(pattern).relative_to(tmp)),
                                                 "frames": f"{FRAMES[0]}-{FRAMES[1]}"},
           "depth": {"layer": "Z"}, "camera": {"file": "plate/camera.usda"}, "output": "out",
           "elements": [dict(common, name="neural", engine="diffusion", params=dict(diff, mask="proxy")),
                        dict(common, name="oval", engine="diffusion", params=dict(diff, mask="ellipse")),
                        dict(common, name="proxy3d", engine="sim", params={"proxy": "lathe"})]}
    (tmp / "job.yaml").write_text(yaml.safe_dump(job))
    return render_job(load_job(tmp / "job.yaml"), write_timeline_file=False)


def _read(res, name, f):
    from gvfx.exr import read_exr
    from gvfx.sequence import frame_path

    return read_exr(frame_path(res.elements[name].pattern, f))


def _iou(a, b, t=0.5):
    return float(((a > t) & (b > t)).sum() / max(((a > t) | (b > t)).sum(), 1))


@pytest.mark.parametrize("frame", FRAMES)
def test_silhouette_and_depth_are_the_proxys(rendered, frame):
    neural, sim, oval = (_read(rendered, n, frame) for n in ("neural", "proxy3d", "oval"))
    a_n, a_s, a_o = (img.channels["A"] for img in (neural, sim, oval))
    assert (a_s > 0.5).sum() > 100, "the proxy must cover enough pixels to compare"
    assert _iou(a_n, a_s) > 0.97, _iou(a_n, a_s)
    assert _iou(a_o, a_s) < 0.9, "the ellipse must not already match (else this test proves nothing)"
    both = (a_n > 0.5) & (a_s > 0.5)
    z_n, z_s = neural.depth(), sim.depth()
    assert np.abs(z_n[both] - z_s[both]).max() < 1e-3
    assert neural.metadata["gvfx:insert_mask"] == "proxy" and neural.metadata["gvfx:proxy"] == "lathe"
    assert oval.metadata["gvfx:insert_mask"] == "ellipse"


def test_the_model_repaints_the_proxy_render(rendered):
    # the colour is the model's, not the sim render copied through: the tiny random model changes it
    neural, sim = _read(rendered, "neural", FRAMES[0]), _read(rendered, "proxy3d", FRAMES[0])
    both = (neural.channels["A"] > 0.9) & (sim.channels["A"] > 0.9)
    diff = np.abs(neural.channels["R"][both] - sim.channels["R"][both])
    assert np.median(diff) > 1e-3


def test_proxy_mask_without_a_reference_is_one_clear_error(store):
    from gvfx.engines.diffusion import DiffusionEngine

    spec = kit.spec("insert", store, mask="proxy")
    with pytest.raises(InputError, match="mask 'proxy' builds the 3D proxy"):
        DiffusionEngine().validate(spec, kit.plate_ctx())
