"""Colour management: OpenColorIO through OpenImageIO's ``ColorConfig``, one source of truth.

The active config is ``$OCIO`` when set, else OIIO's bundled ``ocio://default`` (the ACES CG config).
gvfx works in ACEScg. Image models see sRGB-encoded pixels: ``to_display``/``from_display`` use the
invertible scene-referred "sRGB Encoded Rec.709 (sRGB)" (``srgb_tx``) transform, *not* the ACES
output transform, because the ACES view tone-maps and is not exactly invertible — generated pixels
must come back to the plate's linear values.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
from pathlib import Path

import numpy as np

from gvfx.errors import ColorError, InputError

__all__ = ["WORKING_SPACE", "DISPLAY_SPACE", "config_path", "config_name", "colorspaces", "resolve",
           "convert", "to_display", "from_display", "preview_srgb"]

log = logging.getLogger(__name__)

#: gvfx's working (scene-linear) colour space.
WORKING_SPACE = "ACEScg"
#: The invertible sRGB encoding used for image models and previews.
DISPLAY_SPACE = "sRGB Encoded Rec.709 (sRGB)"
_BUILTIN_DEFAULT = "ocio://default"

#: OCIO's built-in configs, newest first; used to name what a ``ocio://...-latest``/``default`` alias
#: resolved to (OIIO does not expose OCIO's ``ResolveConfigPath``).
_BUILTIN_CONFIGS = (
    "cg-config-v4.0.0_aces-v2.0_ocio-v2.5",
    "studio-config-v4.0.0_aces-v2.0_ocio-v2.5",
    "cg-config-v2.2.0_aces-v1.3_ocio-v2.4",
    "studio-config-v2.2.0_aces-v1.3_ocio-v2.4",
    "cg-config-v2.1.0_aces-v1.3_ocio-v2.3",
    "studio-config-v2.1.0_aces-v1.3_ocio-v2.3",
    "cg-config-v1.0.0_aces-v1.3_ocio-v2.1",
    "studio-config-v1.0.0_aces-v1.3_ocio-v2.1",
)
_ALIAS_URIS = ("ocio://default", "ocio://cg-config-latest", "ocio://studio-config-latest")


def _oiio():
    try:
        import OpenImageIO as oiio
    except ImportError as exc:  # pragma: no cover - the venv has it
        raise ColorError("OpenImageIO is not installed", hint="pip install openimageio") from exc
    return oiio


def config_path() -> str:
    """The config gvfx uses: ``$OCIO`` when set (made absolute), else ``ocio://default``."""
    env = os.environ.get("OCIO", "").strip()
    if not env:
        return _BUILTIN_DEFAULT
    if env.startswith("ocio://"):
        return env
    return str(Path(env).expanduser().resolve())


@functools.lru_cache(maxsize=8)
def _load_config(path: str):
    """The OIIO ColorConfig for ``path``, checked (OIIO silently falls back to a tiny built-in one)."""
    oiio = _oiio()
    if not path.startswith("ocio://") and not Path(path).is_file():
        raise ColorError("OCIO config file not found", path=path,
                         hint="fix or unset $OCIO (unset uses the built-in ACES config)")
    cfg = oiio.ColorConfig(path)
    err = cfg.geterror()
    if err or cfg.configname() == "built-in":
        raise ColorError(f"OCIO config cannot be loaded: {err or 'fell back to the built-in config'}",
                         path=path, hint="fix or unset $OCIO (unset uses the built-in ACES config)")
    log.debug("loaded OCIO config %s (%d colour spaces)", path, cfg.getNumColorSpaces())
    return cfg


def _config():
    return _load_config(config_path())


def _fingerprint(cfg) -> tuple:
    display = cfg.getDefaultDisplayName()
    return (tuple(cfg.getColorSpaceNames()), tuple(cfg.getDisplayNames()),
            tuple(cfg.getViewNames(display)), tuple(cfg.getLookNames()))


@functools.lru_cache(maxsize=8)
def _resolve_builtin(uri: str) -> str:
    """Name the versioned built-in config an alias URI stands for (``uri`` itself if none matches)."""
    oiio = _oiio()
    target = _fingerprint(_load_config(uri))
    for name in _BUILTIN_CONFIGS:
        cand = oiio.ColorConfig("ocio://" + name)
        if not cand.geterror() and cand.configname() != "built-in" and _fingerprint(cand) == target:
            return "ocio://" + name
    return uri


@functools.lru_cache(maxsize=8)
def _is_oiio_default(path: str) -> bool:
    """Whether OIIO's process-wide default config (read from $OCIO once, at first use) is ``path``."""
    default = _oiio().ColorConfig.default_colorconfig()
    name = default.configname()
    if name == path:
        return True
    return not name.startswith("ocio://") and name != "built-in" and Path(name).expanduser().resolve() == Path(path)


def config_name() -> str:
    """The full resolved name of the active config, for EXR metadata.

    ``ocio://default`` becomes the versioned built-in it stands for (its meaning changes between OCIO
    releases), e.g. ``ocio://cg-config-v4.0.0_aces-v2.0_ocio-v2.5``; a file config is its absolute path.
    """
    path = config_path()
    _config()  # raise now on a broken config
    if path in _ALIAS_URIS:
        return _resolve_builtin(path)
    return path


def colorspaces() -> list[str]:
    """Names of all colour spaces of the active config."""
    return list(_config().getColorSpaceNames())


