"""Tiny random models, written as real model folders (config + safetensors), for tests and smoke runs.

Each builder makes a model with the real architecture but a few thousand random parameters (fixed
seed), saved the way the real weights are laid out, so the loading code under test is exactly the
code that loads real weights. Nothing is downloaded. A later stack (e.g. diffusion) adds one builder
and one line in ``BUILDERS``.

    python model/tiny.py depth_anything /tmp/tiny_da
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["BUILDERS", "build_tiny"]

SEED = 0


def _build_depth_anything(out_dir: Path) -> Path:
    """A ``DepthAnythingForDepthEstimation`` with a 4-layer, 32-wide Dinov2 backbone and its image
    processor (inputs resized to 56 px, a multiple of the 14 px patch, keeping the aspect ratio)."""
    import torch
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config,
                              DPTImageProcessor)

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, out_indices=[1, 2, 3, 4], apply_layernorm=True,
                            reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=32,
                                 reassemble_factors=[4, 2, 1, 0.5], neck_hidden_sizes=[8, 16, 16, 32],
                                 fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative")
    torch.manual_seed(SEED)
    model = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():  # a random head outputs ~0 through its final ReLU: calibrate it to about 1 +- 0.2
        probe = torch.rand(1, 3, 56, 84, generator=torch.Generator().manual_seed(SEED))
        model.head.conv3.bias.zero_()
        std = float(model(pixel_values=probe).predicted_depth.std())
        model.head.conv3.weight.mul_(0.2 / max(std, 1e-12))
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor = DPTImageProcessor(do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, resample=3, do_rescale=True, rescale_factor=1 / 255,
                                  do_normalize=True, image_mean=[0.485, 0.456, 0.406],
                                  image_std=[0.229, 0.224, 0.225], do_pad=False)
    processor.save_pretrained(out_dir)
    return out_dir


def _video_builder(name: str) -> Callable[[Path], Path]:
    """A builder from ``model/tiny_video.py`` (the video stacks), loaded by path when first called."""
    def build(out_dir: Path) -> Path:
        import importlib.util

        path = Path(__file__).with_name("tiny_video.py")
        spec = importlib.util.spec_from_file_location("gvfx_model_tiny_video", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)(out_dir)
    return build


def _image_builder(name: str) -> Callable[[Path], Path]:
    """A builder from ``model/tiny_image.py`` (the image diffusion stacks), loaded by path when first called."""
    def build(out_dir: Path) -> Path:
        import importlib.util

        spec = importlib.util.spec_from_file_location("gvfx_model_tiny_image", Path(__file__).with_name("tiny_image.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)(out_dir)
    return build


#: name -> builder(out_dir) -> out_dir
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "depth_anything": _build_depth_anything,
    "wan_vace": _video_builder("build_wan_vace"),
    "animatediff_depth": _video_builder("build_animatediff_depth"),
    "sd15_depth_ip": _image_builder("build_sd15_depth_ip"),
    "sdxl_depth_ip": _image_builder("build_sdxl_depth_ip"),
    "sd15_depth_ip_fp16": _image_builder("build_sd15_depth_ip_fp16"),  # only *.fp16.safetensors weights
}


def build_tiny(name: str, out_dir: str | Path) -> Path:
    """Write the tiny random model ``name`` into ``out_dir`` (created) and return the folder."""
    if name not in BUILDERS:
        raise KeyError(f"no tiny model {name!r}; known: {', '.join(BUILDERS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = BUILDERS[name](out)
    log.info("tiny model %s written to %s", name, path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: python {sys.argv[0]} NAME OUT_DIR   (NAME: {', '.join(BUILDERS)})")
    print(build_tiny(sys.argv[1], sys.argv[2]))
