"""``gvfx doctor``: check the installation and say, per problem, what to do.

Every check imports what it needs lazily and turns any failure into a ``FAIL``/``warn`` line with a
fix, never a traceback. Required checks failing make ``exit_code`` non-zero; warnings do not.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gvfx.config import models_dir_default

__all__ = ["Check", "run_doctor", "format_checks", "exit_code", "models_dir_default"]

log = logging.getLogger(__name__)

MIN_PYTHON = (3, 11)
#: low free space at the output root is a warning below this
MIN_FREE_GIB = 5.0


@dataclass
class Check:
    """One line of the report: ``ok``, or a failure that is ``required`` (FAIL) or not (warn)."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = True

    @property
    def status(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.required else "warn")


@dataclass(frozen=True)
class _Package:
    """A dependency: import name, distribution name (for pip and metadata), minimum version."""

    label: str
    module: str
    dist: str
    minimum: str
    required: bool = True
    why: str = ""


PACKAGES: tuple[_Package, ...] = (
    _Package("numpy", "numpy", "numpy", "2.0"),
    _Package("OpenImageIO", "OpenImageIO", "OpenImageIO", "3.0"),
    _Package("opentimelineio", "opentimelineio", "opentimelineio", "0.17"),
    _Package("usd-core", "pxr.Usd", "usd-core", "24.0"),
    _Package("torch", "torch", "torch", "2.4"),
    _Package("diffusers", "diffusers", "diffusers", "0.30"),
    _Package("transformers", "transformers", "transformers", "4.40"),
    _Package("safetensors", "safetensors", "safetensors", "0.4"),
    _Package("PySide6", "PySide6", "PySide6-Essentials", "6.6", required=False, why="needed only for the review UI"),
)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def _dist_version(pkg: _Package, module: object) -> str:
    for dist in (pkg.dist, pkg.label):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "unknown"))


def _check_python() -> Check:
    v = sys.version_info
    ok = (v.major, v.minor) >= MIN_PYTHON
    return Check("python", ok, f"{v.major}.{v.minor}.{v.micro} ({sys.executable})",
                 None if ok else f"use Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} (make a new virtualenv)")


def _check_package(pkg: _Package) -> Check:
    fix = f"pip install '{pkg.dist}>={pkg.minimum}'"
    try:
        module = importlib.import_module(pkg.module)
    except Exception as exc:  # ImportError, or a broken binary wheel raising anything
        why = f" ({pkg.why})" if pkg.why else ""
        return Check(pkg.label, False, f"cannot import {pkg.module}: {type(exc).__name__}: {exc}{why}", fix,
                     pkg.required)
    version = _dist_version(pkg, module)
    vt = _version_tuple(version)
    if vt and vt < _version_tuple(pkg.minimum):
        return Check(pkg.label, False, f"{version} is older than the required {pkg.minimum}", fix, pkg.required)
    return Check(pkg.label, True, version, None, pkg.required)


def _check_ocio() -> Check:
    fix = "unset $OCIO to use the built-in ACES config, or point it at a valid config.ocio"
    try:
        import OpenImageIO as oiio

        from gvfx import color
    except Exception as exc:
        return Check("ocio", False, f"cannot import OpenImageIO: {exc}", "pip install OpenImageIO")
    try:
        source = "$OCIO" if os.environ.get("OCIO", "").strip() else "built-in"
        name = color.config_name()
        acescg = color.resolve("ACEScg")
        ocio_version = oiio.get_string_attribute("opencolorio_version") or "unknown"
    except Exception as exc:
        return Check("ocio", False, str(exc), fix)
    return Check("ocio", True, f"OpenColorIO {ocio_version}, config {name} ({source}), ACEScg -> {acescg!r}")


