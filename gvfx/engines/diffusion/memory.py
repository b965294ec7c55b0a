"""GPU memory a stack needs under each memory plan, computed from its weight files, not from a table.

Weights: every component's files (the files on disk when the stack is installed, their dtype from the
safetensors header; else the manifest's ``size_bytes`` of the real checkpoint) give its parameter count (bytes / stored dtype), counted at the dtype
it runs in (the VAE of a video stack always fp32, as diffusers' Wan example loads it). Activations:
per family, GiB per megapixel of model output (and per frame the model sees at once for video), scaled
by the dtype — *computed* figures, checked against the peaks ``benchmarks/gpu_check.sh`` measures on a
real card. Plans:

* ``high``: everything resident, VAE untiled;  ``medium``: everything resident, VAE tiled;
* ``low``: model CPU offload: the largest stage (text/image encoders | denoiser + ControlNet | VAE) plus
  its activations;  ``minimum``: sequential offload: activations plus a layer's weights.

:func:`choose_plan` gives the first plan whose estimate fits ``free`` (with a 10 % margin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gvfx.engines.diffusion.stacks import Component, StackManifest, variant_name

__all__ = ["PLANS", "MemoryEstimate", "estimate", "choose_plan", "component_bytes", "disk_bytes"]

PLANS = ("high", "medium", "low", "minimum")
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
GIB = 2**30
#: roles that are on the GPU together under model offload (one stage at a time)
STAGES = {"encode": ("text_encoder", "text_encoder_2", "image_encoder"),
          "denoise": ("unet", "controlnet", "motion_adapter", "transformer", "ip_adapter"),
          "decode": ("vae",)}
#: family -> (denoiser GiB per output megapixel per frame, CFG batch included; VAE decode GiB per megapixel
#: per decoded frame; frames the VAE decodes at once), at 2 bytes per value
ACTIVATION = {"sd15": (2.3, 2.5, 1), "sdxl": (1.4, 2.5, 1), "animatediff": (2.3, 2.5, 16), "wan": (0.09, 0.75, 4)}
#: the 14B Wan transformer's activations per token relative to the 1.3B's (hidden 5120 vs 1536, FFN 13824 vs 8960)
WAN_14B_ACTIVATION = 3.3
#: pixels per side a tiled VAE decodes at once (diffusers' tile size: the VAE's sample_size)
VAE_TILE = {"sd15": 512, "sdxl": 1024, "animatediff": 512, "wan": 256}
#: CUDA context, cuDNN/cuBLAS workspaces and the allocator's slack, GiB
OVERHEAD_GIB = 0.6
#: a layer's share of the largest stage under sequential offload
LAYER_SHARE = 0.05
MARGIN = 1.1


@dataclass(frozen=True)
class MemoryEstimate:
    """GiB per plan for one stack at one dtype, size and frame count (see the module doc)."""

    stack: str
    dtype: str
    width: int
    height: int
    frames: int
    weights_gib: float  # every weight resident at its run dtype
    disk_gib: float  # the files loaded (installed: on disk; else the manifest's sizes)
    plans: dict[str, float]
    on_disk: bool = False  # disk_gib measured from installed files

    def fits(self, free_gib: float) -> str | None:
        """The first plan (high .. minimum) that fits ``free_gib``, else ``None``."""
        return next((p for p in PLANS if self.plans[p] * MARGIN <= free_gib), None)


def _weight_files(comp: Component, variant: str | None) -> list[tuple[str, str]]:
    """``(file, stored dtype)`` of the weights a load reads: the variant's files when the source publishes
    that variant, else the listed files."""
    out = []
    for f in comp.weight_files:
        if variant and variant in comp.variants:
            out.append((variant_name(f, variant), variant))
        else:
            out.append((f, comp.weights_dtype))
    return out


_ST_DTYPE = {"F32": "fp32", "F16": "fp16", "BF16": "bf16"}


def _stored_dtype(path: Path) -> str | None:
    """The dtype most of a safetensors file's tensors are stored in (its JSON header; no tensor read)."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(min(n, 1 << 26)))
    except (OSError, ValueError):
        return None
    counts: dict[str, int] = {}
    for k, v in header.items():
        if k != "__metadata__" and isinstance(v, dict) and v.get("dtype") in _ST_DTYPE:
            counts[v["dtype"]] = counts.get(v["dtype"], 0) + 1
    return _ST_DTYPE[max(counts, key=counts.get)] if counts else None


