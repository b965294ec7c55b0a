"""Validating values against ``Param`` descriptions: the checks job files, match settings and host
requests share, with errors that name the field (``elements[fire].params.buoyancy``).

Core, so the match stage and the engines validate their settings without importing the jobs layer.
"""

from __future__ import annotations

import math
from typing import Any

from gvfx.element import Param
from gvfx.errors import JobError

__all__ = ["check_keys", "num", "vec", "validate_params"]


def check_keys(d: Any, allowed: set[str], where: str) -> dict:
    """``d`` as a mapping with only ``allowed`` keys; errors name ``where``."""
    if not isinstance(d, dict):
        raise JobError(f"{where}: expected a mapping, got {type(d).__name__}")
    unknown = sorted(str(k) for k in set(d) - allowed)
    if unknown:
        raise JobError(f"{where}: unknown key(s) {', '.join(unknown)}", hint=f"allowed: {', '.join(sorted(allowed))}")
    return d


def num(v: Any, where: str, *, positive: bool = False, integer: bool = False,
        lo: float | None = None, hi: float | None = None) -> float | int:
    """``v`` as a finite number (not a bool, never NaN/Inf), optionally positive, whole or within
    ``lo``..``hi``; errors name ``where``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise JobError(f"{where}: expected a number, got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise JobError(f"{where}: {v!r} is not a finite number", hint="give an ordinary number")
    if isinstance(v, int) and abs(v) > 2**53:
        raise JobError(f"{where}: {v} is too large")
    if integer and not float(v).is_integer():
        raise JobError(f"{where}: expected a whole number, got {v!r}")
    if positive and v <= 0:
        raise JobError(f"{where}: must be positive, got {v!r}")
    if lo is not None and v < lo:
        raise JobError(f"{where}: {v!r} is below the minimum {lo:g}")
    if hi is not None and v > hi:
        raise JobError(f"{where}: {v!r} is above the maximum {hi:g}")
    return int(v) if integer else float(v)


def vec(v: Any, n: int, where: str) -> tuple[float, ...]:
    """``v`` as ``n`` numbers."""
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise JobError(f"{where}: expected {n} numbers, got {v!r}")
    return tuple(float(num(x, where)) for x in v)


def validate_params(params: Any, spec_params: tuple[Param, ...], where: str) -> dict[str, Any]:
    """Check an element's ``params`` against the effect's Param descriptions; return typed values."""
    check_keys(params, {p.name for p in spec_params}, where)
    out: dict[str, Any] = {}
    by_name = {p.name: p for p in spec_params}
    for key, value in params.items():
        p = by_name[key]
        w = f"{where}.{key}"
        if p.choices is not None:
            if isinstance(value, (list, dict)) or value not in p.choices:
                raise JobError(f"{w}: {value!r} is not one of {', '.join(map(str, p.choices))}")
            out[key] = value
            continue
        if p.type in (tuple, list):
            n = len(p.default) if isinstance(p.default, (tuple, list)) else None
            if not isinstance(value, (list, tuple)) or (n is not None and len(value) != n):
                raise JobError(f"{w}: expected {n or 'a list of'} numbers, got {value!r}")
            out[key] = tuple(float(num(x, w)) for x in value)
            continue
        if p.type is bool:
            if not isinstance(value, bool):
                raise JobError(f"{w}: expected true or false, got {value!r}")
            out[key] = value
            continue
        if p.type in (int, float):
            v = num(value, w, integer=p.type is int)
            if p.min is not None and v < p.min:
                raise JobError(f"{w}: {v} is below the minimum {p.min}")
            if p.max is not None and v > p.max:
                raise JobError(f"{w}: {v} is above the maximum {p.max}")
            out[key] = v
            continue
        if p.type is str and not isinstance(value, str):
            raise JobError(f"{w}: expected text, got {value!r}")
        if p.type is str and "\0" in value:
            raise JobError(f"{w}: text holds a NUL character")
        out[key] = value
    return out
