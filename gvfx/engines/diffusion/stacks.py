"""Model stacks: the manifests that say which components a diffusion stack is made of.

A *stack* is a folder of diffusers-format component folders (``unet/``, ``vae/``, ``controlnet/``,
``ip_adapter/models/...``) described by a YAML manifest (``model/stacks/NAME.yaml``, format
``manifest_version: 2``, see ``model/README.md`` and ``docs/diffusion.md``). The manifest names, per
*role*, the component's folder inside the stack, its class, the files it must hold, their optional
sha256 and the weights' licence; and, per *mode* (``element``, ``insert``, ``refine``), the diffusers
pipeline class that runs it. Nothing here imports torch.

Manifests are looked up by name in :func:`manifest_dirs`: ``$GVFX_STACKS`` (``os.pathsep``-separated
folders), then ``$GVFX_MODELS/stacks``, then the repository's ``model/stacks``.

Video stacks (``kind: video``; families ``wan`` and ``animatediff``) are run by
``gvfx.engines.diffusion.video`` with this contract (the diffusion engine is the only caller)::

    loaded = load_video_stack(stack_dir: Path, manifest: StackManifest, *, runtime: Runtime) -> object
        # runtime: gvfx.engines.diffusion.runtime.Runtime (device, dtype, memory plan; runtime.apply(pipe))
        # loads offline, safetensors only (gvfx.engines.diffusion.store.offline()/check_component)
    run_video(loaded, *, mode: str,                    # "element" | "insert" | "refine"
              frames_rgb: np.ndarray,                  # (T, H, W, 3) float32, display-referred 0..1
              depth: np.ndarray,                       # (T, H, W) float32 metric Z, inf = sky
              mask: np.ndarray | None,                 # (T, H, W) float32 0..1, 1 = regenerate
              reference_rgb: np.ndarray | None,        # (h, w, 3) float32 0..1
              prompt: str, negative_prompt: str, seed: int, steps: int, strength: float,
              guidance: float, window: int, overlap: int,
              callback: Callable[[int, int], None],    # callback(step, total)
              cancel: Callable[[], bool]) -> np.ndarray   # (T, H, W, 3) float32 0..1

Image stacks (``kind: image``; families ``sd15`` and ``sdxl``) are loaded by
``gvfx.engines.diffusion.loader.load_image_stack``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gvfx.errors import InputError

__all__ = ["Component", "StackManifest", "load_manifest", "manifest_dirs", "manifest_names", "KINDS",
           "FAMILIES", "MODES", "variant_name"]

KINDS = ("image", "video")
FAMILIES = ("sd15", "sdxl", "wan", "animatediff")
MODES = ("element", "insert", "refine")
#: weight files gvfx loads without ``allow_pickle`` (anything else is refused by the store)
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")

_REPO_STACKS = Path(__file__).resolve().parents[3] / "model" / "stacks"


@dataclass(frozen=True)
class Component:
    """One component of a stack, in its own folder inside the stack folder.

    ``folder`` is relative to the stack folder (``unet``, ``ip_adapter/models``); ``files`` relative to
    ``folder``. ``sha256`` maps a file to its expected hex digest (``None``: not pinned).
    ``cross_attention_dim`` documents the *real* checkpoint's text-embedding width (768 for SD 1.5) and
    marks the component for the base-model check: the store compares the component's own config (or
    IP-Adapter projection) with the stack's ``unet`` config, never with this number, so a ControlNet or
    IP-Adapter made for another base model is named before it fails deep inside a pipeline, and the
    tiny test stacks (made of matching tiny components) verify like real ones.
    """

    role: str
    folder: str
    cls: str
    license_id: str
    non_commercial: bool = False
    files: tuple[str, ...] = ()
    sha256: dict[str, str] | None = None
    source: str | None = None
    optional: bool = False
    cross_attention_dim: int | None = None
    #: bytes of the real checkpoint's files (``file -> bytes``; ``"*"``: all weights of a sharded component
    #: together), variant files included; what the memory plan and ``gvfx models list`` count
    size_bytes: dict[str, int] | None = None
    #: dtype the listed (non-variant) weights are stored in: ``fp32`` | ``fp16`` | ``bf16``
    weights_dtype: str = "fp32"
    #: weight variants the source publishes next to the full files (``fp16``: ``*.fp16.safetensors``)
    variants: tuple[str, ...] = ()

    @property
    def weight_files(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if f.endswith(SAFE_SUFFIXES + PICKLE_SUFFIXES))


def variant_name(filename: str, variant: str | None) -> str:
    """The file name of ``variant`` of ``filename``, diffusers' rule (``_add_variant``): the variant goes
    before the last suffix (``model.safetensors`` -> ``model.fp16.safetensors``,
    ``x.safetensors.index.json`` -> ``x.safetensors.index.fp16.json``)."""
    if not variant:
        return filename
    parts = filename.split(".")
    return ".".join(parts[:-1] + [variant, parts[-1]])


@dataclass(frozen=True)
class StackManifest:
    """A parsed stack manifest (see the module docstring)."""

    name: str
    kind: str
    family: str
    components: dict[str, Component]
    pipelines: dict[str, str]
    resolution_multiple: int = 8
    default_resolution: tuple[int, int] = (512, 512)  # (width, height)
    notes: str = ""
    folder: str = ""  # default folder name under the model store
    description: str = ""
    tiny_builder: str | None = None
    path: Path | None = field(default=None, compare=False)
    #: video stacks: frames per window and frames shared by consecutive windows (``gvfx.window`` /
    #: ``gvfx.overlap``; the element params ``window``/``overlap`` default to them)
    window: int | None = None
    overlap: int | None = None
    #: (width, height) sizes the model was trained at (``trained_sizes``); the engine runs at the one
    #: whose aspect is closest to the job's, scaled to ``model_resolution`` when that is set
    trained_sizes: tuple[tuple[int, int], ...] = ()
    #: parameter count label of the main model (``1.3B``, ``14B``), for listings
    model_size: str = ""

    @property
    def non_commercial(self) -> tuple[str, ...]:
        """Roles whose weights may not be used on paid work."""
        return tuple(r for r, c in self.components.items() if c.non_commercial)

    def license_summary(self) -> str:
        """``role=licence`` for every component, ``(NC)`` after non-commercial ones."""
        return ", ".join(f"{r}={c.license_id}{' (NC)' if c.non_commercial else ''}"
                         for r, c in self.components.items())


def manifest_dirs() -> list[Path]:
    """Folders searched for ``NAME.yaml``, first match wins: ``$GVFX_STACKS``, ``$GVFX_MODELS/stacks``,
    the repository's ``model/stacks``."""
    out: list[Path] = []
    for p in os.environ.get("GVFX_STACKS", "").split(os.pathsep):
        if p.strip():
            out.append(Path(p).expanduser())
    from gvfx.config import models_dir_default

    out.append(models_dir_default() / "stacks")
    out.append(_REPO_STACKS)
    seen: set[Path] = set()
    uniq = []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(p)
    return uniq


