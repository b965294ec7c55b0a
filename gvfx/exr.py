"""OpenEXR reading and writing: the one module that talks to OpenImageIO about EXRs.

Arrays: every channel is (H, W) float32 on the **display window** (the data window is placed inside it,
parts outside are cropped, uncovered pixels are 0). When the data window is the display window the
channels are strided views into OpenImageIO's interleaved buffer (no copy) and ``rgba()`` returns that
buffer's R,G,B,A slice; copy before writing into them if the image is shared. Windows are EXR-style inclusive
boxes ``(x0, y0, x1, y1)``; a ``W x H`` image at the origin has display window ``(0, 0, W-1, H-1)``.

NaN / Inf policy on read (counts are kept in ``ExrImage.nonfinite`` and logged as a warning):
- colour and other channels: NaN -> 0, +Inf -> +65504, -Inf -> -65504 (half max);
- depth channels (``Z``, ``depth.Z``, ``depth.V``, ``Z.Z``, ``zdepth``...): +Inf is kept (it means "no
  depth / sky" in gvfx), NaN and -Inf become +Inf.

Layer naming written by :func:`write_layers` (read back by :meth:`ExrImage.layer`), chosen so Nuke shows
them as layers: (H, W) or 1 channel -> ``name.A`` (``depth``/``zdepth`` layers -> ``name.Z``);
2 -> ``name.U``, ``name.V``; 3 -> ``name.R/G/B``; 4 -> ``name.R/G/B/A``.

File layout written: channels R, G, B, A first, then the rest sorted; half floats except depth channels
(float32); ``gvfx:``-namespaced metadata; colour space as ``oiio:ColorSpace`` and ``gvfx:colorspace``
plus ``chromaticities`` for known spaces. Writes are atomic (temp file in the same folder, then
``os.replace``). Headers only: :mod:`gvfx.exr_info` (:func:`~gvfx.exr_info.read_info`). Sequences:
:mod:`gvfx.exr_sequence` (``SequenceWriter`` stays importable from here, as docs/probe.md names it).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import OpenImageIO as oiio

from gvfx.errors import ImageReadError, ImageWriteError, InputError, LayerError, ResolutionMismatchError
from gvfx.exr_info import ExrInfo, PartInfo, Window, _oiio_error, _open, _read_parts, _views_of

log = logging.getLogger(__name__)

__all__ = ["ExrImage", "read_exr", "write_exr", "write_layers", "layer_channels", "layer_channel_names",
           "is_depth_channel", "check_same_size", "COMPRESSIONS", "HALF_MAX", "CHROMATICITIES"]

HALF_MAX = 65504.0
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
_DEPTH_LAYERS = {"depth", "z", "zdepth", "depth_z", "distance"}
_SUFFIX_ORDER = {s: i for i, s in enumerate(["R", "G", "B", "A", "U", "V", "X", "Y", "Z"])}
#: refuse headers claiming more samples than this (a fuzzed header must not allocate 100 GB)
_MAX_SAMPLES = 1 << 31


# ----------------------------------------------------------------------------------------- helpers

def is_depth_channel(name: str) -> bool:
    """True for depth channels: ``Z``, ``depth.Z``, ``depth.V``, ``Z.Z``, ``zdepth``, ``depth``...

    ``P.Z`` or ``N.Z`` (position/normal) are not depth.
    """
    layer, _, base = name.rpartition(".")
    if not layer:
        return base in ("Z", "z") or base.lower() in _DEPTH_LAYERS
    return layer.lower() in _DEPTH_LAYERS


def _channel_sort_key(name: str) -> tuple[int, str]:
    return (0, "RGBA".index(name)) if name in ("R", "G", "B", "A") else (1, name)


def _suffix_key(name: str) -> tuple[int, str]:
    base = name.rpartition(".")[2]
    return (_SUFFIX_ORDER.get(base, len(_SUFFIX_ORDER)), base)


# ------------------------------------------------------------------------------------------ image

@dataclass
class ExrImage:
    """Pixels of one EXR frame on its display window (see the module docstring for conventions)."""

    channels: dict[str, np.ndarray]
    width: int
    height: int
    display_window: Window
    data_window: Window
    metadata: dict[str, Any] = field(default_factory=dict)
    nonfinite: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (NaN count, Inf count)
    path: Path | None = None
    #: (H, W) bool, display window: pixels where a colour (non-depth) channel was NaN/Inf in the file;
    #: None when every colour value was finite (they are replaced, see the module doc)
    nonfinite_mask: np.ndarray | None = None
    view: str | None = None

    @property
    def channel_names(self) -> list[str]:
        return list(self.channels)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def rgba(self) -> np.ndarray:
        """(H, W, 4) float32: R, G, B and A (A = 1 when absent; a luminance-only Y image is greyed)."""
        ch = self.channels
        if all(c in ch for c in "RGB"):
            rgb = [ch["R"], ch["G"], ch["B"]]
        elif "Y" in ch:
            rgb = [ch["Y"]] * 3
        else:
            raise LayerError(f"no R, G, B (or Y) channels; channels are {', '.join(ch) or 'none'}",
                             path=self.path, hint="pick a layer with ExrImage.layer(name)")
        alpha = ch.get("A")
        if alpha is None:
            alpha = np.ones((self.height, self.width), np.float32)
        block = _adjacent_block(rgb + [alpha])
        return block if block is not None else np.stack(rgb + [alpha], axis=-1)

    def layer(self, name: str) -> np.ndarray:
        """(H, W, C) float32 of the channels ``name.*`` (ordered R G B A U V X Y Z, then by name), or of
        the single channel ``name``."""
        names = layer_channels(self.channels, name)
        if not names:
            raise LayerError(f"no layer or channel {name!r}; layers are {', '.join(self.layers()) or 'none'}",
                             path=self.path)
        return np.stack([self.channels[n] for n in names], axis=-1)

    def layers(self) -> list[str]:
        """Layer names: prefixes before the last dot (``depth`` for ``depth.Z``), ``rgba`` for bare ones."""
        out: list[str] = []
        for n in self.channels:
            layer = n.rpartition(".")[0] or "rgba"
            if layer not in out:
                out.append(layer)
        return out

    def depth_channel(self) -> str | None:
        """The name of the depth channel, preferring ``Z``, ``depth.Z``, ``depth.V``, ``Z.Z``."""
        for name in ("Z", "depth.Z", "depth.V", "Z.Z", "zdepth", "zdepth.Z", "depth", "depth.R", "z"):
            if name in self.channels:
                return name
        return next((n for n in self.channels if is_depth_channel(n)), None)

    def depth(self) -> np.ndarray | None:
        """(H, W) float32 metric depth (``inf`` = no depth), or None when the image has none."""
        name = self.depth_channel()
        return None if name is None else self.channels[name]


def _adjacent_block(planes: list[np.ndarray]) -> np.ndarray | None:
    """The (H, W, N) interleaved array the planes are consecutive channel views of, or None.

    Lets ``rgba()`` hand back OIIO's own buffer instead of stacking a copy.
    """
    base = planes[0].base
    if base is None or base.ndim != 3 or any(p.base is not base for p in planes):
        return None
    item = base.itemsize
    start = planes[0].__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if start % item:
        return None
    first = start // item
    for k, p in enumerate(planes):
        if p.__array_interface__["data"][0] != planes[0].__array_interface__["data"][0] + k * item:
            return None
    if first + len(planes) > base.shape[2]:
        return None
    return base[:, :, first:first + len(planes)]


def layer_channels(channels: Iterable[str], name: str) -> list[str]:
    """Channel names of layer ``name`` in canonical order (an exact channel name gives itself)."""
    names = list(channels)
    if name in names:
        return [name]
    prefix = name + "."
    found = [n for n in names if n.startswith(prefix) and "." not in n[len(prefix):]]
    return sorted(found, key=_suffix_key)


def _split_view(name: str, views: tuple[str, ...]) -> tuple[str | None, str]:
    """(view, name without the view component) for single-part multi-view channel names."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[-2] in views:
        return parts[-2], ".".join(parts[:-2] + parts[-1:])
    return None, name


