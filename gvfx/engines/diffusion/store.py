"""The local model store: where stacks live, whether they are complete, and how a user adds one.

The store is a folder (``$GVFX_MODELS``, default ``~/.cache/gvfx/models`` as ``gvfx doctor`` says; the
element param ``models`` overrides it) holding one folder per stack (the manifest's ``folder``). gvfx never
downloads: the user fetches the files, ``gvfx models import PATH --as NAME`` copies or links a
diffusers-format folder into the store, ``gvfx models verify`` checks it.

Safety, enforced here and nowhere else:

* weights are ``.safetensors``; pickled ``.bin``/``.ckpt``/``.pt`` files are refused unless the caller
  passes ``allow_pickle=True`` (pickle can run code);
* ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``/``DIFFUSERS_OFFLINE`` are forced to 1 while loading
  (:func:`offline`), so a missing file is an error, never a download;
* gvfx never passes ``trust_remote_code`` to any loader.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from gvfx.engines.diffusion.stacks import (PICKLE_SUFFIXES, Component, StackManifest, load_manifest,
                                           manifest_names, variant_name)
from gvfx.engines.diffusion.hashcache import sha256_file
from gvfx.errors import InputError

__all__ = ["resolve_variant", "VARIANTS", "models_root", "stack_dir", "offline", "check_component", "check_stack", "verify", "StackStatus",
           "list_stacks", "import_stack", "component_hashes", "short_hash"]

log = logging.getLogger(__name__)

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE")


def models_root(override: str | Path | None = None) -> Path:
    """The store folder: ``override`` (the element param ``models``), else ``$GVFX_MODELS``, else
    ``~/.cache/gvfx/models`` (``gvfx.config.models_dir_default``)."""
    if override:
        return Path(override).expanduser()
    from gvfx.config import models_dir_default

    return models_dir_default()


def stack_dir(manifest: StackManifest, root: str | Path | None = None) -> Path:
    """Where ``manifest``'s stack lives in the store."""
    return models_root(root) / manifest.folder


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Force the Hugging Face libraries offline for the duration (restores the environment after)."""
    old = {k: os.environ.get(k) for k in _OFFLINE_VARS}
    for k in _OFFLINE_VARS:
        os.environ[k] = "1"
    hub_consts = None
    with contextlib.suppress(Exception):
        import huggingface_hub.constants as hub_consts  # read at import: patch the live flag too
    old_flag = getattr(hub_consts, "HF_HUB_OFFLINE", None)
    if hub_consts is not None:
        hub_consts.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if hub_consts is not None and old_flag is not None:
            hub_consts.HF_HUB_OFFLINE = old_flag
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: weight variants gvfx looks for next to the full files (diffusers / transformers ``variant=``)
VARIANTS = ("fp16",)


def _present(folder: Path, f: str) -> str | None:
    """``f`` or its fp16 variant, whichever is in ``folder`` (the full file first); ``None``: neither."""
    for name in (f, *(variant_name(f, v) for v in VARIANTS)):
        if (folder / name).is_file():
            return name
    return None


def resolve_variant(manifest: StackManifest, root: Path, role: str, variant: str = "auto",
                    dtype: str = "fp32") -> str | None:
    """The ``variant=`` to load component ``role`` with: ``None`` (the full files) or ``"fp16"``.

    ``auto``: the fp16 files when every weight file has one and the run is half precision, or when only
    the fp16 files are there; ``fp16``: the fp16 files (an :class:`InputError` when one is missing);
    ``full``: the full files."""
    comp = manifest.components[role]
    folder = Path(root) / comp.folder
    weights = [f for f in comp.files if f.endswith((".safetensors", ".index.json", *PICKLE_SUFFIXES))]
    if not weights or variant == "full":
        return None
    has_v = all((folder / variant_name(f, "fp16")).is_file() for f in weights)
    has_full = all((folder / f).is_file() for f in weights)
    if variant == "fp16":
        if not has_v:
            missing = next(variant_name(f, "fp16") for f in weights if not (folder / variant_name(f, "fp16")).is_file())
            raise InputError(f"model stack {manifest.name!r}: component {role!r} has no fp16 variant file "
                             f"{comp.folder}/{missing}", path=root, hint="set variant: auto (or full)")
        return "fp16"
    if has_v and (not has_full or dtype in ("fp16", "bf16")):
        return "fp16"
    return None


def _missing_hint(manifest: StackManifest, comp: Component) -> str:
    src = f" from {comp.source}" if comp.source else ""
    return (f"fetch the {comp.role} files{src} into <stack>/{comp.folder}/ (see model/stacks/{manifest.name}.yaml), "
            f"or `gvfx models import PATH --as {manifest.name}`")


def check_component(manifest: StackManifest, root: Path, role: str, *, allow_pickle: bool = False) -> Path:
    """The component's folder, after checking every listed file is there and no pickled weights would
    be loaded without permission. Raises :class:`InputError` naming the stack, the role and the file."""
    comp = manifest.components[role]
    folder = Path(root) / comp.folder
    if not folder.is_dir():
        raise InputError(f"model stack {manifest.name!r}: component {role!r} is missing (no folder {comp.folder}/)",
                         path=root, hint=_missing_hint(manifest, comp))
    for f in comp.files:
        if _present(folder, f) is not None:
            continue
        if f.endswith(".safetensors"):
            stem = f[: -len(".safetensors")]
            pickled = [folder / (stem + s) for s in (".bin", ".ckpt", ".pt", ".pth")]
            pickled += [folder / ("pytorch_model" + s) for s in (".bin",)] if stem == "model" else []
            found = next((q for q in pickled if q.is_file()), None)
            if found is not None:
                if not allow_pickle:
                    raise InputError(f"model stack {manifest.name!r}: component {role!r} has pickled weights "
                                     f"{found.name} (pickle can run code) and no {f}", path=folder,
                                     hint="convert it to .safetensors, or set allow_pickle: true if you trust "
                                          "the file")
                log.warning("%s/%s: loading pickled weights %s (allow_pickle)", manifest.name, role, found)
                continue
        raise InputError(f"model stack {manifest.name!r}: component {role!r} is missing {comp.folder}/{f}",
                         path=root, hint=_missing_hint(manifest, comp))
    if not allow_pickle:
        stray = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file()]
        if stray and not any(_present(folder, w) for w in comp.weight_files):
            raise InputError(f"model stack {manifest.name!r}: component {role!r} holds pickled weights {stray}",
                             path=folder, hint="convert to .safetensors, or set allow_pickle: true")
    return folder


def check_stack(manifest: StackManifest, root: Path, *, allow_pickle: bool = False) -> dict[str, Path]:
    """Every required component's folder (see :func:`check_component`); a missing stack folder says
    where it was looked for."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"model stack {manifest.name!r} is not installed (no folder)", path=root,
                         hint=f"set GVFX_MODELS (or the job's models:) to the store holding {manifest.folder}/, "
                              f"or `gvfx models import PATH --as {manifest.name}`; `gvfx models list` shows the stacks")
    out: dict[str, Path] = {}
    for role, comp in manifest.components.items():
        try:
            out[role] = check_component(manifest, root, role, allow_pickle=allow_pickle)
        except InputError:
            if not comp.optional:
                raise
    return out