def manifest_names() -> list[str]:
    """Names of every manifest found in :func:`manifest_dirs`."""
    names: set[str] = set()
    for d in manifest_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def _find(name: str) -> Path:
    for d in manifest_dirs():
        p = d / f"{name}.yaml"
        if p.is_file():
            return p
    known = manifest_names()
    raise InputError(f"unknown model stack {name!r}",
                     hint=f"known stacks: {', '.join(known) or 'none'}; manifests are read from "
                          f"{', '.join(str(d) for d in manifest_dirs())}")


def _req(d: dict, key: str, where: str, path: Path) -> Any:
    if key not in d or d[key] is None:
        raise InputError(f"stack manifest field {where}{key} is missing", path=path,
                         hint="see model/README.md for the stack manifest format")
    return d[key]


def _component(role: str, d: Any, path: Path) -> Component:
    where = f"components.{role}."
    if not isinstance(d, dict):
        raise InputError(f"stack manifest field components.{role} must be a mapping", path=path)
    lic = d.get("license") or {}
    if not isinstance(lic, dict) or "id" not in lic:
        raise InputError(f"stack manifest field {where}license.id is missing", path=path,
                         hint="every component names its weights' licence (SPDX id or the licence name)")
    sha = d.get("sha256")
    if sha is not None and not isinstance(sha, dict):
        raise InputError(f"stack manifest field {where}sha256 must map file -> hex digest", path=path)
    files = d.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InputError(f"stack manifest field {where}files must be a list of file names", path=path)
    src = d.get("source")
    if isinstance(src, dict):
        src = src.get("repo_id") or src.get("url")
    cad = d.get("cross_attention_dim")
    sizes = d.get("size_bytes")
    if sizes is not None and (not isinstance(sizes, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sizes.values())):
        raise InputError(f"stack manifest field {where}size_bytes must map file -> whole bytes", path=path)
    wdt = str(d.get("weights_dtype", "fp32"))
    if wdt not in ("fp32", "fp16", "bf16"):
        raise InputError(f"stack manifest field {where}weights_dtype is {wdt!r}; one of fp32, fp16, bf16", path=path)
    variants = d.get("variants") or []
    if not isinstance(variants, list) or not all(v in ("fp16", "bf16") for v in variants):
        raise InputError(f"stack manifest field {where}variants must list fp16 / bf16", path=path)
    return Component(role=role, folder=str(_req(d, "folder", where, path)), cls=str(_req(d, "class", where, path)),
                     license_id=str(lic["id"]), non_commercial=bool(lic.get("non_commercial", False)),
                     files=tuple(files), sha256={str(k): str(v).lower() for k, v in sha.items()} if sha else None,
                     source=src, optional=bool(d.get("optional", False)),
                     cross_attention_dim=int(cad) if cad is not None else None,
                     size_bytes={str(k): int(v) for k, v in sizes.items()} if sizes else None,
                     weights_dtype=wdt, variants=tuple(variants))


