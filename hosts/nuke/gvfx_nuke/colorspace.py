"""The script's working space as a colour space name: OCIO role names resolved through the script's
own OCIO config (no ``nuke`` import; the adapter passes the Root knobs in).

Nuke's ``workingSpaceLUT`` can hold a role (``scene_linear``, ``compositing_linear``...). What a role
means is the config's business: under ``nuke-default`` ``scene_linear`` is ``linear`` (linear Rec.709),
under the ACES configs it is ACEScg. So a role is looked up in the config the script uses (Project
Settings > Color > OCIO config: a built-in name or ``customOCIOConfigPath``), never assumed to be ACEScg.
"""

from __future__ import annotations

import re
from pathlib import Path

from gvfx_nuke.params import KnobError

#: OCIO role names (OCIO v1 and v2)
ROLES = frozenset({"scene_linear", "compositing_linear", "rendering", "reference", "data", "default",
                   "color_picking", "matte_paint", "texture_paint", "color_timing", "compositing_log",
                   "aces_interchange", "cie_xyz_d65_interchange"})

#: roles of the configs Nuke ships (as in each config's ``roles:`` section)
_NUKE_DEFAULT = {"scene_linear": "linear", "reference": "linear", "compositing_linear": "linear",
                 "rendering": "linear", "data": "raw", "default": "raw", "color_picking": "sRGB",
                 "matte_paint": "sRGB", "texture_paint": "sRGB", "color_timing": "Cineon",
                 "compositing_log": "Cineon"}
_ACES_1X = {"scene_linear": "ACES - ACEScg", "compositing_linear": "ACES - ACEScg", "rendering": "ACES - ACEScg",
            "reference": "ACES - ACES2065-1", "aces_interchange": "ACES - ACES2065-1"}
_ACES_CG = {"scene_linear": "ACEScg", "compositing_linear": "ACEScg", "rendering": "ACEScg",
            "aces_interchange": "ACES2065-1", "reference": "ACES2065-1"}


def _builtin_roles(config: str) -> dict[str, str] | None:
    key = config.strip().lower()
    if key in ("", "nuke-default", "nuke_default"):
        return _NUKE_DEFAULT
    if re.fullmatch(r"aces_1\.\d+(\.\d+)?", key):
        return _ACES_1X
    if "cg-config" in key or "studio-config" in key or key in ("ocio://default", "aces_1.3", "aces_2.0"):
        return _ACES_CG
    return None


def config_roles(path: str | Path) -> dict[str, str]:
    """The ``roles:`` mapping of an OCIO config file (``name: colour space`` lines, standard library only)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnobError("customOCIOConfigPath", f"cannot read the OCIO config {p}: {exc.strerror or exc}") from None
    roles: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        if re.match(r"^roles\s*:\s*$", line):
            inside = True
            continue
        if inside:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[:1].isspace():
                break
            m = re.match(r"^\s+([\w.-]+)\s*:\s*(.+?)\s*$", line)
            if m:
                roles[m.group(1)] = m.group(2).strip("'\"")
    if not roles:
        raise KnobError("customOCIOConfigPath", f"the OCIO config {p} has no roles section")
    return roles


def resolve_working_space(working_space: str, *, color_management: str = "", ocio_config: str = "",
                          config_path: str = "") -> str:
    """``working_space`` as a colour space name: a role resolved through the script's config, else as is.

    ``color_management`` is Root's ``colorManagement`` (``Nuke`` means the nuke-default spaces),
    ``ocio_config`` its ``OCIO_config`` (a built-in name or ``custom``), ``config_path`` its
    ``customOCIOConfigPath``. A role of a config gvfx cannot read is a KnobError saying what to do.
    """
    name = (working_space or "").strip()
    if name not in ROLES:
        return name
    if color_management.strip().lower() == "nuke":
        roles = _NUKE_DEFAULT
        where = "nuke-default"
    elif ocio_config.strip().lower() == "custom" or (config_path and not _builtin_roles(ocio_config)):
        if not config_path:
            raise KnobError("colorspace", f"the working space is the OCIO role {name!r} of a custom config, but "
                                          "Project Settings > Color has no custom OCIO config path")
        roles, where = config_roles(config_path), config_path
    else:
        roles = _builtin_roles(ocio_config)
        where = ocio_config or "nuke-default"
        if roles is None:
            raise KnobError("colorspace", f"the working space is the OCIO role {name!r} of the config {where!r}, "
                                          "which gvfx does not know: set Project Settings > Color > working space "
                                          "to a colour space name")
    if name not in roles:
        raise KnobError("colorspace", f"the OCIO config {where} has no role {name!r}: set the working space to a "
                                      "colour space name")
    return roles[name]
