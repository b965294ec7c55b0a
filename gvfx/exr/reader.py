"""Reading EXR pixels onto the display window, with the NaN/Inf policy (conventions: :mod:`gvfx.exr`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gvfx.errors import ImageReadError, LayerError, ResolutionMismatchError
from gvfx.exr.channels import HALF_MAX, _channel_sort_key, is_depth_channel, layer_channels
from gvfx.exr_info import ExrInfo, PartInfo, Window, _oiio_error, _open, _read_parts, _views_of

log = logging.getLogger(__name__)

__all__ = ["ExrImage", "read_exr", "check_same_size"]

#: refuse headers claiming more samples than this (a fuzzed header must not allocate 100 GB)
_MAX_SAMPLES = 1 << 31


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