def load_manifest(path_or_name: str | Path) -> StackManifest:
    """Read a stack manifest from a ``.yaml`` path, or by name from :func:`manifest_dirs`."""
    import yaml

    p = Path(path_or_name)
    if p.suffix not in (".yaml", ".yml"):
        p = _find(str(path_or_name))
    if not p.is_file():
        raise InputError("stack manifest not found", path=p)
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"stack manifest is not valid YAML: {exc}", path=p) from None
    if not isinstance(data, dict):
        raise InputError("stack manifest must be a mapping", path=p)
    if data.get("manifest_version") != 2:
        raise InputError(f"stack manifest_version is {data.get('manifest_version')!r}, expected 2", path=p,
                         hint="see model/README.md for the stack manifest format")
    kind = _req(data, "kind", "", p)
    family = _req(data, "family", "", p)
    if kind not in KINDS:
        raise InputError(f"stack manifest field kind is {kind!r}; one of {', '.join(KINDS)}", path=p)
    if family not in FAMILIES:
        raise InputError(f"stack manifest field family is {family!r}; one of {', '.join(FAMILIES)}", path=p)
    comps = _req(data, "components", "", p)
    if not isinstance(comps, dict) or not comps:
        raise InputError("stack manifest field components must be a non-empty mapping", path=p)
    pipes = _req(data, "pipelines", "", p)
    if not isinstance(pipes, dict) or not pipes:
        raise InputError("stack manifest field pipelines must map mode -> diffusers class", path=p)
    bad = sorted(set(pipes) - set(MODES))
    if bad:
        raise InputError(f"stack manifest field pipelines has unknown modes {bad}; modes: {', '.join(MODES)}", path=p)
    res = data.get("default_resolution", [512, 512])
    multiple = int(data.get("resolution_multiple", 8))
    if multiple <= 0 or multiple % 8:
        raise InputError(f"stack manifest field resolution_multiple is {multiple}; a positive multiple of 8", path=p)
    gv = data.get("gvfx") or {}
    if gv.get("trust_remote_code", False):
        raise InputError("stack manifest sets gvfx.trust_remote_code: gvfx never runs code shipped with weights",
                         path=p, hint="remove the field")
    window, overlap = _window(gv, p)
    trained = data.get("trained_sizes") or []
    if not isinstance(trained, list) or not all(isinstance(t, list) and len(t) == 2 and all(
            isinstance(v, int) and v > 0 and v % multiple == 0 for v in t) for t in trained):
        raise InputError(f"stack manifest field trained_sizes must list [width, height] pairs, multiples of "
                         f"{multiple}", path=p)
    return StackManifest(
        name=str(_req(data, "name", "", p)), kind=str(kind), family=str(family),
        components={str(r): _component(str(r), d, p) for r, d in comps.items()},
        pipelines={str(k): str(v) for k, v in pipes.items()},
        resolution_multiple=multiple, default_resolution=(int(res[0]), int(res[1])),
        notes=str(data.get("notes", "") or "").strip(), folder=str(data.get("folder") or data["name"]),
        description=str(data.get("description", "") or "").strip(),
        tiny_builder=gv.get("tiny_test_builder"), path=p, window=window, overlap=overlap,
        trained_sizes=tuple((int(w), int(h)) for w, h in trained), model_size=str(data.get("model_size", "") or ""))


def _window(gv: dict, path: Path) -> tuple[int | None, int | None]:
    """``gvfx.window`` (frames per window, >= 1) and ``gvfx.overlap`` (0 .. window - 1), each optional."""
    out = []
    for key in ("window", "overlap"):
        v = gv.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "window" else 0)):
            raise InputError(f"stack manifest field gvfx.{key} is {v!r}; a whole number "
                             f"{'>= 1' if key == 'window' else '>= 0'}", path=path)
        out.append(v)
    if out[0] is not None and out[1] is not None and out[1] >= out[0]:
        raise InputError(f"stack manifest field gvfx.overlap ({out[1]}) must be less than gvfx.window ({out[0]})",
                         path=path)
    return out[0], out[1]
