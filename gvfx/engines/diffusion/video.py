"""Video stacks: Wan 2.1 VACE and AnimateDiff + depth ControlNet + IP-Adapter, with depth control.

The diffusion engine calls two functions (contract in ``gvfx.engines.diffusion.stacks``):

* :func:`load_video_stack` loads a stack folder once per (folder, stack, device, dtype): every component
  checked by the store first (a missing component or pickled-only weights is an ``InputError`` naming
  it), loaded from the local folder only, offline, safetensors only unless ``allow_pickle``.
* :func:`run_video` generates ``T`` frames in overlapping windows (``video_windows``), same seed in
  every window, consecutive windows cross-faded over their shared frames.

What each mode asks of the model (depth is always the control, as inverse-depth frames):

=========  ===============================================  ==============================================
mode       Wan VACE (``WanVACEPipeline``)                   AnimateDiff (+ ControlNet, IP-Adapter)
=========  ===============================================  ==============================================
element    control video = proxy depth, mask = all;          text-to-video with depth control; the
           reference image as a VACE reference; the prompt   reference through the IP-Adapter; same
           asks for a plain neutral background (the caller   background prompt
           pulls the matte)
insert     video = plate outside the mask, depth inside;     video-to-video at ``strength`` with depth
           mask = the insert mask (VACE keeps the rest);      control; after every step the latents
           ``strength < 1`` starts from the plate's latents   outside the mask are reset to the plate's
                                                              (noised to that step): latent blending
refine     control = plate depth, mask = all; the schedule   video-to-video at ``strength`` with depth
           starts part-way (``strength``) from the plate's   control
           latents
=========  ===============================================  ==============================================

Arrays: frames ``(T, H, W, 3)`` float32 display-referred 0..1; depth ``(T, H, W)`` metric Z, ``inf`` =
sky; mask ``(T, H, W)`` 0..1, 1 = regenerate. Frames are resized to the stack's
``resolution_multiple`` for the model and back.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gvfx.engines.diffusion.runtime import Runtime, check_finite
from gvfx.engines.diffusion.stacks import MODES, StackManifest, variant_name
from gvfx.engines.diffusion.store import check_stack, offline, resolve_variant
from gvfx.engines.diffusion.video_windows import (crossfade_into, depth_to_control, pad_frames, plan_windows,
                                                  resize_frames, to_uint8, working_size)
from gvfx.errors import CancelledError, EngineError, InputError

__all__ = ["LoadedVideoStack", "load_video_stack", "run_video", "clear_cache", "ELEMENT_BACKGROUND_PROMPT",
           "REFERENCE_SCALE"]

log = logging.getLogger(__name__)

#: appended to element prompts that do not mention a background: the caller keys the element off it
ELEMENT_BACKGROUND_PROMPT = "isolated on a plain flat neutral grey studio background"
#: IP-Adapter scale when a reference image is given (0 without one)
REFERENCE_SCALE = 0.6
#: AnimateDiff's recommended DDIM settings, applied over the SD 1.5 scheduler config
_ANIMATEDIFF_SCHEDULER = {"beta_schedule": "linear", "clip_sample": False, "timestep_spacing": "linspace",
                          "steps_offset": 1}
#: the libraries component classes may come from (a manifest cannot name anything else)
_CLASS_MODULES = ("diffusers", "transformers")

_CACHE: dict[tuple[Any, ...], "LoadedVideoStack"] = {}
#: the variant rule of the load in progress (``store.resolve_variant``); set by load_video_stack
_VARIANT: dict[str, str] = {"v": "auto"}


@dataclass
class LoadedVideoStack:
    """A loaded video stack: its pipelines (``element``, and ``video`` for video-to-video on AnimateDiff)
    sharing one set of modules on ``runtime.device``."""

    manifest: StackManifest
    stack_dir: Path
    runtime: Runtime
    pipes: dict[str, Any]
    has_reference: bool  # the stack can take a reference image (VACE always; AnimateDiff with IP-Adapter)
    max_window: int | None = None  # frames the model can see at once (AnimateDiff's motion positions)
    #: Wan needs 4k+1 frames per call: (multiple, remainder)
    frame_rule: tuple[int, int] = (1, 0)

    @property
    def family(self) -> str:
        return self.manifest.family


def clear_cache() -> None:
    """Forget every loaded stack (the next :func:`load_video_stack` loads again)."""
    _CACHE.clear()


# --------------------------------------------------------------------------------------------- loading


def load_video_stack(stack_dir: Path, manifest: StackManifest, *, runtime: Runtime,
                     allow_pickle: bool = False, variant: str = "auto") -> LoadedVideoStack:
    """Load the video stack in ``stack_dir`` described by ``manifest`` (``kind: video``) onto
    ``runtime``; cached per (folder, stack, device, dtype, memory plan, allow_pickle)."""
    if manifest.kind != "video" or manifest.family not in _LOADERS:
        raise EngineError(f"model stack {manifest.name!r} is a {manifest.kind} stack of family "
                          f"{manifest.family!r}; the video loader takes families {', '.join(_LOADERS)}")
    stack_dir = Path(stack_dir)
    key = (str(stack_dir.resolve()), manifest.name, *runtime.key(), allow_pickle, variant)
    if key in _CACHE:
        return _CACHE[key]
    folders = check_stack(manifest, stack_dir, allow_pickle=allow_pickle)
    for role, folder in folders.items():
        _check_shards(manifest, role, folder)
    with offline():
        _VARIANT["v"] = variant
        loaded = _LOADERS[manifest.family](stack_dir, manifest, folders, runtime, allow_pickle)
    log.info("video stack %s loaded from %s on %s (%s)", manifest.name, stack_dir, runtime.device, runtime.dtype)
    _CACHE[key] = loaded
    return loaded


def _check_shards(manifest: StackManifest, role: str, folder: Path) -> None:
    """Every shard a ``*.index.json`` of the component names must be there (the store checks the index)."""
    for f in manifest.components[role].files:
        if not f.endswith(".index.json") or not (folder / f).is_file():
            continue
        try:
            shards = sorted(set(json.loads((folder / f).read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"model stack {manifest.name!r}: component {role!r} has an unreadable {f}",
                             path=folder) from None
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise InputError(f"model stack {manifest.name!r}: component {role!r} is missing shard(s) "
                             f"{', '.join(missing)} named in {f}", path=folder,
                             hint=f"fetch every file of {manifest.components[role].source or 'the source'}")


def _component_class(manifest: StackManifest, role: str) -> Any:
    """The class a manifest names for ``role`` (``diffusers.X`` / ``transformers.X`` only)."""
    path = manifest.components[role].cls
    module, _, name = path.rpartition(".")
    if module.split(".")[0] not in _CLASS_MODULES:
        raise InputError(f"model stack {manifest.name!r}: component {role!r} class {path!r} is not from "
                         f"{' or '.join(_CLASS_MODULES)}", path=manifest.path)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise InputError(f"model stack {manifest.name!r}: component {role!r} class {path!r} does not exist "
                         f"in this diffusers/transformers", path=manifest.path,
                         hint="update diffusers/transformers or fix the manifest") from None


def _load(manifest: StackManifest, folders: dict[str, Path], role: str, *, dtype: Any = None,
          allow_pickle: bool = False, **overrides: Any) -> Any:
    """``from_pretrained`` of one component from its local folder (offline, no remote code)."""
    cls = _component_class(manifest, role)
    kwargs: dict[str, Any] = {"local_files_only": True}
    module = cls.__module__.split(".")[0]
    if dtype is not None:  # models (tokenizers and schedulers take no dtype)
        kwargs["use_safetensors"] = None if allow_pickle else True
        kwargs["torch_dtype" if module == "diffusers" else "dtype"] = dtype
        half = {"torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(dtype), "fp32")
        v = resolve_variant(manifest, folders[role].parents[len(Path(manifest.components[role].folder).parts) - 1],
                            role, _VARIANT["v"], half)
        if v:
            kwargs["variant"] = v
    kwargs.update(overrides)
    try:
        return cls.from_pretrained(str(folders[role]), **kwargs)
    except ImportError as exc:  # e.g. accelerate for models with fp32-kept layers
        raise EngineError(f"model stack {manifest.name!r}: loading {role!r} needs a missing package: {exc}",
                          path=folders[role], hint="pip install accelerate") from exc
    except (OSError, ValueError) as exc:
        raise EngineError(f"model stack {manifest.name!r}: component {role!r} did not load: {exc}",
                          path=folders[role]) from exc


def _load_wan(stack_dir: Path, manifest: StackManifest, folders: dict[str, Path], runtime: Runtime,
              allow_pickle: bool) -> LoadedVideoStack:
    import torch
    from diffusers import WanVACEPipeline

    _require_packages(manifest, ("ftfy", "accelerate"))
    dtype = runtime.torch_dtype
    pipe = WanVACEPipeline(
        tokenizer=_load(manifest, folders, "tokenizer"),
        text_encoder=_load(manifest, folders, "text_encoder", dtype=dtype, allow_pickle=allow_pickle),
        vae=_load(manifest, folders, "vae", dtype=torch.float32, allow_pickle=allow_pickle),  # Wan's VAE in fp32
        scheduler=_load(manifest, folders, "scheduler"),
        transformer=_load(manifest, folders, "transformer", dtype=dtype, allow_pickle=allow_pickle),
    )
    runtime.apply(pipe)
    return LoadedVideoStack(manifest, stack_dir, runtime, {"element": pipe}, has_reference=True,
                            frame_rule=(pipe.vae_scale_factor_temporal, 1))


def _load_animatediff(stack_dir: Path, manifest: StackManifest, folders: dict[str, Path], runtime: Runtime,
                      allow_pickle: bool) -> LoadedVideoStack:
    from diffusers import AnimateDiffControlNetPipeline, AnimateDiffVideoToVideoControlNetPipeline

    dtype = runtime.torch_dtype
    models = {role: _load(manifest, folders, role, dtype=dtype, allow_pickle=allow_pickle)
              for role in ("unet", "vae", "text_encoder", "motion_adapter", "controlnet")}
    pipe = AnimateDiffControlNetPipeline(  # builds the motion UNet from unet + motion_adapter
        tokenizer=_load(manifest, folders, "tokenizer"),
        scheduler=_load(manifest, folders, "scheduler", **_ANIMATEDIFF_SCHEDULER), **models)
    has_reference = "ip_adapter" in folders and "image_encoder" in folders
    if has_reference:
        ip, enc = manifest.components["ip_adapter"], manifest.components["image_encoder"]
        root = stack_dir / Path(ip.folder).parent
        names = [n for f in ip.weight_files for n in (f, variant_name(f, "fp16"))]
        weight = next((f for f in names if (folders["ip_adapter"] / f).is_file()), None)
        if weight is None and allow_pickle:  # check_stack let a pickled sibling through
            weight = next(p.name for p in folders["ip_adapter"].iterdir() if p.suffix in (".bin", ".pt", ".pth"))
        try:
            pipe.load_ip_adapter(str(root), subfolder=Path(ip.folder).name, weight_name=weight,
                                 image_encoder_folder=str(Path(enc.folder).relative_to(Path(ip.folder).parent)),
                                 local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise EngineError(f"model stack {manifest.name!r}: the IP-Adapter did not load: {exc}",
                              path=folders["ip_adapter"]) from exc
    else:
        log.warning("video stack %s has no IP-Adapter: reference images are ignored", manifest.name)
    runtime.apply(pipe)
    video_pipe = AnimateDiffVideoToVideoControlNetPipeline(**pipe.components)  # same modules, video input
    video_pipe.set_progress_bar_config(disable=True)
    max_window = int(getattr(pipe.motion_adapter.config, "motion_max_seq_length", 32))
    return LoadedVideoStack(manifest, stack_dir, runtime, {"element": pipe, "video": video_pipe},
                            has_reference=has_reference, max_window=max_window)


def _require_packages(manifest: StackManifest, names: tuple[str, ...]) -> None:
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise EngineError(f"model stack {manifest.name!r} needs the Python package(s) {', '.join(missing)}",
                          hint=f"pip install {' '.join(missing)}")


_LOADERS: dict[str, Callable[..., LoadedVideoStack]] = {"wan": _load_wan, "animatediff": _load_animatediff}


# ------------------------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class _Window:
    """One window's inputs at the model's working size: frames, control and mask are ``n`` frames."""

    mode: str
    frames: np.ndarray  # (n, h, w, 3) 0..1
    control: np.ndarray  # (n, h, w, 3) 0..1 inverse depth
    mask: np.ndarray | None  # (n, h, w) 0..1
    reference: Any  # PIL image | None
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    strength: float
    guidance: float
    control_scale: float = 1.0
    ip_scale: float = REFERENCE_SCALE
    first: int = 0  # index of the window's first frame in the shot

    @property
    def where(self) -> str:
        return f"frames {self.first}-{self.first + len(self.frames) - 1} (shot indices)"


def run_video(loaded: LoadedVideoStack, *, mode: str, frames_rgb: np.ndarray, depth: np.ndarray,
              mask: np.ndarray | None, reference_rgb: np.ndarray | None, prompt: str, negative_prompt: str,
              seed: int, steps: int, strength: float, guidance: float, window: int, overlap: int,
              callback: Callable[[int, int], None] | None = None,
              cancel: Callable[[], bool] | None = None, control_scale: float = 1.0,
              ip_scale: float = REFERENCE_SCALE) -> np.ndarray:
    """Generate ``(T, H, W, 3)`` float32 0..1 frames for ``mode`` (see the module doc) in windows of
    ``window`` frames sharing ``overlap`` frames. ``callback(done, total)`` after every denoising step;
    ``cancel()`` is asked before every window and after every step and raises :class:`CancelledError`.
    ``control_scale``: depth control strength (ControlNet / VACE context scale); ``ip_scale``: the
    reference image's strength (AnimateDiff's IP-Adapter scale; Wan takes a VACE reference image at full
    weight, so for Wan any ``ip_scale`` > 0 passes the reference and 0 drops it)."""
    _check_inputs(loaded, mode, frames_rgb, depth, mask, reference_rgb, steps, strength, window, overlap)
    n_frames, height, width = frames_rgb.shape[:3]
    size = working_size(height, width, loaded.manifest.resolution_multiple)
    frames = resize_frames(np.clip(frames_rgb, 0.0, 1.0).astype(np.float32), size)
    control = resize_frames(depth_to_control(depth), size)
    mask_w = resize_frames(np.clip(mask, 0.0, 1.0).astype(np.float32), size) if mask is not None else None
    reference = _reference_image(loaded, reference_rgb)
    if mode == "element" and "background" not in prompt.lower():
        prompt = f"{prompt}, {ELEMENT_BACKGROUND_PROMPT}" if prompt.strip() else ELEMENT_BACKGROUND_PROMPT

    windows = plan_windows(n_frames, window, overlap)
    per_window = _steps_run(loaded, mode, steps, strength)
    total = per_window * len(windows)
    done = 0

    def on_step() -> None:
        nonlocal done
        done += 1
        if callback is not None:
            callback(done, total)
        if cancel is not None and cancel():
            raise CancelledError(f"video generation cancelled at step {done}/{total}")

    runner = _RUNNERS[loaded.family]
    out: np.ndarray | None = None
    log.info("%s %s: %d frames at %dx%d in %d window(s) of %d (overlap %d), %d steps each",
             loaded.manifest.name, mode, n_frames, size[1], size[0], len(windows), window, overlap, per_window)
    for start, end in windows:
        if cancel is not None and cancel():
            raise CancelledError(f"video generation cancelled before frame {start}")
        job = _Window(mode, frames[start:end], control[start:end], None if mask_w is None else mask_w[start:end],
                      reference, prompt, negative_prompt, seed, steps, strength, guidance,
                      float(control_scale), float(ip_scale), start)
        result = runner(loaded, job, on_step)
        out = crossfade_into(out, result, start)
    assert out is not None
    return np.clip(resize_frames(out, (height, width)), 0.0, 1.0).astype(np.float32)


def _check_inputs(loaded: LoadedVideoStack, mode: str, frames: np.ndarray, depth: np.ndarray,
                  mask: np.ndarray | None, reference: np.ndarray | None, steps: int, strength: float,
                  window: int, overlap: int) -> None:
    """Every bad argument becomes an :class:`InputError` before any work."""
    if mode not in MODES:
        raise InputError(f"video mode {mode!r} is unknown; one of {', '.join(MODES)}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise InputError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if depth.shape != frames.shape[:3]:
        raise InputError(f"depth must be (T, H, W) = {frames.shape[:3]}, got {depth.shape}")
    if mode == "insert" and mask is None:
        raise InputError("insert mode needs a mask (1 = regenerate)")
    if mask is not None and mask.shape != frames.shape[:3]:
        raise InputError(f"mask must be (T, H, W) = {frames.shape[:3]}, got {mask.shape}")
    if reference is not None and (reference.ndim != 3 or reference.shape[-1] != 3):
        raise InputError(f"reference image must be (h, w, 3), got {reference.shape}")
    if steps < 1:
        raise InputError(f"steps is {steps}; at least 1")
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength is {strength}; in (0, 1]")
    if mode != "element" and int(steps * strength) < 1:
        raise InputError(f"strength {strength} x steps {steps} leaves no denoising step",
                         hint="raise steps or strength")
    plan_windows(frames.shape[0], window, overlap)  # raises on a bad window/overlap
    if loaded.max_window is not None and min(window, frames.shape[0]) > loaded.max_window:
        raise InputError(f"window is {window} frames; {loaded.manifest.name} sees at most {loaded.max_window}",
                         hint=f"set window <= {loaded.max_window}")


def _steps_run(loaded: LoadedVideoStack, mode: str, steps: int, strength: float) -> int:
    """Denoising steps one window runs (video-to-video skips the first ``1 - strength`` of the schedule)."""
    if mode == "element" or (loaded.family == "wan" and mode == "insert" and strength >= 1.0):
        return steps
    return int(steps * strength)


def _reference_image(loaded: LoadedVideoStack, reference_rgb: np.ndarray | None) -> Any:
    from PIL import Image

    if reference_rgb is None:
        return None
    if not loaded.has_reference:
        log.warning("%s cannot take a reference image (no IP-Adapter): ignored", loaded.manifest.name)
        return None
    return Image.fromarray(to_uint8(reference_rgb))


def _pil_frames(frames: np.ndarray) -> list[Any]:
    """``(n, h, w, 3)`` or ``(n, h, w)`` 0..1 to PIL RGB / L images (what the pipelines preprocess)."""
    from PIL import Image

    return [Image.fromarray(f) for f in to_uint8(frames)]


def _step_callback(on_step: Callable[[], None], loaded: LoadedVideoStack | None = None,
                   job: "_Window | None" = None) -> Callable[..., dict]:
    def callback_on_step_end(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
        if loaded is not None and job is not None:
            check_finite(kwargs.get("latents"), loaded.manifest.name, loaded.runtime, job.where, i + 1)
        on_step()
        return {}
    return callback_on_step_end


# ---------------------------------------------------------------------------------------------- Wan VACE


def _run_wan(loaded: LoadedVideoStack, job: _Window, on_step: Callable[[], None]) -> np.ndarray:
    """One window through ``WanVACEPipeline``; returns ``(n, h, w, 3)``."""
    pipe = loaded.pipes["element"]
    n = len(job.frames)
    multiple, remainder = loaded.frame_rule
    n_model = n + (remainder - n) % multiple  # 4k+1 frames: repeat the last frame, drop it after
    frames, control = pad_frames(job.frames, n_model), pad_frames(job.control, n_model)
    height, width = frames.shape[1:3]
    if job.mode == "insert":  # VACE composition: plate kept outside the mask, depth control inside
        m = (pad_frames(job.mask, n_model) > 0.5).astype(np.float32)
        video, vace_mask = frames * (1.0 - m[..., None]) + control * m[..., None], m
    else:
        video, vace_mask = control, np.ones((n_model, height, width), np.float32)
    generator = loaded.runtime.generator(job.seed)
    latents = None
    if job.mode == "refine" or (job.mode == "insert" and job.strength < 1.0):
        pipe, latents = _wan_from_plate(pipe, frames, job, generator)
    reference = job.reference if job.ip_scale > 0 else None
    result = pipe(prompt=job.prompt, negative_prompt=job.negative_prompt, video=_pil_frames(video),
                  mask=_pil_frames(vace_mask), reference_images=reference, conditioning_scale=job.control_scale,
                  height=height, width=width,
                  num_frames=n_model, num_inference_steps=job.steps, guidance_scale=job.guidance,
                  generator=generator, latents=latents, output_type="np",
                  callback_on_step_end=_step_callback(on_step, loaded, job))
    return np.asarray(result.frames[0][:n], dtype=np.float32)


def _wan_from_plate(pipe: Any, frames: np.ndarray, job: _Window, generator: Any) -> tuple[Any, Any]:
    """Video-to-video for VACE: a pipeline whose scheduler runs only the last ``strength`` of the
    schedule, and start latents = the plate's (and reference's) latents noised to that point,
    ``(1 - sigma) x0 + sigma noise`` (flow matching)."""
    import torch
    from diffusers import WanVACEPipeline

    scheduler = _truncated_scheduler(pipe.scheduler, job.strength)
    scheduler.set_timesteps(job.steps, device=pipe._execution_device)
    sigma = float(scheduler.sigmas[0])
    height, width = frames.shape[1:3]
    with torch.no_grad():
        # the pipeline's own preprocessing and encoder; a zero mask makes the plate the "kept" half
        video, zero_mask, refs = pipe.preprocess_conditions(
            _pil_frames(frames), _pil_frames(np.zeros(frames.shape[:3], np.float32)), job.reference, 1, height,
            width, len(frames), torch.float32, pipe._execution_device)
        x0 = pipe.prepare_video_latents(video, zero_mask, refs, generator, pipe._execution_device)
        x0 = x0[:, : pipe.transformer.config.in_channels].float()
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(x0.device)
        latents = (1.0 - sigma) * x0 + sigma * noise
    components = {k: v for k, v in pipe.components.items() if k in ("tokenizer", "text_encoder", "vae",
                                                                      "transformer", "transformer_2")}
    run = WanVACEPipeline(**components, scheduler=scheduler, boundary_ratio=pipe.config.boundary_ratio)
    run.set_progress_bar_config(disable=True)
    return run, latents


def _truncated_scheduler(scheduler: Any, strength: float) -> Any:
    """A copy of ``scheduler`` whose ``set_timesteps(n)`` keeps only the last ``int(n * strength)`` steps
    (timesteps and sigmas together), the img2img convention, for pipelines that always start at the
    first timestep they are given."""
    base = type(scheduler)

    class Truncated(base):  # type: ignore[misc, valid-type]
        def set_timesteps(self, num_inference_steps: int | None = None, *args: Any, **kwargs: Any) -> None:
            super().set_timesteps(num_inference_steps, *args, **kwargs)
            total = len(self.timesteps)
            keep = max(1, min(total, int(total * strength)))
            self.timesteps = self.timesteps[total - keep:]
            self.sigmas = self.sigmas[total - keep:]
            self.num_inference_steps = keep

    Truncated.__name__ = Truncated.__qualname__ = f"Truncated{base.__name__}"
    return Truncated.from_config(scheduler.config)


# ------------------------------------------------------------------------------------------- AnimateDiff


def _run_animatediff(loaded: LoadedVideoStack, job: _Window, on_step: Callable[[], None]) -> np.ndarray:
    """One window through AnimateDiff + depth ControlNet (+ IP-Adapter); returns ``(n, h, w, 3)``."""
    n, height, width = job.frames.shape[:3]
    common: dict[str, Any] = dict(
        prompt=job.prompt, negative_prompt=job.negative_prompt, height=height, width=width,
        num_inference_steps=job.steps, guidance_scale=job.guidance, generator=loaded.runtime.generator(job.seed),
        conditioning_frames=_pil_frames(job.control), controlnet_conditioning_scale=job.control_scale,
        output_type="np",
        callback_on_step_end=_step_callback(on_step, loaded, job))
    if loaded.has_reference:  # the IP-Adapter always wants an image: a grey one at scale 0 without reference
        from PIL import Image

        pipe = loaded.pipes["element"]
        pipe.set_ip_adapter_scale(job.ip_scale if job.reference is not None else 0.0)
        common["ip_adapter_image"] = (job.reference if job.reference is not None
                                      else Image.new("RGB", (224, 224), (128, 128, 128)))
    if job.mode == "element":
        result = loaded.pipes["element"](num_frames=n, **common)
    else:
        pipe = loaded.pipes["video"]
        if job.mode == "insert":
            common["callback_on_step_end"] = _latent_blend_callback(pipe, job, on_step, loaded)
        result = pipe(video=_pil_frames(job.frames), strength=job.strength, **common)
    return np.asarray(result.frames[0], dtype=np.float32)


def _latent_blend_callback(pipe: Any, job: _Window, on_step: Callable[[], None],
                           loaded: LoadedVideoStack) -> Callable[..., dict]:
    """After each step, latents outside the mask become the plate's latents noised to the next
    timestep (the plate itself after the last step): the model paints inside the mask only, in context."""
    import torch

    device, dtype = pipe._execution_device, pipe.vae.dtype
    with torch.no_grad():
        pixels = torch.from_numpy(job.frames).permute(0, 3, 1, 2).to(device, dtype) * 2.0 - 1.0
        plate = pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor  # (n, c, h, w)
        plate = plate.permute(1, 0, 2, 3)[None]  # (1, c, n, h, w): AnimateDiff's latent layout
        mask = torch.from_numpy(job.mask)[:, None].to(device, dtype)
        keep = torch.nn.functional.interpolate(mask, size=plate.shape[-2:], mode="area")  # 1 = generate
        keep = keep.permute(1, 0, 2, 3)[None]  # (1, 1, n, h, w)
    noise = torch.randn(plate.shape, generator=torch.Generator("cpu").manual_seed(job.seed + 1),
                        dtype=torch.float32).to(device, dtype)

    def callback_on_step_end(pipe_: Any, i: int, t: Any, kwargs: dict) -> dict:
        timesteps = pipe_.scheduler.timesteps
        index = int((timesteps == t).nonzero()[0, 0]) if (timesteps == t).any() else len(timesteps) - 1
        if index + 1 < len(timesteps):
            target = pipe_.scheduler.add_noise(plate, noise, timesteps[index + 1: index + 2])
        else:
            target = plate
        latents = kwargs["latents"]
        check_finite(latents, loaded.manifest.name, loaded.runtime, job.where, i + 1)
        on_step()
        return {"latents": keep * latents + (1.0 - keep) * target.to(latents.dtype)}
    return callback_on_step_end


_RUNNERS: dict[str, Callable[[LoadedVideoStack, _Window, Callable[[], None]], np.ndarray]] = {
    "wan": _run_wan, "animatediff": _run_animatediff}