def _installed(comp: Component, folder: Path) -> tuple[int, str] | None:
    """``(bytes, stored dtype)`` of the component's weights in ``folder`` (variant or full files, shards
    of an index); ``None`` when none is there."""
    got = _installed_bytes(comp, folder)
    if got is None:
        return None
    total, first = got
    return total, (_stored_dtype(first) if first is not None and first.suffix == ".safetensors" else None) \
        or comp.weights_dtype


def _installed_bytes(comp: Component, folder: Path) -> tuple[int, Path | None] | None:
    """Bytes of the component's weights in ``folder`` and the first file, ``None`` when none is there."""
    total, found, first = 0, False, None
    names: list[str] = []
    for f in comp.files:
        for name in (f, variant_name(f, "fp16")):
            p = folder / name
            if not p.is_file():
                continue
            if name.endswith(".index.json"):
                try:
                    names += sorted(set(json.loads(p.read_text())["weight_map"].values()))
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    continue
            elif name.endswith((".safetensors", ".bin")):
                names.append(name)
            break
    for name in dict.fromkeys(names):
        p = folder / name
        if p.is_file():
            total += p.stat().st_size
            first = first or p
            found = True
    return (total, first) if found else None


def component_bytes(comp: Component, dtype: str) -> tuple[int, int]:
    """``(bytes in memory at dtype, bytes on disk)`` of a component from the manifest's ``size_bytes``
    (0, 0 when the manifest gives none). Half-precision runs read the fp16 variant when there is one."""
    sizes = comp.size_bytes or {}
    if not sizes:
        return 0, 0
    variant = "fp16" if dtype in ("fp16", "bf16") else None
    if "*" in sizes:
        stored = comp.weights_dtype
        disk = sizes["*"]
    else:
        files = _weight_files(comp, variant)
        disk = 0
        stored = comp.weights_dtype
        for f, st in files:
            if f in sizes:
                disk += sizes[f]
                stored = st
            else:  # the variant is not listed: the full file
                base = next((b for b in comp.weight_files if variant_name(b, variant) == f), f)
                disk += sizes.get(base, 0)
                stored = comp.weights_dtype
    params = disk / BYTES[stored]
    return int(params * BYTES[dtype]), int(disk)


def disk_bytes(manifest: StackManifest, root: Path | None, dtype: str) -> tuple[int, bool]:
    """Bytes of the stack's weights on disk: measured when installed in ``root``, else from the manifest."""
    total, measured = 0, False
    for comp in manifest.components.values():
        got = _installed_bytes(comp, Path(root) / comp.folder) if root is not None and Path(root).is_dir() else None
        if got is not None:
            total += got[0]
            measured = True
        else:
            total += component_bytes(comp, dtype)[1]
    return total, measured


def _run_dtype(manifest: StackManifest, role: str, dtype: str) -> str:
    if role == "vae" and manifest.kind == "video" and manifest.family == "wan":
        return "fp32"
    return dtype


