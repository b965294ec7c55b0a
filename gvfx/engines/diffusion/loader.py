"""Load an image stack once per process and hand out its pipelines, one per mode.

``load_image_stack(root, manifest, runtime)`` checks the folder against the manifest (store.py: every
component present, no pickle without permission, no ControlNet/IP-Adapter for another base model),
loads each component from its folder with the Hugging Face libraries forced offline, builds the
``element`` pipeline, loads the IP-Adapter into it, and builds the other modes' pipelines from the same
components (``from_pipe``: no second copy of any weight). The result is cached by (stack folder,
device, dtype, memory plan): every frame and every job of a worker process reuses it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gvfx.engines.diffusion.runtime import Runtime
from gvfx.engines.diffusion.stacks import StackManifest
from gvfx.engines.diffusion.stacks import variant_name
from gvfx.engines.diffusion.store import check_stack, component_hashes, config_mismatch, offline, resolve_variant
from gvfx.errors import EngineError, InputError

__all__ = ["ImageStack", "load_image_stack", "clear_cache", "load_count"]

log = logging.getLogger(__name__)

_CACHE: dict[tuple, "ImageStack"] = {}
_LOCK = threading.Lock()
_LOADS = {"count": 0}
#: roles handed to the pipeline constructors under their own names
_PIPE_ROLES = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler",
               "controlnet", "image_encoder")


@dataclass
class ImageStack:
    """A loaded image stack: its components, per-mode pipelines and weights hashes."""

    manifest: StackManifest
    root: Path
    runtime: Runtime
    components: dict[str, Any]
    hashes: dict[str, str]
    has_ip_adapter: bool = False
    _pipes: dict[str, Any] = field(default_factory=dict)

    def pipeline(self, mode: str) -> Any:
        """The diffusers pipeline the manifest names for ``mode`` (``element``/``insert``/``refine``)."""
        if mode not in self.manifest.pipelines:
            raise EngineError(f"model stack {self.manifest.name!r} has no pipeline for mode {mode!r}",
                              hint=f"modes: {', '.join(self.manifest.pipelines)}")
        if mode not in self._pipes:
            base = self._pipes["element"]
            cls = _diffusers_class(self.manifest.pipelines[mode], self.manifest)
            self._pipes[mode] = self.runtime.apply(cls.from_pipe(base))
        return self._pipes[mode]


def _diffusers_class(name: str, manifest: StackManifest) -> type:
    import diffusers

    cls = getattr(diffusers, name.rpartition(".")[2], None)
    if cls is None:
        raise EngineError(f"model stack {manifest.name!r}: diffusers {diffusers.__version__} has no {name}",
                          path=manifest.path, hint="upgrade diffusers or fix the manifest's pipelines")
    return cls


def _component_class(path: str, manifest: StackManifest, role: str) -> type:
    module, _, attr = path.rpartition(".")
    if module.split(".")[0] not in ("diffusers", "transformers"):
        raise InputError(f"model stack {manifest.name!r}: component {role!r} class {path!r} is not a diffusers or "
                         f"transformers class", path=manifest.path)
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise EngineError(f"model stack {manifest.name!r}: component {role!r} class {path} not found ({exc})",
                          path=manifest.path) from None


def _load_component(manifest: StackManifest, root: Path, role: str, runtime: Runtime, allow_pickle: bool,
                    variant: str = "auto") -> Any:
    comp = manifest.components[role]
    cls = _component_class(comp.cls, manifest, role)
    folder = root / comp.folder
    kwargs: dict[str, Any] = {}
    if role.startswith(("unet", "vae", "text_encoder", "controlnet", "image_encoder")):
        # transformers 5 takes dtype=, diffusers torch_dtype=
        kwargs["dtype" if cls.__module__.startswith("transformers") else "torch_dtype"] = runtime.torch_dtype
        kwargs["use_safetensors"] = None if allow_pickle else True
        v = resolve_variant(manifest, root, role, variant, runtime.dtype)
        if v:
            kwargs["variant"] = v
    try:
        return cls.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise EngineError(f"model stack {manifest.name!r}: component {role!r} failed to load from {comp.folder}/: "
                          f"{str(exc).splitlines()[0]}", path=root,
                          hint=f"run `gvfx models verify {manifest.name}`") from exc


def load_image_stack(root: str | Path, manifest: StackManifest, runtime: Runtime, *,
                     allow_pickle: bool = False, variant: str = "auto") -> ImageStack:
    """The loaded stack (cached per process; see module doc). ``variant``: ``auto`` | ``fp16`` | ``full``
    (store.resolve_variant: which weight files each component loads)."""
    if manifest.kind != "image":
        raise EngineError(f"model stack {manifest.name!r} is a {manifest.kind} stack, not an image stack",
                          path=manifest.path)
    root = Path(root).expanduser().resolve()
    key = (str(root), runtime.key(), bool(allow_pickle), variant)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        check_stack(manifest, root, allow_pickle=allow_pickle)
        for role in manifest.components:
            problem = config_mismatch(manifest, root, role)
            if problem:
                raise InputError(f"model stack {manifest.name!r}: {problem}", path=root / manifest.components[role].folder,
                                 hint=f"use the {manifest.family} version of the {role}")
        stack = _load(root, manifest, runtime, allow_pickle, variant)
        _CACHE[key] = stack
        _LOADS["count"] += 1
        return stack


def _load(root: Path, manifest: StackManifest, runtime: Runtime, allow_pickle: bool, variant: str = "auto") -> ImageStack:
    from transformers import CLIPImageProcessor

    log.info("loading model stack %s from %s (%s %s)", manifest.name, root, runtime.device, runtime.dtype)
    comps: dict[str, Any] = {}
    with offline():
        for role in manifest.components:
            if role in _PIPE_ROLES:
                comps[role] = _load_component(manifest, root, role, runtime, allow_pickle, variant)
        kwargs = {r: comps[r] for r in _PIPE_ROLES if r in comps}
        if "image_encoder" in comps:
            n = int(comps["image_encoder"].config.image_size)
            kwargs["feature_extractor"] = CLIPImageProcessor(size={"shortest_edge": n},
                                                             crop_size={"height": n, "width": n})
        cls = _diffusers_class(manifest.pipelines["element"], manifest)
        if manifest.family == "sd15":
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        try:
            pipe = cls(**kwargs)
        except TypeError as exc:
            raise EngineError(f"model stack {manifest.name!r}: {cls.__name__} cannot be built from its components "
                              f"({exc})", path=manifest.path) from exc
        has_ip = "ip_adapter" in manifest.components and "image_encoder" in comps
        if has_ip:
            comp = manifest.components["ip_adapter"]
            weight = next(f for f in comp.files if f.endswith((".safetensors", ".bin")))
            if resolve_variant(manifest, root, "ip_adapter", variant, runtime.dtype):
                weight = variant_name(weight, "fp16")
            try:
                pipe.load_ip_adapter(str(root), subfolder=comp.folder, weight_name=weight, image_encoder_folder=None)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise EngineError(f"model stack {manifest.name!r}: IP-Adapter {comp.folder}/{weight} failed to load: "
                                  f"{str(exc).splitlines()[0]}", path=root,
                                  hint=f"run `gvfx models verify {manifest.name}`") from exc
    stack = ImageStack(manifest, root, runtime, comps, component_hashes(manifest, root), has_ip)
    stack._pipes["element"] = runtime.apply(pipe)
    return stack


def clear_cache() -> None:
    """Forget every loaded stack (tests; frees memory)."""
    with _LOCK:
        _CACHE.clear()


def load_count() -> int:
    """How many stacks this process has loaded (the benchmark checks one load serves N frames)."""
    return _LOADS["count"]
