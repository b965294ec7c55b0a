"""OpenEXR reading and writing: the one package that talks to OpenImageIO about EXRs.

Split by idea: :mod:`gvfx.exr.reader` (``read_exr``, ``ExrImage``), :mod:`gvfx.exr.writer` (``write_exr``,
``write_layers``) and :mod:`gvfx.exr.channels` (depth channels, channel order, layer naming); every public
name is re-exported here, so ``from gvfx.exr import read_exr`` stays the call.

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

from typing import Any

import OpenImageIO as oiio  # noqa: F401 - ``gvfx.exr.oiio``: the library the reader and writer call

from gvfx.exr.channels import HALF_MAX, is_depth_channel, layer_channel_names, layer_channels
from gvfx.exr.reader import ExrImage, check_same_size, read_exr
from gvfx.exr.writer import CHROMATICITIES, COMPRESSIONS, write_exr, write_layers
from gvfx.exr_info import Window  # noqa: F401 - importable from here as before

__all__ = ["ExrImage", "read_exr", "write_exr", "write_layers", "layer_channels", "layer_channel_names",
           "is_depth_channel", "check_same_size", "COMPRESSIONS", "HALF_MAX", "CHROMATICITIES"]


def __getattr__(name: str) -> Any:
    """``gvfx.exr.SequenceWriter``: kept importable from here because docs/probe.md documents it there;
    it lives in :mod:`gvfx.exr_sequence` (imported lazily: that module imports this one)."""
    if name == "SequenceWriter":
        from gvfx.exr_sequence import SequenceWriter

        return SequenceWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