def _clean(arr: np.ndarray, name: str) -> tuple[tuple[int, int], bool]:
    """Apply the NaN/Inf policy in place; return ((NaN count, Inf count), whether values were replaced).

    +Inf in a depth channel is counted but is not a replacement (it is gvfx's "no depth").
    """
    if np.isfinite(arr).all():
        return (0, 0), False
    nan = np.isnan(arr)
    inf = np.isinf(arr)
    counts = (int(nan.sum()), int(inf.sum()))
    if is_depth_channel(name):
        neg = np.isneginf(arr)
        replaced = counts[0] > 0 or bool(neg.any())
        arr[nan | neg] = np.inf
    else:
        replaced = True
        arr[nan] = 0.0
        np.clip(arr, -HALF_MAX, HALF_MAX, out=arr)
    return counts, replaced


def _paste(data: np.ndarray, data_win: Window, disp: Window) -> np.ndarray:
    """Place (h, w) data with window ``data_win`` into a zeroed display-window array."""
    H, W = disp[3] - disp[1] + 1, disp[2] - disp[0] + 1
    if data_win == disp:
        return np.ascontiguousarray(data, dtype=np.float32)
    out = np.zeros((H, W), np.float32)
    x0, y0 = max(data_win[0], disp[0]), max(data_win[1], disp[1])
    x1, y1 = min(data_win[2], disp[2]), min(data_win[3], disp[3])
    if x0 <= x1 and y0 <= y1:
        out[y0 - disp[1]:y1 - disp[1] + 1, x0 - disp[0]:x1 - disp[0] + 1] = \
            data[y0 - data_win[1]:y1 - data_win[1] + 1, x0 - data_win[0]:x1 - data_win[0] + 1]
    return out


