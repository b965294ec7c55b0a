"""Write ``gvfx_nuke/params.json``: every engine's effects and the match stage's controls, as data.

Nuke cannot import gvfx's engines (numpy, torch), so the adapter builds its knobs from this snapshot.
Run it with gvfx's Python after changing an engine's parameters::

    python hosts/nuke/tools/export_params.py            # rewrite the snapshot
    python hosts/nuke/tools/export_params.py --check    # exit 1 when it is out of date

``tests/hosts/test_nuke_params.py`` fails when the snapshot is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "gvfx_nuke" / "params.json"

_TYPES = {int: "int", float: "float", str: "str", bool: "bool", tuple: "tuple", dict: "dict", list: "tuple"}


def param_dict(p) -> dict:
    """One ``gvfx.engines.base.Param`` as JSON-ready data (tuples get their length as ``size``)."""
    default = list(p.default) if isinstance(p.default, (tuple, list)) else p.default
    d = {"name": p.name, "type": _TYPES.get(p.type, "str"), "default": default, "help": p.help,
         "min": p.min, "max": p.max, "choices": list(p.choices) if p.choices else None}
    if d["type"] == "tuple":
        d["size"] = len(p.default) if p.default is not None else 3
    return d


def snapshot() -> dict:
    """The snapshot: ``{"engines": {ENGINE: {EFFECT: {"help", "params"}}}, "match": [params], "failed": {}}``."""
    from gvfx.engines import engine_names, get_engine
    from gvfx.errors import GvfxError
    from gvfx.match.stage import MATCH_PARAMS

    engines, failed = {}, {}
    for name in engine_names():
        try:
            effects = get_engine(name).effects()
        except GvfxError as exc:  # a broken plug-in is reported, not silently dropped
            failed[name] = str(exc)
            continue
        engines[name] = {eff: {"help": info.help, "params": [param_dict(p) for p in info.params]}
                         for eff, info in sorted(effects.items())}
    return {"engines": engines, "match": [param_dict(p) for p in MATCH_PARAMS], "failed": failed}


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that the snapshot is up to date")
    ap.add_argument("-o", "--out", type=Path, default=SNAPSHOT)
    args = ap.parse_args(argv)
    text = render(snapshot())
    if args.check:
        ok = args.out.is_file() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if ok else 'OUT OF DATE (run hosts/nuke/tools/export_params.py)'}")
        return 0 if ok else 1
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
