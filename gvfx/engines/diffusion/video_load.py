"""Loading a video stack (Wan 2.1 VACE, AnimateDiff + depth ControlNet + IP-Adapter) from its local
folder: every component checked by the store first, offline, safetensors only unless ``allow_pickle``.
``gvfx.engines.diffusion.video`` re-exports :func:`load_video_stack`; running is there."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gvfx.engines.diffusion.runtime import Runtime
from gvfx.engines.diffusion.stacks import StackManifest, variant_name
from gvfx.engines.diffusion.store import check_stack, offline, resolve_variant
from gvfx.errors import EngineError, InputError

__all__ = ["LoadedVideoStack", "load_video_stack", "clear_cache"]

log = logging.getLogger(__name__)

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