def estimate(manifest: StackManifest, dtype: str = "bf16", width: int | None = None, height: int | None = None,
             frames: int | None = None, root: Path | None = None) -> MemoryEstimate:
    """GiB per plan for ``manifest`` at ``dtype`` producing ``width`` x ``height`` (default: the stack's
    default resolution) and ``frames`` frames at once (video: the window, default the stack's)."""
    w, h = width or manifest.default_resolution[0], height or manifest.default_resolution[1]
    n = 1 if manifest.kind == "image" else int(frames or manifest.window or 16)
    stage_w = {s: 0.0 for s in STAGES}
    installed = root is not None and Path(root).is_dir()
    for role, comp in manifest.components.items():
        run = _run_dtype(manifest, role, dtype)
        got = _installed(comp, Path(root) / comp.folder) if installed else None
        if got is not None:  # the files on disk, at the dtype they are stored in
            mem = got[0] / BYTES[got[1]] * BYTES[run]
        else:
            mem, _disk = component_bytes(comp, run)
        for stage, roles in STAGES.items():
            if role in roles:
                stage_w[stage] += mem / GIB
    weights = sum(stage_w.values())
    den_rate, vae_rate, vae_frames = ACTIVATION.get(manifest.family, (2.3, 2.5, 1))
    if manifest.family == "wan" and manifest.model_size.upper().startswith("14"):
        den_rate *= WAN_14B_ACTIVATION
    scale = BYTES[dtype] / 2
    vae_scale = BYTES[_run_dtype(manifest, "vae", dtype)] / 2
    mpx = w * h / 1e6
    tile = VAE_TILE.get(manifest.family, 512)
    decoded = min(n, vae_frames)
    a_den = den_rate * mpx * n * scale
    a_vae = vae_rate * mpx * decoded * vae_scale
    a_vae_tiled = vae_rate * min(mpx, tile * tile / 1e6) * decoded * vae_scale
    plans = {
        "high": weights + a_den + a_vae + OVERHEAD_GIB,
        "medium": weights + a_den + a_vae_tiled + OVERHEAD_GIB,
        "low": max(stage_w["encode"], stage_w["denoise"] + a_den, stage_w["decode"] + a_vae_tiled) + OVERHEAD_GIB,
        "minimum": max(a_den, a_vae_tiled) + LAYER_SHARE * max(stage_w.values()) + OVERHEAD_GIB,
    }
    disk, measured = disk_bytes(manifest, root, dtype)
    return MemoryEstimate(manifest.name, dtype, w, h, n, round(weights, 2), round(disk / GIB, 2),
                          {k: round(v, 2) for k, v in plans.items()}, measured)


def choose_plan(est: MemoryEstimate, free_gib: float | None) -> tuple[str, str]:
    """``(plan, reason)`` for ``free_gib`` of free GPU memory (``None``: the CPU, memory is not the limit)."""
    if free_gib is None:
        return "high", "cpu: memory is not the limit"
    plan = est.fits(free_gib)
    where = (f"{free_gib:.1f} GiB free; {est.stack} at {est.width}x{est.height}"
             + (f"x{est.frames} frames" if est.frames > 1 else "") + f" {est.dtype} needs ~"
             + ", ".join(f"{p} {est.plans[p]:.1f}" for p in PLANS) + " GiB (computed)")
    if plan is None:
        return "minimum", where + ": does not fit even at minimum, trying it anyway"
    return plan, where


def describe(manifest: StackManifest, root: Path | None, free_gib: float | None, dtype: str = "bf16") -> list[str]:
    """Lines for ``gvfx models list``: size on disk, computed GiB per plan at the default size and window,
    and the plan ``free_gib`` gets (``None``: the CPU)."""
    est = estimate(manifest, dtype, root=root)
    disk = f"{est.disk_gib:.1f} GiB on disk" if est.on_disk else f"{est.disk_gib:.1f} GiB to download"
    size = f"{est.width}x{est.height}" + (f"x{est.frames}f" if est.frames > 1 else "")
    per_plan = "  ".join(f"{p} {est.plans[p]:.1f}" for p in PLANS)
    plan, _reason = choose_plan(est, free_gib)
    if free_gib is None:
        gets = "cpu: high (memory is not the limit)"
    else:
        gets = f"{free_gib:g} GiB free -> {plan}" + ("" if est.fits(free_gib) else " (does not fit: expect out of memory)")
    label = f" ({manifest.model_size})" if manifest.model_size else ""
    return [f"weights{label}: {disk}, {est.weights_gib:.1f} GiB in memory at {dtype}",
            f"VRAM GiB at {size} {dtype} (computed): {per_plan}; {gets}"]
