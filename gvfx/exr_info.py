"""OpenEXR headers: opening a file safely and reading its parts, channels, windows and views (no pixels).

Windows are EXR-style inclusive boxes ``(x0, y0, x1, y1)``. OpenImageIO's failures (``None`` / error
text) become :class:`gvfx.errors.ImageReadError` here, naming the file and frame; :mod:`gvfx.exr` reads
pixels on top of this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from gvfx.errors import ImageReadError

log = logging.getLogger(__name__)

__all__ = ["ExrInfo", "PartInfo", "read_info", "Window"]

Window = tuple[int, int, int, int]


# ----------------------------------------------------------------------------------------- helpers

def _oiio_error(obj: Any = None) -> str:
    """OIIO's pending error text, never raising (fuzzed files can give undecodable bytes)."""
    for source in (obj, oiio):
        if source is None:
            continue
        try:
            msg = source.geterror()
        except UnicodeDecodeError:
            msg = "(undecodable error text from the EXR library)"
        except Exception:  # noqa: BLE001 - the error text is best effort
            msg = ""
        if msg:
            return msg.strip().splitlines()[0][:300]
    return "unknown error"


def _window(spec: Any, full: bool) -> Window:
    if full:
        return (spec.full_x, spec.full_y, spec.full_x + spec.full_width - 1, spec.full_y + spec.full_height - 1)
    return (spec.x, spec.y, spec.x + spec.width - 1, spec.y + spec.height - 1)


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, tuple):
        return tuple(_attr_value(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _attributes(spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(len(spec.extra_attribs)):
        try:
            a = spec.extra_attribs[i]
            out[a.name] = _attr_value(a.value)
        except Exception:  # noqa: BLE001 - skip an undecodable attribute, keep the rest
            log.debug("skipping an undecodable header attribute %d", i)
    return out


def _check_file(path: Path, frame: int | None) -> None:
    if not path.exists():
        raise ImageReadError("no such file", path=path, frame=frame, hint="check the path and frame range")
    if path.is_dir():
        raise ImageReadError("is a folder, not an EXR file", path=path, frame=frame)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"\x76\x2f\x31\x01":
        raise ImageReadError("not an OpenEXR file (bad magic number)", path=path, frame=frame,
                             hint="gvfx reads scene-linear EXR plates; convert other formats first")


def _open(path: Path, frame: int | None) -> Any:
    _check_file(path, frame)
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        msg = _oiio_error()
        if "format reader" in msg:  # EXR magic but OIIO's EXR reader refused the header
            msg = "damaged EXR header (OpenEXR refused it)"
        raise ImageReadError(f"cannot open EXR: {msg}", path=path, frame=frame,
                             hint="the file is damaged or truncated; re-render or re-copy it")
    return inp


# ------------------------------------------------------------------------------------ header info

@dataclass(frozen=True)
class PartInfo:
    """One part (subimage) of an EXR header. Windows are inclusive (x0, y0, x1, y1)."""

    index: int
    name: str | None
    view: str | None
    channels: tuple[tuple[str, str], ...]  # (name, pixel type: half/float/uint)
    data_window: Window
    display_window: Window
    compression: str
    tiled: bool
    deep: bool
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExrInfo:
    """Headers of an EXR file: its parts and the views it holds (hero view first)."""

    path: Path
    parts: tuple[PartInfo, ...]
    views: tuple[str, ...]

    @property
    def display_window(self) -> Window:
        return self.parts[0].display_window

    @property
    def width(self) -> int:
        """Display window width in pixels."""
        x0, _, x1, _ = self.display_window
        return x1 - x0 + 1

    @property
    def height(self) -> int:
        """Display window height in pixels."""
        _, y0, _, y1 = self.display_window
        return y1 - y0 + 1

    @property
    def multiview_attribute(self) -> tuple[str, ...]:
        mv = self.parts[0].attributes.get("multiView")
        if isinstance(mv, str):
            return (mv,)
        return tuple(mv) if mv else ()


def _part_info(inp: Any, index: int) -> PartInfo:
    spec = inp.spec()
    attrs = _attributes(spec)
    formats = spec.channelformats or (spec.format,) * spec.nchannels
    channels = tuple((str(n), str(f)) for n, f in zip(spec.channelnames, formats))
    view = attrs.get("view")
    name = attrs.get("name")
    return PartInfo(index=index, name=name if isinstance(name, str) else None,
                    view=view if isinstance(view, str) else None, channels=channels,
                    data_window=_window(spec, False), display_window=_window(spec, True),
                    compression=str(attrs.get("compression", "none")), tiled=spec.tile_width > 0,
                    deep=bool(spec.deep), attributes=attrs)


def _views_of(parts: tuple[PartInfo, ...]) -> tuple[str, ...]:
    mv = parts[0].attributes.get("multiView")
    views: list[str] = [mv] if isinstance(mv, str) else list(mv or ())
    for p in parts:
        if p.view and p.view not in views:
            views.append(p.view)
    return tuple(views)


def _read_parts(inp: Any, path: Path, frame: int | None) -> tuple[PartInfo, ...]:
    parts = []
    i = 0
    while True:
        if i > 0 and not inp.seek_subimage(i, 0):
            break
        parts.append(_part_info(inp, i))
        i += 1
        if i > 4096:
            raise ImageReadError("implausible number of parts", path=path, frame=frame)
    return tuple(parts)


def read_info(path: str | Path, *, frame: int | None = None) -> ExrInfo:
    """Headers only (fast): parts, channels with pixel types, windows, compression, views."""
    path = Path(path)
    inp = _open(path, frame)
    try:
        parts = _read_parts(inp, path, frame)
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - OIIO/bindings errors on damaged headers
        raise ImageReadError(f"cannot read EXR header: {exc}", path=path, frame=frame) from None
    finally:
        inp.close()
    return ExrInfo(path=path, parts=parts, views=_views_of(parts))