def resolve(name: str) -> str:
    """The canonical colour space name for ``name`` or one of its aliases/roles.

    Raises ColorError listing close matches when nothing in the active config answers to ``name``.
    """
    cfg = _config()
    spaces = list(cfg.getColorSpaceNames())
    if name in spaces:
        return name
    resolved = cfg.resolve(name) if name else ""
    if resolved in spaces:
        return resolved
    candidates = spaces + [a for s in spaces for a in cfg.getAliases(s)] + list(cfg.getRoles())
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    if not close:
        low = name.lower()
        close = [c for c in candidates if low and (low in c.lower() or c.lower() in low)][:5]
    hint = ("did you mean: " + ", ".join(repr(c) for c in close)) if close else \
        "run `gvfx doctor` or see gvfx.color.colorspaces() for the names in this config"
    raise ColorError(f"unknown colour space {name!r} in OCIO config {config_path()}", hint=hint)


def _as_image(pixels: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    a = np.asarray(pixels)
    if a.ndim < 2 or a.shape[-1] not in (3, 4):
        raise InputError(f"colour conversion needs (H, W, 3|4) pixels, got shape {a.shape}")
    if a.ndim != 3:
        a = a.reshape(1, -1, a.shape[-1])
    return np.ascontiguousarray(a, dtype=np.float32), np.shape(pixels)


def convert(pixels: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert (H, W, 3|4) float pixels from colour space ``src`` to ``dst``; alpha passes through.

    Returns a new float32 array of the same shape. Processors are cached by OCIO inside the config,
    so converting every frame of a sequence costs only the pixel work.
    """
    img, shape = _as_image(pixels)
    s, d = resolve(src), resolve(dst)
    if s == d:
        return img.reshape(shape).copy()
    oiio = _oiio()
    rgb = np.ascontiguousarray(img[..., :3])
    path = config_path()
    if _is_oiio_default(path):  # this overload reuses OIIO's cached processors (~0.5 ms overhead)
        out = oiio.ImageBufAlgo.colorconvert(oiio.ImageBuf(rgb), s, d, False)
    else:  # naming the config costs ~25 ms per call: only when $OCIO changed after start-up
        out = oiio.ImageBufAlgo.colorconvert(oiio.ImageBuf(rgb), s, d, False, "", "", path)
    if out.has_error:
        raise ColorError(f"conversion {s!r} -> {d!r} failed: {out.geterror()}")
    res = np.empty_like(img)
    res[..., :3] = out.get_pixels(oiio.FLOAT).reshape(rgb.shape)
    if img.shape[-1] == 4:
        res[..., 3] = img[..., 3]
    return res.reshape(shape)


def to_display(pixels: np.ndarray, src: str = WORKING_SPACE) -> np.ndarray:
    """Scene-linear (H, W, 3|4) in ``src`` -> sRGB-encoded float32 (not clipped), what image models take.

    Uses the invertible ``srgb_tx`` encoding (no tone mapping), so ``from_display`` undoes it.
    """
    return convert(pixels, src, DISPLAY_SPACE)


def from_display(pixels: np.ndarray, dst: str = WORKING_SPACE) -> np.ndarray:
    """sRGB-encoded (H, W, 3|4) float (0..1, e.g. a model's output) -> scene-linear float32 in ``dst``."""
    return convert(pixels, DISPLAY_SPACE, dst)


def preview_srgb(pixels: np.ndarray, src: str = WORKING_SPACE) -> np.ndarray:
    """(H, W, 3|4) scene-linear pixels -> (H, W, 3) uint8 sRGB for previews and contact sheets.

    The same ``srgb_tx`` encoding as ``to_display``, clipped to 0..1 (no tone mapping: highlights
    above 1 clip). Alpha is ignored; NaNs become 0. Fast path: a 3x3 matrix and a 16-bit lookup table,
    both computed once by OCIO (through OIIO) and checked against it.
    """
    a = np.asarray(pixels)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise InputError(f"preview needs (H, W, 3|4) pixels, got shape {a.shape}")
    tables = _preview_tables(config_path(), resolve(src))
    if tables is None:  # src is not a matrix away from linear Rec.709 (e.g. a log space): let OCIO do it
        enc = convert(a[..., :3], src, DISPLAY_SPACE)
        enc = np.nan_to_num(enc, nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(enc, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    matrix, lut = tables
    lin = np.asarray(a[..., :3], dtype=np.float32) @ matrix
    np.nan_to_num(lin, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(lin, 0.0, 1.0, out=lin)
    return lut[(lin * _LUT_MAX + 0.5).astype(np.uint16)]


_LUT_MAX = 65535


@functools.lru_cache(maxsize=16)
def _preview_tables(path: str, src: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(3x3 float32 src -> linear Rec.709 matrix for row vectors, 65536-entry uint8 encoding LUT), or None
    when OCIO's conversions are not of that form (checked on test colours)."""
    try:
        lin709 = resolve("lin_rec709")
    except ColorError:
        return None
    matrix = convert(np.eye(3, dtype=np.float32)[None], src, lin709)[0]  # row j = image of primary j
    rng = np.random.default_rng(0)
    probe = (rng.random((1, 64, 3)) * 4.0 - 0.5).astype(np.float32)
    if not np.allclose(probe @ matrix, convert(probe, src, lin709), rtol=1e-4, atol=1e-5):
        return None
    ramp = np.repeat(np.linspace(0.0, 1.0, _LUT_MAX + 1, dtype=np.float32)[None, :, None], 3, axis=2)
    enc = convert(ramp, lin709, DISPLAY_SPACE)[0, :, 0]
    lut = (np.clip(np.nan_to_num(enc), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    colours = rng.random((1, 64, 3)).astype(np.float32)
    direct = (np.clip(convert(colours, lin709, DISPLAY_SPACE), 0, 1) * 255.0 + 0.5).astype(np.int32)
    if np.abs(lut[(colours * _LUT_MAX + 0.5).astype(np.uint16)].astype(np.int32) - direct).max() > 1:
        return None  # the encoding is not per channel
    log.debug("preview tables for %s built from %s", src, path)
    return matrix, lut