def _pick_view(info: ExrInfo, view: str | None, path: Path, frame: int | None) -> str | None:
    if view is None:
        return info.views[0] if info.views else None
    if view not in info.views:
        listed = ", ".join(info.views) if info.views else "none (not a multi-view file)"
        raise LayerError(f"no view {view!r}; views are {listed}", path=path, frame=frame)
    return view


def read_exr(path: str | Path, *, view: str | None = None, frame: int | None = None,
             channels: list[str] | None = None) -> ExrImage:
    """Read an EXR (all parts merged, one view) onto its display window as float32 channels.

    ``view=None`` is the hero (first) view; ``channels`` restricts what is read (names as returned,
    i.e. without the view prefix). ``frame`` only labels errors. Raises ImageReadError / LayerError.
    """
    path = Path(path)
    inp = _open(path, frame)
    try:
        return _read_open(inp, path, view=view, frame=frame, wanted=channels)
    except (ImageReadError, LayerError):
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to read the image", path=path, frame=frame) from None
    except Exception as exc:  # noqa: BLE001 - any library failure on a bad file is a read error
        raise ImageReadError(f"cannot read EXR: {type(exc).__name__}: {exc}", path=path, frame=frame) from None
    finally:
        inp.close()


def _read_open(inp: Any, path: Path, *, view: str | None, frame: int | None,
               wanted: list[str] | None) -> ExrImage:
    parts = _read_parts(inp, path, frame)
    info = ExrInfo(path=path, parts=parts, views=_views_of(parts))
    chosen = _pick_view(info, view, path, frame)
    single_part_views = info.multiview_attribute if len(parts) == 1 else ()
    disp = parts[0].display_window
    if disp[2] < disp[0] or disp[3] < disp[1]:
        raise ImageReadError(f"invalid display window {disp}", path=path, frame=frame)
    # Plan: for every part, which file channels to read and the name each gets.
    plan: list[tuple[PartInfo, list[tuple[int, str]]]] = []
    taken: set[str] = set()
    for part in parts:
        if part.deep:
            raise ImageReadError("deep EXR images are not supported", path=path, frame=frame,
                                 hint="flatten the deep image first (e.g. DeepToImage in Nuke)")
        if part.view is not None and chosen is not None and part.view != chosen:
            continue
        picks = []
        for idx, (cname, _type) in enumerate(part.channels):
            if single_part_views:
                v, base = _split_view(cname, single_part_views)
                if (v or single_part_views[0]) != chosen:
                    continue
                cname = base
            if cname in taken and part.name:
                cname = f"{part.name}.{cname}"
            if cname in taken:
                continue
            taken.add(cname)
            picks.append((idx, cname))
        plan.append((part, picks))
    if wanted is not None:
        missing = [c for c in wanted if c not in taken]
        if missing:
            raise LayerError(f"no channel(s) {', '.join(missing)}; channels are {', '.join(sorted(taken))}",
                             path=path, frame=frame)
        keep = set(wanted)
        plan = [(p, [(i, n) for i, n in picks if n in keep]) for p, picks in plan]

    out: dict[str, np.ndarray] = {}
    nonfinite: dict[str, tuple[int, int]] = {}
    replaced: list[str] = []
    mask: np.ndarray | None = None
    data_windows = []
    for part, picks in plan:
        if not picks:
            continue
        dw = part.data_window
        h, w = dw[3] - dw[1] + 1, dw[2] - dw[0] + 1
        if h <= 0 or w <= 0 or h * w * len(picks) > _MAX_SAMPLES:
            raise ImageReadError(f"implausible data window {dw}", path=path, frame=frame)
        lo, hi = min(i for i, _ in picks), max(i for i, _ in picks) + 1
        if not inp.seek_subimage(part.index, 0):
            raise ImageReadError(f"cannot seek to part {part.index}: {_oiio_error(inp)}", path=path, frame=frame)
        pixels = inp.read_image(part.index, 0, lo, hi, "float")
        if pixels is None or inp.has_error:
            raise ImageReadError(f"cannot read pixels of part {part.index}: {_oiio_error(inp)}", path=path,
                                 frame=frame, hint="the file is damaged or truncated; re-render or re-copy it")
        pixels = np.asarray(pixels, dtype=np.float32).reshape(h, w, hi - lo)
        data_windows.append(dw)
        # Channels are views into OIIO's interleaved block when the data window is the display window
        # (no copy: reading costs what a bare OIIO read costs); one finiteness pass covers them all.
        in_place = dw == disp
        all_finite = bool(np.isfinite(pixels).all())
        for idx, name in picks:
            arr = pixels[:, :, idx - lo] if in_place else np.array(pixels[:, :, idx - lo], order="C")
            if not all_finite and not is_depth_channel(name):
                bad_px = ~np.isfinite(arr)
                if bad_px.any():
                    full = bad_px if in_place else _paste(bad_px.astype(np.float32), dw, disp) > 0
                    mask = full if mask is None else (mask | full)
            counts, was_replaced = ((0, 0), False) if all_finite else _clean(arr, name)
            nonfinite[name] = counts
            if was_replaced:
                replaced.append(name)
            out[name] = arr if in_place else _paste(arr, dw, disp)
    bad = {k: nonfinite[k] for k in replaced}
    if bad:
        log.warning("%s%s: non-finite pixels replaced (channel: NaN, Inf): %s", path,
                    f" (frame {frame})" if frame is not None else "", bad)
    ordered = dict(sorted(out.items(), key=lambda kv: _channel_sort_key(kv[0])))
    union = data_windows[0] if data_windows else parts[0].data_window
    for dw in data_windows[1:]:
        union = (min(union[0], dw[0]), min(union[1], dw[1]), max(union[2], dw[2]), max(union[3], dw[3]))
    meta: dict[str, Any] = {}
    for part in reversed(parts):
        meta.update(part.attributes)
    return ExrImage(channels=ordered, width=disp[2] - disp[0] + 1, height=disp[3] - disp[1] + 1,
                    display_window=disp, data_window=union, metadata=meta, nonfinite=nonfinite,
                    path=path, view=chosen, nonfinite_mask=mask)


