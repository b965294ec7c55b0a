"""Where and how a stack runs: device, dtype and a memory plan, chosen once per process.

``choose_runtime`` picks the device (``cuda`` > ``mps`` > ``cpu`` unless told), the dtype (bf16 on a
CUDA card that has it, else fp16 on a GPU, fp32 on the CPU) and a :class:`MemoryPlan` from the GPU's
*free* memory and the stack's computed needs (``memory.py``: its weight files, the resolution and the
frames): a card too small for everything resident gets VAE tiling, then model CPU offload, then
sequential offload, instead of an out-of-memory failure. No plan turns on attention slicing: PyTorch 2's
scaled-dot-product attention already gives its saving, and slicing replaces the IP-Adapter's attention
processors (the first call then fails). ``Runtime.apply(pipe)`` puts a pipeline on the device with
that plan; ``guard_oom`` turns an out-of-memory error (loading or running) into one clear gvfx error
naming the plan that would fit.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterator

from gvfx.errors import EngineError, InputError

__all__ = ["MemoryPlan", "Runtime", "choose_runtime", "plan_memory", "guard_oom", "DTYPES", "DEVICES",
           "default_dtype", "stack_estimate", "free_gib", "check_finite"]

log = logging.getLogger(__name__)

DTYPES = ("auto", "fp16", "bf16", "fp32")
DEVICES = ("auto", "cuda", "mps", "cpu")
MEMORY = ("auto", "high", "medium", "low", "minimum")

#: the stack whose manifest stands for a family when only the family is known
FAMILY_STACK = {"sd15": "sd15_depth_ip", "sdxl": "sdxl_depth_ip", "wan": "wan_vace", "animatediff": "animatediff_depth"}
#: above this many pixels per side the VAE decodes/encodes in tiles (always on a plan with vae_tiling)
TILE_ABOVE_PX = 1024


@dataclass(frozen=True)
class MemoryPlan:
    """How to fit a stack in memory. ``offload``: ``none`` (all on the device), ``model`` (each
    component moved to the GPU only while it runs), ``sequential`` (layer by layer: slowest, smallest)."""

    level: str
    vae_tiling: bool = False
    offload: str = "none"
    max_batch: int = 4
    reason: str = ""
    #: computed GiB per plan for the stack this plan was made for (empty: unknown)
    estimates: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


def plan_memory(stack: Any, free_gib: float | None, dtype: str = "fp16", level: str = "auto") -> MemoryPlan:
    """The plan for ``stack`` (a :class:`~gvfx.engines.diffusion.memory.MemoryEstimate`, or a family /
    stack name: its manifest at the default size) given ``free_gib`` of free GPU memory (``None``: CPU,
    memory is not the limit). ``level`` forces a plan: ``high`` | ``medium`` | ``low`` | ``minimum``."""
    from gvfx.engines.diffusion.memory import choose_plan

    if level not in MEMORY:
        raise InputError(f"memory plan {level!r} is unknown; one of {', '.join(MEMORY)}")
    est = stack_estimate(stack, dtype) if isinstance(stack, str) else stack
    if level == "auto":
        level, reason = choose_plan(est, free_gib)
        if free_gib is None:
            return MemoryPlan("high", max_batch=1, reason=reason + ", batch 1 for speed", estimates=est.plans)
    else:
        reason = f"forced {level}"
    return {
        "high": MemoryPlan("high", max_batch=4, reason=reason, estimates=est.plans),
        "medium": MemoryPlan("medium", vae_tiling=True, max_batch=2, reason=reason, estimates=est.plans),
        "low": MemoryPlan("low", vae_tiling=True, offload="model", max_batch=1, reason=reason, estimates=est.plans),
        "minimum": MemoryPlan("minimum", vae_tiling=True, offload="sequential", max_batch=1, reason=reason,
                              estimates=est.plans),
    }[level]


def stack_estimate(stack: str, dtype: str = "fp16", **kwargs: Any) -> Any:
    """:func:`gvfx.engines.diffusion.memory.estimate` of a stack by name or by family."""
    from gvfx.engines.diffusion.memory import estimate
    from gvfx.engines.diffusion.stacks import load_manifest

    return estimate(load_manifest(FAMILY_STACK.get(stack, stack)), "fp16" if dtype == "auto" else dtype, **kwargs)


@dataclass(frozen=True)
class Runtime:
    """Device, dtype and memory plan of this process (see module doc)."""

    device: str = "cpu"
    dtype: str = "fp32"
    plan: MemoryPlan = MemoryPlan("high", max_batch=1)

    @property
    def torch_dtype(self) -> Any:
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]

    def key(self) -> tuple[str, str, str]:
        return (self.device, self.dtype, self.plan.level)

    def apply(self, pipe: Any) -> Any:
        """Put ``pipe`` on the device following the plan; returns it."""
        vae = getattr(pipe, "vae", None)
        if self.plan.vae_tiling and vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if self.plan.offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif self.plan.offload == "sequential" and self.device != "cpu":
            # accelerate's layer-by-layer offload fails with the CPU as its execution device (transformers 5
            # text encoders); on the CPU there is nothing to offload to anyway
            pipe.enable_sequential_cpu_offload(device=self.device)
        elif self.device != "cpu":  # components are loaded on the CPU already
            pipe.to(self.device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return pipe

    def tile_vae(self, pipe: Any, width: int, height: int) -> None:
        """VAE tiling on for large images (or when the plan says so), off otherwise (tiling changes
        pixels slightly, so small images stay untiled)."""
        vae = getattr(pipe, "vae", None)
        if vae is None or not hasattr(vae, "enable_tiling"):
            return
        if self.plan.vae_tiling or max(width, height) > TILE_ABOVE_PX:
            vae.enable_tiling()
        else:
            vae.disable_tiling()

    def generator(self, seed: int) -> Any:
        """A CPU generator: the same seed gives the same noise on every device."""
        import torch

        return torch.Generator("cpu").manual_seed(int(seed))


def free_gib(device: str) -> float | None:
    import torch

    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return free / 2**30
    if device == "mps":
        try:
            rec = torch.mps.recommended_max_memory()
            return (rec - torch.mps.driver_allocated_memory()) / 2**30
        except Exception:  # older torch: assume a modest unified memory budget
            return 8.0
    return None


def default_dtype(device: str) -> str:
    """bf16 on a CUDA card that supports it (the dtype Wan was trained in, and the SDXL VAE does not
    overflow in it), fp16 on other GPUs, fp32 on the CPU."""
    import torch

    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp16" if device == "mps" else "fp32"


def choose_runtime(stack: Any, *, device: str = "auto", dtype: str = "auto", memory: str = "auto",
                   width: int | None = None, height: int | None = None, frames: int | None = None,
                   root: Any = None) -> Runtime:
    """The runtime for ``stack`` (a manifest, a stack name or a family; see module doc) producing
    ``width`` x ``height`` x ``frames`` at once; every argument may force a choice."""
    import torch

    if device not in DEVICES:
        raise InputError(f"device {device!r} is unknown; one of {', '.join(DEVICES)}")
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r} is unknown; one of {', '.join(DTYPES)}")
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but torch sees no CUDA GPU",
                         hint="set device: auto (or cpu), or install a CUDA build of torch")
    elif device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device mps was asked for but is not available", hint="set device: auto (or cpu)")
    if dtype == "auto":
        dtype = default_dtype(device)
    if device == "cpu" and dtype == "fp16":
        raise InputError("dtype fp16 on the CPU is unsupported by many kernels",
                         hint="use dtype fp32 (default on CPU) or bf16")
    from gvfx.engines.diffusion.memory import estimate

    kw = dict(width=width, height=height, frames=frames, root=root)
    est = estimate(stack, dtype, **kw) if hasattr(stack, "components") else stack_estimate(stack, dtype, **kw)
    plan = plan_memory(est, free_gib(device), dtype, memory)
    log.info("diffusion runtime: %s %s, memory plan %s (%s)", device, dtype, plan.level, plan.reason)
    return Runtime(device, dtype, plan)


def check_finite(latents: Any, stack: str, runtime: Runtime, where: str, step: int) -> None:
    """Raise a clear :class:`EngineError` when ``latents`` hold NaN or Inf (``where``: "frame 1001",
    "frames 1001-1016"): half precision overflowed, and every later step would only spread it."""
    import torch

    if latents is None or not torch.is_tensor(latents) or bool(torch.isfinite(latents).all()):
        return
    hint = ("run in bf16 (dtype: bf16, the default on cards that have it) or fp32" if runtime.dtype == "fp16"
            else "run in fp32 (dtype: fp32)") + "; with SDXL in fp16 use the fp16-fix VAE (madebyollin/sdxl-vae-fp16-fix)"
    raise EngineError(f"model stack {stack!r}: {where}: the latents hold NaN/Inf after denoising step {step} "
                      f"({runtime.dtype} on {runtime.device})", hint=hint)


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())) or isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def fitting_plan(runtime: Runtime) -> str | None:
    """The first plan whose computed need fits the device's free memory *now*, below the current plan."""
    order = ("high", "medium", "low", "minimum")
    below = order[order.index(runtime.plan.level) + 1:] if runtime.plan.level in order else ()
    free = None
    with contextlib.suppress(Exception):
        free = free_gib(runtime.device)
    est = runtime.plan.estimates
    if free is not None and est:
        fit = next((p for p in below if est.get(p, 1e9) * 1.1 <= free), None)
        if fit:
            return fit
    return below[0] if below else None


@contextlib.contextmanager
def guard_oom(stack: str, runtime: Runtime, width: int, height: int, what: str = "") -> Iterator[None]:
    """Turn an out-of-memory error into an :class:`EngineError` naming the stack, what ran out (``what``:
    loading, frames ...) and the plan that would fit."""
    try:
        yield
    except Exception as exc:
        if not _is_oom(exc):
            raise
        with contextlib.suppress(Exception):
            import torch

            if runtime.device == "cuda":
                torch.cuda.empty_cache()
        fit = fitting_plan(runtime)
        need = runtime.plan.estimates.get(fit) if fit else None
        hint = ((f"set memory: {fit} (plan is {runtime.plan.level}"
                 + (f"; {fit} is computed to need ~{need:.1f} GiB" if need else "") + "), ") if fit else "")
        hint += (f"lower model_resolution (now {width}x{height})"
                 + (", use dtype bf16/fp16" if runtime.dtype == "fp32" and runtime.device != "cpu" else "")
                 + ", or close other programs using the GPU")
        raise EngineError(f"model stack {stack!r} ran out of memory on {runtime.device} ({runtime.dtype}, plan "
                          f"{runtime.plan.level}) {what + ' ' if what else ''}at {width}x{height}", hint=hint) from exc