def short_hash(path: Path, n: int = 12) -> str:
    """First ``n`` hex digits of the file's sha256 (cached on disk by path, size and mtime: hashcache.py)."""
    return sha256_file(Path(path))[:n]


def _weight_names(comp: Component, folder: Path) -> list[str]:
    """The component's weights files: those the manifest lists, plus every shard a listed
    ``*.safetensors.index.json`` names (sharded checkpoints such as Wan's transformer)."""
    names = [_present(folder, f) or f for f in comp.weight_files]
    for f in comp.files:
        f = _present(folder, f) or f
        if f.endswith(".index.json") and (folder / f).is_file():
            try:
                names += sorted(set(json.loads((folder / f).read_text())["weight_map"].values()))
            except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
    return names


def component_hashes(manifest: StackManifest, root: Path) -> dict[str, str]:
    """``role/file -> short sha256`` of every weights file present, shards of a sharded checkpoint
    included (for EXR metadata and the engine's cache key)."""
    out: dict[str, str] = {}
    for role, comp in manifest.components.items():
        folder = Path(root) / comp.folder
        for f in _weight_names(comp, folder):
            p = folder / f
            if p.is_file():
                out[f"{role}/{f}"] = short_hash(p)
    return out


@dataclass
class StackStatus:
    """What ``gvfx models list/verify`` reports for one stack."""

    name: str
    kind: str
    family: str
    folder: Path
    installed: bool
    licenses: str
    non_commercial: tuple[str, ...]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.installed and not self.problems


def list_stacks(root: str | Path | None = None) -> list[StackStatus]:
    """Every manifest with whether its folder holds all required files (no hashing: fast)."""
    out = []
    for name in manifest_names():
        m = load_manifest(name)
        d = stack_dir(m, root)
        problems: list[str] = []
        try:
            check_stack(m, d)
        except InputError as exc:
            problems.append(exc.message)
        out.append(StackStatus(m.name, m.kind, m.family, d, d.is_dir() and not problems, m.license_summary(),
                               m.non_commercial, problems))
    return out


