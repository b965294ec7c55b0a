"""EXR channel and layer naming, shared by the reader and the writer: which channels are depth, the
canonical channel order, the names a layer of C channels gets (conventions: :mod:`gvfx.exr`)."""

from __future__ import annotations

from typing import Iterable

from gvfx.errors import InputError

__all__ = ["is_depth_channel", "layer_channels", "layer_channel_names", "HALF_MAX"]

HALF_MAX = 65504.0
_DEPTH_LAYERS = {"depth", "z", "zdepth", "depth_z", "distance"}
_SUFFIX_ORDER = {s: i for i, s in enumerate(["R", "G", "B", "A", "U", "V", "X", "Y", "Z"])}


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


def layer_channels(channels: Iterable[str], name: str) -> list[str]:
    """Channel names of layer ``name`` in canonical order (an exact channel name gives itself)."""
    names = list(channels)
    if name in names:
        return [name]
    prefix = name + "."
    found = [n for n in names if n.startswith(prefix) and "." not in n[len(prefix):]]
    return sorted(found, key=_suffix_key)



def layer_channel_names(name: str, nchannels: int) -> list[str]:
    """Channel names :func:`write_layers` gives a layer of ``nchannels`` (see the module docstring)."""
    if nchannels == 1:
        return [f"{name}.Z" if name.lower() in ("depth", "zdepth") else f"{name}.A"]
    suffixes = {2: "UV", 3: "RGB", 4: "RGBA"}.get(nchannels)
    if suffixes is None:
        raise InputError(f"layer {name!r} has {nchannels} channels; 1 to 4 are supported")
    return [f"{name}.{s}" for s in suffixes]