def check_same_size(a_shape: tuple[int, ...], b_shape: tuple[int, ...], *, path: str | Path | None = None,
                    frame: int | None = None, what: str = "images") -> None:
    """Raise ResolutionMismatchError unless the (H, W) of two shapes agree."""
    if tuple(a_shape[:2]) != tuple(b_shape[:2]):
        raise ResolutionMismatchError(
            f"{what} differ in size: {a_shape[1]}x{a_shape[0]} vs {b_shape[1]}x{b_shape[0]} (WxH)",
            path=path, frame=frame, hint="resize or reformat one of them to match the plate")


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


def layer_channel_names(name: str, nchannels: int) -> list[str]:
    """Channel names :func:`write_layers` gives a layer of ``nchannels`` (see the module docstring)."""
    if nchannels == 1:
        return [f"{name}.Z" if name.lower() in ("depth", "zdepth") else f"{name}.A"]
    suffixes = {2: "UV", 3: "RGB", 4: "RGBA"}.get(nchannels)
    if suffixes is None:
        raise InputError(f"layer {name!r} has {nchannels} channels; 1 to 4 are supported")
    return [f"{name}.{s}" for s in suffixes]


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


def __getattr__(name: str) -> Any:
    """``gvfx.exr.SequenceWriter``: kept importable from here because docs/probe.md documents it there;
    it lives in :mod:`gvfx.exr_sequence` (imported lazily: that module imports this one)."""
    if name == "SequenceWriter":
        from gvfx.exr_sequence import SequenceWriter

        return SequenceWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