def verify(name: str, root: str | Path | None = None, *, allow_pickle: bool = False) -> StackStatus:
    """Full check of one stack: files present, every safetensors header readable (``safe_open``), the
    sha256 of every file the manifest pins, cross-attention dims of configs that state them."""
    from safetensors import safe_open

    m = load_manifest(name)
    d = stack_dir(m, root)
    st = StackStatus(m.name, m.kind, m.family, d, d.is_dir(), m.license_summary(), m.non_commercial)
    try:
        check_stack(m, d, allow_pickle=allow_pickle)
    except InputError as exc:
        st.problems.append(exc.message)
        return st
    for role, comp in m.components.items():
        folder = d / comp.folder
        listed = [_present(folder, f) or f for f in comp.files]
        for f in dict.fromkeys([*listed, *_weight_names(comp, folder)]):
            p = folder / f
            if not p.is_file():
                if f not in listed:  # a shard the index names
                    st.problems.append(f"{role}: {comp.folder}/{f} (named in its index) is missing")
                continue
            if f.endswith(".safetensors"):
                try:
                    with safe_open(str(p), framework="pt") as sf:
                        if not list(sf.keys()):
                            st.problems.append(f"{role}: {comp.folder}/{f} holds no tensors")
                except Exception as exc:  # noqa: BLE001 - any failure means an unreadable file
                    st.problems.append(f"{role}: {comp.folder}/{f} is not a readable safetensors file ({exc})")
            if comp.sha256 and f in comp.sha256 and sha256_file(p) != comp.sha256[f]:
                st.problems.append(f"{role}: {comp.folder}/{f} sha256 differs from the manifest (wrong or "
                                   f"corrupt download)")
        problem = config_mismatch(m, d, role)
        if problem:
            st.problems.append(problem)
    return st


def _cross_attention_dim(cfg: Path) -> int | None:
    try:
        got = json.loads(cfg.read_text()).get("cross_attention_dim")
    except (OSError, json.JSONDecodeError):
        return None
    if isinstance(got, list):
        got = got[0]
    return int(got) if got is not None else None


def config_mismatch(manifest: StackManifest, root: Path, role: str) -> str | None:
    """A message when component ``role`` was made for another base model than the stack's UNet (its
    ``cross_attention_dim`` — from ``config.json``, or an IP-Adapter's projection shape — differs from the
    UNet's, e.g. an SDXL ControlNet in an SD 1.5 stack), else ``None``."""
    comp = manifest.components[role]
    if role == "unet" or "unet" not in manifest.components:
        return None
    base = _cross_attention_dim(Path(root) / manifest.components["unet"].folder / "config.json")
    if base is None:
        return None
    got = None
    if (Path(root) / comp.folder / "config.json").is_file() and comp.cross_attention_dim is not None:
        got = _cross_attention_dim(Path(root) / comp.folder / "config.json")
    elif role == "ip_adapter":
        from safetensors import safe_open

        for f in comp.weight_files:
            f = _present(Path(root) / comp.folder, f) or f
            p = Path(root) / comp.folder / f
            if p.is_file() and f.endswith(".safetensors"):
                with contextlib.suppress(Exception), safe_open(str(p), framework="pt") as sf:
                    if "image_proj.proj.weight" in sf.keys():
                        got = sf.get_slice("image_proj.proj.weight").get_shape()[0] // 4
    if got is not None and got != base:
        return (f"{role} has cross_attention_dim {got} but the stack's unet has {base}: it was made for another "
                f"base model than {manifest.family} ({manifest.name})")
    return None


def import_stack(src: str | Path, name: str, root: str | Path | None = None, *, link: bool = False,
                 allow_pickle: bool = False) -> StackStatus:
    """Copy (or symlink with ``link``) a diffusers-format folder laid out as the manifest ``name``
    says into the store, after checking it holds every required component. Returns the verify result."""
    m = load_manifest(name)
    src = Path(src).expanduser().resolve()
    if not src.is_dir():
        raise InputError("import source is not a folder", path=src)
    check_stack(m, src, allow_pickle=allow_pickle)
    for role in m.components:
        problem = config_mismatch(m, src, role)
        if problem:
            raise InputError(f"model stack {name!r}: {problem}", path=src,
                             hint=f"use the {m.family} version of the {role}")
    dst = stack_dir(m, root)
    if dst.exists() or dst.is_symlink():
        raise InputError(f"model stack {name!r} is already in the store", path=dst,
                         hint="remove it first to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        dst.symlink_to(src, target_is_directory=True)
    else:
        tmp = dst.with_name(f".{dst.name}.importing")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, symlinks=False)
        tmp.rename(dst)
    log.info("imported %s into %s (%s)", src, dst, "link" if link else "copy")
    return verify(name, root, allow_pickle=allow_pickle)
