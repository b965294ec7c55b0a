"""Where and how a stack runs: device, dtype and a memory plan, chosen once per process.

``choose_runtime`` picks the device (``cuda`` > ``mps`` > ``cpu`` unless told), the dtype (fp16 on a
GPU, fp32 on the CPU) and a :class:`MemoryPlan` from the GPU's *free* memory and the stack's family:
a 6-8 GB card gets attention slicing, VAE tiling and model CPU offload instead of an out-of-memory
failure; a card with room runs everything resident. ``Runtime.apply(pipe)`` puts a pipeline on the
device with that plan; ``guard_oom`` turns an out-of-memory error into one clear gvfx error saying
what to change.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator

from gvfx.errors import EngineError, InputError

__all__ = ["MemoryPlan", "Runtime", "choose_runtime", "plan_memory", "guard_oom", "DTYPES", "DEVICES"]

log = logging.getLogger(__name__)

DTYPES = ("auto", "fp16", "bf16", "fp32")
DEVICES = ("auto", "cuda", "mps", "cpu")
MEMORY = ("auto", "high", "medium", "low", "minimum")

#: GiB a family needs fully resident in fp16 at its default resolution (weights + activations, rough)
_NEED_GIB = {"sd15": 3.5, "sdxl": 9.0, "wan": 9.0, "animatediff": 6.0}
#: above this many pixels per side the VAE decodes/encodes in tiles (always on a plan with vae_tiling)
TILE_ABOVE_PX = 1024


@dataclass(frozen=True)
class MemoryPlan:
    """How to fit a stack in memory. ``offload``: ``none`` (all on the device), ``model`` (each
    component moved to the GPU only while it runs), ``sequential`` (layer by layer: slowest, smallest)."""

    level: str
    attention_slicing: bool = False
    vae_tiling: bool = False
    offload: str = "none"
    max_batch: int = 4
    reason: str = ""


def plan_memory(family: str, free_gib: float | None, dtype: str = "fp16", level: str = "auto") -> MemoryPlan:
    """The plan for ``family`` given ``free_gib`` of free GPU memory (``None``: CPU, memory is not the
    limit). ``level`` forces a plan: ``high`` | ``medium`` | ``low`` | ``minimum``."""
    if level not in MEMORY:
        raise InputError(f"memory plan {level!r} is unknown; one of {', '.join(MEMORY)}")
    need = _NEED_GIB.get(family, 6.0) * (2.0 if dtype == "fp32" else 1.0)
    if level == "auto":
        if free_gib is None:
            return MemoryPlan("high", max_batch=1, reason="cpu: memory is not the limit, batch 1 for speed")
        if free_gib >= 1.5 * need:
            level = "high"
        elif free_gib >= need:
            level = "medium"
        elif free_gib >= 0.45 * need:
            level = "low"
        else:
            level = "minimum"
        reason = f"{free_gib:.1f} GiB free, {family} needs ~{need:.1f} GiB resident"
    else:
        reason = f"forced {level}"
    return {
        "high": MemoryPlan("high", max_batch=4, reason=reason),
        "medium": MemoryPlan("medium", attention_slicing=True, vae_tiling=True, max_batch=2, reason=reason),
        "low": MemoryPlan("low", attention_slicing=True, vae_tiling=True, offload="model", max_batch=1,
                          reason=reason),
        "minimum": MemoryPlan("minimum", attention_slicing=True, vae_tiling=True, offload="sequential",
                              max_batch=1, reason=reason),
    }[level]


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
        if self.plan.attention_slicing and hasattr(pipe, "enable_attention_slicing"):
            pipe.enable_attention_slicing()
        vae = getattr(pipe, "vae", None)
        if self.plan.vae_tiling and vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if self.plan.offload == "model" and self.device == "cuda":
            pipe.enable_model_cpu_offload(device=self.device)
        elif self.plan.offload == "sequential" and self.device == "cuda":
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


def _free_gib(device: str) -> float | None:
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


def choose_runtime(family: str, *, device: str = "auto", dtype: str = "auto", memory: str = "auto") -> Runtime:
    """The runtime for a stack of ``family`` (see module doc); every argument may force a choice."""
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
        dtype = "fp32" if device == "cpu" else "fp16"
    if device == "cpu" and dtype == "fp16":
        raise InputError("dtype fp16 on the CPU is unsupported by many kernels",
                         hint="use dtype fp32 (default on CPU) or bf16")
    plan = plan_memory(family, _free_gib(device), dtype, memory)
    log.info("diffusion runtime: %s %s, memory plan %s (%s)", device, dtype, plan.level, plan.reason)
    return Runtime(device, dtype, plan)


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())) or isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@contextlib.contextmanager
def guard_oom(stack: str, runtime: Runtime, width: int, height: int) -> Iterator[None]:
    """Turn an out-of-memory error into an :class:`EngineError` naming the stack and what to change."""
    try:
        yield
    except Exception as exc:
        if not _is_oom(exc):
            raise
        with contextlib.suppress(Exception):
            import torch

            if runtime.device == "cuda":
                torch.cuda.empty_cache()
        lower = {"high": "medium", "medium": "low", "low": "minimum"}.get(runtime.plan.level)
        hint = (f"lower model_resolution (now {width}x{height})"
                + (f", set memory: {lower} (plan is {runtime.plan.level})" if lower else "")
                + (", use dtype fp16" if runtime.dtype == "fp32" and runtime.device != "cpu" else "")
                + ", or close other programs using the GPU")
        raise EngineError(f"model stack {stack!r} ran out of memory on {runtime.device} ({runtime.dtype}) "
                          f"at {width}x{height}", hint=hint) from exc