def _check_torch_devices() -> Check:
    try:
        import torch
    except Exception as exc:
        return Check("devices", False, f"cannot import torch: {exc}", "pip install torch", required=False)
    parts = []
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                parts.append(f"cuda:{i} {props.name} {props.total_memory / 2**30:.1f} GiB")
    except Exception as exc:  # a broken driver must not stop the report
        parts.append(f"CUDA error: {exc}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        parts.append("mps")
    ram = ""
    try:
        ram = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    parts.append(f"cpu ({os.cpu_count()} cores{ram})")
    accel = any(p.startswith(("cuda:", "mps")) for p in parts)
    detail = ", ".join(parts) + ("" if accel else " — no GPU: generative engines will be slow")
    return Check("devices", True, detail, required=False)


def _check_models(models_dir: Path | None) -> Check:
    path = models_dir if models_dir is not None else models_dir_default()
    src = "given" if models_dir is not None else ("$GVFX_MODELS" if os.environ.get("GVFX_MODELS") else "default")
    if not path.exists():
        return Check("models", False, f"model store {path} ({src}) does not exist",
                     f"mkdir -p {path} and put model folders there, or set $GVFX_MODELS to your model store",
                     required=False)
    if not path.is_dir():
        return Check("models", False, f"model store {path} is not a folder", "set $GVFX_MODELS to a folder",
                     required=False)
    stacks = sorted(p.name for p in path.iterdir() if p.is_dir())
    listed = ", ".join(stacks[:8]) + (" ..." if len(stacks) > 8 else "")
    return Check("models", True, f"{path} ({src}): {len(stacks)} model folder(s)" + (f": {listed}" if stacks else ""),
                 required=False)


def _check_stacks(models_dir: Path | None) -> Check:
    """The diffusion stacks installed in the model store (``store.list_stacks``): a warning names every
    incomplete stack and every installed one holding non-commercial weights."""
    from gvfx.engines.diffusion.store import list_stacks

    stacks = list_stacks(models_dir)
    installed = [s for s in stacks if s.installed]
    incomplete = [s.name for s in stacks if not s.installed and s.folder.is_dir()]
    nc = [f"{s.name} ({', '.join(s.non_commercial)})" for s in installed if s.non_commercial]
    detail = (f"installed: {', '.join(s.name for s in installed)}" if installed else "no stack installed") + \
        f" ({len(stacks)} manifest(s))"
    if nc:
        return Check("stacks", False, detail + f"; NON-COMMERCIAL weights in {'; '.join(nc)}",
                     "not for paid work: replace those components with commercially licensed ones "
                     "(`gvfx models list` shows every licence)", required=False)
    if incomplete:
        return Check("stacks", False, detail + f"; incomplete: {', '.join(incomplete)}",
                     f"gvfx models verify {incomplete[0]} (says what is missing)", required=False)
    return Check("stacks", True, detail, required=False)


def _check_diffusion_plan(models_dir: Path | None) -> Check:
    """The device, dtype and memory plan the diffusion engine would choose here, per stack manifest
    (computed from the stacks' weight files and this machine's free GPU memory)."""
    import torch

    from gvfx.engines.diffusion.memory import choose_plan, estimate
    from gvfx.engines.diffusion.runtime import default_dtype, free_gib
    from gvfx.engines.diffusion.stacks import load_manifest, manifest_names
    from gvfx.engines.diffusion.store import stack_dir

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = default_dtype(device)
    free = free_gib(device)
    parts = []
    for name in manifest_names():
        m = load_manifest(name)
        plan, _ = choose_plan(estimate(m, dtype, root=stack_dir(m, models_dir)), free)
        parts.append(f"{name} {plan}")
    where = f"{device} {dtype}" + (f", {free:.1f} GiB free" if free is not None else " (memory is not the limit)")
    return Check("diffusion plan", True, f"{where}: " + ", ".join(parts), required=False)


def _check_disk(output_root: Path) -> Check:
    root = output_root.expanduser().absolute()
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return Check("disk", False, f"output root {root} is not writable (checked {probe})",
                     "choose an output folder you can write to")
    free_gib = shutil.disk_usage(probe).free / 2**30
    detail = f"{free_gib:.1f} GiB free at {root}"
    if free_gib < MIN_FREE_GIB:
        return Check("disk", False, detail + f" (less than {MIN_FREE_GIB:.0f} GiB)",
                     "free some space or write outputs elsewhere (EXR sequences need several GiB)", required=False)
    return Check("disk", True, detail)


def _repo_hosts() -> Path:
    return Path(__file__).resolve().parent.parent / "hosts"


def _check_nuke() -> Check:
    entries = [e for e in os.environ.get("NUKE_PATH", "").split(os.pathsep) if e.strip()]
    for e in entries:
        p = Path(e).expanduser()
        if p.is_dir() and p.parts[-2:] == ("hosts", "nuke"):
            return Check("nuke adapter", True, f"{p} is on NUKE_PATH", required=False)
    fix = f"add the gvfx hosts/nuke folder to NUKE_PATH, e.g. export NUKE_PATH={_repo_hosts() / 'nuke'}"
    where = "NUKE_PATH is not set" if not entries else "no hosts/nuke folder on NUKE_PATH"
    return Check("nuke adapter", False, f"not installed ({where})", fix, required=False)


def blender_extension_roots() -> list[Path]:
    """Folders holding Blender's extension repositories (``$BLENDER_USER_EXTENSIONS`` or per-platform)."""
    env = os.environ.get("BLENDER_USER_EXTENSIONS", "").strip()
    if env:
        return [Path(env).expanduser()]
    resources = os.environ.get("BLENDER_USER_RESOURCES", "").strip()
    if resources:  # Blender's other override: <resources>/extensions
        return [Path(resources).expanduser() / "extensions"]
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support" / "Blender"
    elif sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "Blender Foundation" / "Blender"
    else:
        cfg = os.environ.get("BLENDER_USER_CONFIG", "").strip()
        if cfg:  # <version>/config -> <version>/extensions
            return [Path(cfg).expanduser().parent / "extensions"]
        base = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "blender"
    return sorted(base.glob("*/extensions")) if base.is_dir() else []


def _check_blender() -> Check:
    found = [p for root in blender_extension_roots() if root.is_dir() for p in sorted(root.glob("*/gvfx"))
             if p.is_dir()]
    if found:
        return Check("blender adapter", True, "extension in " + ", ".join(str(p) for p in found), required=False)
    fix = ("in Blender: Edit > Preferences > Get Extensions > Install from Disk, and pick the gvfx extension "
           f"built from {_repo_hosts() / 'blender'}")
    return Check("blender adapter", False, "not installed (no gvfx extension in Blender's user extensions)", fix,
                 required=False)


def _safe(name: str, fn: Callable[[], Check], required: bool = True) -> Check:
    try:
        return fn()
    except Exception as exc:  # a doctor must report, never crash
        log.debug("doctor check %s raised", name, exc_info=True)
        return Check(name, False, f"check crashed: {type(exc).__name__}: {exc}",
                     "report this with the output of `gvfx doctor`", required)


def run_doctor(output_root: Path | None = None, models_dir: Path | None = None) -> list[Check]:
    """Run every check, in report order. ``output_root`` defaults to the current directory."""
    root = Path.cwd() if output_root is None else Path(output_root)
    checks = [_safe("python", _check_python)]
    checks += [_safe(p.label, lambda p=p: _check_package(p), p.required) for p in PACKAGES]
    checks += [
        _safe("ocio", _check_ocio),
        _safe("devices", _check_torch_devices, False),
        _safe("models", lambda: _check_models(models_dir), False),
        _safe("stacks", lambda: _check_stacks(models_dir), False),
        _safe("diffusion plan", lambda: _check_diffusion_plan(models_dir), False),
        _safe("disk", lambda: _check_disk(root)),
        _safe("nuke adapter", _check_nuke, False),
        _safe("blender adapter", _check_blender, False),
    ]
    return checks


def format_checks(checks: list[Check]) -> str:
    """One line per check: status, name, detail and (when not ok) the fix."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        line = f"{c.status:<4}  {c.name:<{width}}  {c.detail}"
        if not c.ok and c.fix:
            line += f"  -> fix: {c.fix}"
        lines.append(line)
    return "\n".join(lines)


def exit_code(checks: list[Check]) -> int:
    """1 when a required check failed, else 0 (warnings do not fail)."""
    return 1 if any(c.required and not c.ok for c in checks) else 0
