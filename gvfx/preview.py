"""Pictures people would rather look at: display conversion, contact sheets and GIFs (PIL).

Images handed to the sheet and GIF writers are display-ready (H, W, 3) uint8 sRGB; make them from
scene-linear pixels with :func:`to_preview` and :func:`element_preview`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gvfx.errors import ColorError, ImageWriteError, InputError

log = logging.getLogger(__name__)

__all__ = ["to_preview", "element_preview", "contact_sheet", "sheet_layout", "write_gif"]

#: contact sheet layout, in pixels
PAD_PX = 8
HEADER_PX = 24
LABEL_WIDTH_PX = 120
BACKGROUND = (28, 28, 30)
TEXT = (220, 220, 220)

# ACEScg (AP1, D60) -> linear Rec.709 (D65, Bradford): only for the fallback when gvfx.color is absent.
_AP1_TO_REC709 = np.array([[1.70505, -0.62179, -0.08326],
                           [-0.13026, 1.14080, -0.01055],
                           [-0.02400, -0.12897, 1.15297]], dtype=np.float32)


def _fallback_preview(pixels: np.ndarray, src: str) -> np.ndarray:
    """ACEScg or linear Rec.709 -> sRGB uint8 with a fixed matrix and the sRGB curve (no OCIO)."""
    rgb = np.asarray(pixels, dtype=np.float32)[..., :3]
    key = src.lower().replace(" ", "")
    if key in ("acescg", "scene_linear"):
        rgb = rgb @ _AP1_TO_REC709.T
    elif key not in ("lin_rec709", "lin_srgb", "linearrec.709(srgb)"):
        raise ColorError(f"no preview conversion from {src!r} without gvfx.color")
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    enc = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return (enc * 255.0 + 0.5).astype(np.uint8)


def to_preview(pixels: np.ndarray, src: str = "ACEScg") -> np.ndarray:
    """Scene-linear (H, W, 3|4) pixels in ``src`` -> (H, W, 3) uint8 sRGB (alpha ignored, clipped)."""
    a = np.asarray(pixels)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"preview needs (H, W, 3|4) pixels, got shape {a.shape}")
    try:
        from gvfx.color import preview_srgb
    except ImportError:
        log.debug("gvfx.color unavailable: using the built-in ACEScg -> sRGB preview")
        return _fallback_preview(a, src)
    return preview_srgb(a, src=src)


def _checker(h: int, w: int, check_px: int) -> np.ndarray:
    """(H, W) float32 checkerboard of two dark linear greys (0.02 / 0.05)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.where(((yy // check_px) + (xx // check_px)) % 2 == 0, 0.02, 0.05).astype(np.float32)


def element_preview(rgba: np.ndarray, src: str = "ACEScg", *, check_px: int = 16) -> np.ndarray:
    """A premultiplied element (H, W, 4) over a dark checkerboard, so its alpha reads -> (H, W, 3) uint8."""
    a = np.asarray(rgba, dtype=np.float32)
    if a.ndim != 3 or a.shape[2] != 4:
        raise InputError(f"element preview needs (H, W, 4) RGBA, got shape {a.shape}")
    bg = _checker(a.shape[0], a.shape[1], check_px)[:, :, None]
    return to_preview(a[:, :, :3] + bg * (1.0 - a[:, :, 3:4]), src=src)


def _atomic_save(img: Image.Image, out: Path, fmt: str, **kw: object) -> Path:
    """Save through a temporary file in the same folder, then rename: readers never see half a file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        img.save(tmp, format=fmt, **kw)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ImageWriteError(f"cannot write {fmt}: {exc}", path=out) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _check_u8(img: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"{what} must be (H, W, 3) uint8, got {a.dtype} {a.shape}",
                         hint="convert with gvfx.preview.to_preview first")
    return a


def _thumb_height(img: np.ndarray, thumb_width: int) -> int:
    return max(1, round(img.shape[0] * thumb_width / img.shape[1]))


def sheet_layout(rows: Sequence[Sequence[np.ndarray | None]], thumb_width: int = 320,
                 ) -> tuple[tuple[int, int], list[list[tuple[int, int]]]]:
    """The contact sheet's size (width, height) and each cell's top-left (x, y), in pixels.

    Columns are ``thumb_width`` wide after a ``LABEL_WIDTH_PX`` label column; each row is as tall as
    its tallest thumbnail (aspect kept); ``PAD_PX`` between and around cells, ``HEADER_PX`` on top.
    """
    ncols = max((len(r) for r in rows), default=0)
    width = LABEL_WIDTH_PX + ncols * (thumb_width + PAD_PX) + PAD_PX
    y = HEADER_PX + PAD_PX
    origins = []
    for row in rows:
        heights = [_thumb_height(im, thumb_width) for im in row if im is not None]
        row_h = max(heights, default=_thumb_height(np.zeros((9, 16)), thumb_width))
        origins.append([(LABEL_WIDTH_PX + PAD_PX + c * (thumb_width + PAD_PX), y) for c in range(len(row))])
        y += row_h + PAD_PX
    return (width, y), origins


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, max_px: int) -> str:
    if draw.textlength(text, font=font) <= max_px:
        return text
    while text and draw.textlength(text + "...", font=font) > max_px:
        text = text[:-1]
    return text + "..."


def contact_sheet(rows: Sequence[Sequence[np.ndarray | None]], row_labels: Sequence[str],
                  col_labels: Sequence[str], out_png: str | Path, *, thumb_width: int = 320) -> Path:
    """Write a labelled grid PNG of thumbnails, e.g. rows plate / element / comp, columns frames.

    Each image is display-ready (H, W, 3) uint8 (``None`` leaves a cell empty); thumbnails are
    ``thumb_width`` wide, aspect kept. Layout: :func:`sheet_layout`. Written atomically.
    """
    if len(row_labels) != len(rows):
        raise InputError(f"{len(rows)} rows but {len(row_labels)} row labels")
    ncols = max((len(r) for r in rows), default=0)
    if ncols == 0:
        raise InputError("the contact sheet has no images")
    if len(col_labels) != ncols:
        raise InputError(f"{ncols} columns but {len(col_labels)} column labels")
    if thumb_width < 8:
        raise InputError(f"thumb_width {thumb_width} is too small")
    (width, height), origins = sheet_layout(rows, thumb_width)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for c, label in enumerate(col_labels):
        x = LABEL_WIDTH_PX + PAD_PX + c * (thumb_width + PAD_PX)
        draw.text((x, PAD_PX // 2), _fit_text(draw, str(label), font, thumb_width), fill=TEXT, font=font)
    for r, row in enumerate(rows):
        y = origins[r][0][1] if origins[r] else HEADER_PX + PAD_PX
        draw.text((PAD_PX, y), _fit_text(draw, str(row_labels[r]), font, LABEL_WIDTH_PX - 2 * PAD_PX),
                  fill=TEXT, font=font)
        for c, img in enumerate(row):
            if img is None:
                continue
            a = _check_u8(img, f"image at row {r}, column {c}")
            thumb = Image.fromarray(a).resize((thumb_width, _thumb_height(a, thumb_width)),
                                              Image.Resampling.LANCZOS)
            sheet.paste(thumb, origins[r][c])
    out = _atomic_save(sheet, Path(out_png), "PNG")
    log.info("wrote contact sheet %s (%dx%d)", out, width, height)
    return out


def write_gif(images: Sequence[np.ndarray], out_path: str | Path, fps: float = 24,
              max_width: int = 480) -> Path:
    """Write display-ready (H, W, 3) uint8 frames as a looping GIF, downscaled to ``max_width``.

    Each frame gets its own adaptive 256-colour palette. GIF stores delays in 1/100 s, so the frame
    duration is rounded; PIL merges consecutive identical frames (their time adds up).
    """
    if not images:
        raise InputError("no frames for the GIF")
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    frames = []
    for i, img in enumerate(images):
        a = _check_u8(img, f"GIF frame {i}")
        im = Image.fromarray(a)
        if im.width > max_width:
            im = im.resize((max_width, max(1, round(im.height * max_width / im.width))), Image.Resampling.LANCZOS)
        frames.append(im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG))
    duration_ms = max(20, round(1000.0 / fps / 10) * 10)
    out = _atomic_save(frames[0], Path(out_path), "GIF", save_all=True, append_images=frames[1:],
                       duration=duration_ms, loop=0)
    log.info("wrote GIF %s (%d frames)", out, len(frames))
    return out
