"""Writing EXRs atomically: channel types, metadata, colour space and layer naming (conventions:
:mod:`gvfx.exr`)."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from gvfx.errors import ImageWriteError, InputError, ResolutionMismatchError
from gvfx.exr.channels import HALF_MAX, _channel_sort_key, is_depth_channel, layer_channel_names
from gvfx.exr_info import Window, _oiio_error

log = logging.getLogger(__name__)

__all__ = ["write_exr", "write_layers", "COMPRESSIONS", "CHROMATICITIES"]

COMPRESSIONS = ("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab")
#: (Rx, Ry, Gx, Gy, Bx, By, Wx, Wy) for colour spaces whose primaries we know.
CHROMATICITIES: dict[str, tuple[float, ...]] = {
    "ACEScg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
    "ACES2065-1": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767),
    "lin_rec709": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),
}
_CHROMA_ALIASES = {"acescg": "ACEScg", "scene_linear": "ACEScg", "aces2065-1": "ACES2065-1",
                   "lin_rec709": "lin_rec709", "lin_srgb": "lin_rec709",
                   "linear rec.709 (srgb)": "lin_rec709"}


# ---------------------------------------------------------------------------------------- writing

def _namespaced(key: str) -> str:
    return key if ":" in key else f"gvfx:{key}"


def _set_attr(spec: Any, key: str, value: Any) -> None:
    if isinstance(value, bool):
        spec.attribute(key, int(value))
    elif isinstance(value, (int, np.integer)):
        if not -(2 ** 31) <= int(value) < 2 ** 31:
            spec.attribute(key, str(int(value)))  # EXR ints are 32-bit: keep big seeds exact as text
        else:
            spec.attribute(key, int(value))
    elif isinstance(value, (float, np.floating)):
        spec.attribute(key, float(value))
    elif isinstance(value, str):
        spec.attribute(key, value)
    elif isinstance(value, Path):
        spec.attribute(key, str(value))
    else:
        spec.attribute(key, json.dumps(value, default=str, sort_keys=True))


def _chromaticities(colorspace: str) -> tuple[float, ...] | None:
    key = colorspace if colorspace in CHROMATICITIES else _CHROMA_ALIASES.get(colorspace.lower())
    return CHROMATICITIES.get(key) if key else None


def _is_half(name: str, half: bool | set[str] | frozenset[str]) -> bool:
    if isinstance(half, (set, frozenset)):
        return name in half
    return bool(half) and not is_depth_channel(name)


def write_exr(path: str | Path, channels: dict[str, np.ndarray], *,
              display_window: Window | None = None, data_origin: tuple[int, int] = (0, 0),
              half: bool | set[str] = True, compression: str = "zip", colorspace: str = "ACEScg",
              metadata: dict[str, Any] | None = None, frame: int | None = None, clean: bool = True) -> Path:
    """Write (H, W) float channels as a single-part scanline EXR, atomically; return the path.

    ``clean`` (default): no non-finite colour value is ever written (NaN -> 0, beyond the half range ->
    ± half max, logged; depth keeps +Inf, NaN/-Inf -> +Inf); ``clean=False`` writes the values as they
    are (tests that make hostile files).
    The data window is ``data_origin`` plus the array size; ``display_window`` is an inclusive
    ``(x0, y0, x1, y1)`` box (default: the data size at the origin), so overscan is a data window
    larger than the display. ``half=True`` writes half floats except depth channels (float32); a set
    names exactly the half channels. Metadata keys without a namespace get ``gvfx:``.
    """
    path = Path(path)
    if not channels:
        raise InputError("no channels to write", path=path, frame=frame)
    comp = compression.lower()
    if comp not in COMPRESSIONS:
        raise InputError(f"unknown compression {compression!r}", path=path, frame=frame,
                         hint=f"use one of {', '.join(COMPRESSIONS)}")
    arrays: dict[str, np.ndarray] = {}
    shape = None
    for name, arr in channels.items():
        a = np.asarray(arr)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.ndim != 2:
            raise InputError(f"channel {name!r} has shape {a.shape}; expected (H, W)", path=path, frame=frame)
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ResolutionMismatchError(f"channel {name!r} is {a.shape}, others are {shape}", path=path,
                                          frame=frame)
        arrays[str(name)] = a
    h, w = shape
    if h == 0 or w == 0:
        raise InputError("cannot write an empty image", path=path, frame=frame)
    names = sorted(arrays, key=_channel_sort_key)
    disp = display_window if display_window is not None else (0, 0, w - 1, h - 1)
    if len(disp) != 4 or disp[2] < disp[0] or disp[3] < disp[1]:
        raise InputError(f"display window {disp} is not an inclusive (x0, y0, x1, y1) box", path=path, frame=frame)

    all_half = all(_is_half(n, half) for n in names)
    spec = oiio.ImageSpec(w, h, len(names), "half" if all_half else "float")
    spec.channelnames = tuple(names)
    if not all_half:
        spec.channelformats = tuple(oiio.TypeDesc("half" if _is_half(n, half) else "float") for n in names)
    spec.x, spec.y = int(data_origin[0]), int(data_origin[1])
    spec.full_x, spec.full_y = int(disp[0]), int(disp[1])
    spec.full_width, spec.full_height = int(disp[2] - disp[0] + 1), int(disp[3] - disp[1] + 1)
    spec.attribute("compression", comp)
    if "A" in arrays:
        spec.alpha_channel = names.index("A")
    if "Z" in arrays:
        spec.z_channel = names.index("Z")
    spec.attribute("oiio:ColorSpace", colorspace)
    spec.attribute("gvfx:colorspace", colorspace)
    chroma = _chromaticities(colorspace)
    if chroma:
        spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), chroma)
    from gvfx import __version__
    spec.attribute("gvfx:version", __version__)
    for key, value in (metadata or {}).items():
        _set_attr(spec, _namespaced(str(key)), value)

    pixels = np.empty((h, w, len(names)), np.float16 if all_half else np.float32)
    cleaned: dict[str, int] = {}
    for i, n in enumerate(names):
        a, bad = _finite_for_write(arrays[n], n, _is_half(n, half)) if clean else (arrays[n], 0)
        if bad:
            cleaned[n] = bad
        pixels[:, :, i] = a
    if cleaned:
        log.warning("%s%s: non-finite or out-of-range values written as finite ones (channel: count): %s", path,
                    f" (frame {frame})" if frame is not None else "", cleaned)
    _write_atomic(path, spec, pixels, frame)
    return path


def _finite_for_write(arr: np.ndarray, name: str, half: bool) -> tuple[np.ndarray, int]:
    """``arr`` as it may be written: colour NaN -> 0 and values clamped to the half range (a half channel
    would store them as Inf); depth keeps +Inf ("no depth"), NaN and -Inf become +Inf. Returns the
    array and how many values were changed (0: ``arr`` itself, no copy)."""
    a = np.asarray(arr)
    if a.dtype.kind != "f":
        return a, 0
    if is_depth_channel(name):
        bad = np.isnan(a) | np.isneginf(a)
        n = int(bad.sum())
        return (np.where(bad, np.float32(np.inf), a) if n else a), n
    limit = HALF_MAX if half else float(np.finfo(np.float32).max)
    finite = np.isfinite(a)
    over = finite & (np.abs(a) > limit)
    n = int((~finite).sum() + over.sum())
    if not n:
        return a, 0
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=limit, neginf=-limit), -limit, limit), n


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _write_atomic(path: Path, spec: Any, pixels: np.ndarray, frame: int | None) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise ImageWriteError(f"folder {folder} does not exist", path=path, frame=frame,
                              hint="create the output folder first")
    tmp = _tmp_name(path)
    out = oiio.ImageOutput.create("openexr")
    ok = False
    try:
        if out is None or not out.open(str(tmp), spec):
            raise ImageWriteError(f"cannot open for writing: {_oiio_error(out)}", path=path, frame=frame,
                                  hint="check the folder exists, is writable and the disk is not full")
        if not out.write_image(pixels):
            raise ImageWriteError(f"cannot write pixels: {_oiio_error(out)}", path=path, frame=frame,
                                  hint="check free disk space")
        if not out.close():
            raise ImageWriteError(f"cannot finish the file: {_oiio_error(out)}", path=path, frame=frame)
        out = None
        os.replace(tmp, path)
        ok = True
    except ImageWriteError:
        raise
    except OSError as exc:
        raise ImageWriteError(f"cannot write: {exc.strerror or exc}", path=path, frame=frame) from None
    finally:
        if not ok:
            if out is not None:
                try:
                    out.close()
                except Exception:  # noqa: BLE001 - already failing; cleanup is best effort
                    pass
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


def write_layers(path: str | Path, *, rgba: np.ndarray | None = None, z: np.ndarray | None = None,
                 layers: dict[str, np.ndarray] | None = None, **kw: Any) -> Path:
    """Write (H, W, 4) ``rgba`` as R G B A, ``z`` (H, W) as float32 ``Z``, and named extra layers.

    A layer (H, W) or (H, W, C) becomes channels named as in the module docstring
    (``holdout`` -> ``holdout.A``, ``motion`` (2) -> ``motion.U/V``). ``kw`` goes to :func:`write_exr`.
    """
    chans: dict[str, np.ndarray] = {}
    if rgba is not None:
        a = np.asarray(rgba)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise InputError(f"rgba has shape {a.shape}; expected (H, W, 4) or (H, W, 3)", path=path)
        for i, c in enumerate("RGBA"[:a.shape[2]]):
            chans[c] = a[:, :, i]
    if z is not None:
        chans["Z"] = np.asarray(z)
    for name, arr in (layers or {}).items():
        a = np.asarray(arr)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3:
            raise InputError(f"layer {name!r} has shape {a.shape}; expected (H, W) or (H, W, C)", path=path)
        for i, cname in enumerate(layer_channel_names(name, a.shape[2])):
            chans[cname] = a[:, :, i]
    return write_exr(path, chans, **kw)
