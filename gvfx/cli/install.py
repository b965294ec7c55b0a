"""Commands about what is installed: ``gvfx doctor``, ``gvfx engines``, ``gvfx models``, ``gvfx effects``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gvfx.errors import GvfxError


def cmd_doctor(args: argparse.Namespace) -> int:
    from gvfx.doctor import exit_code, format_checks, run_doctor

    checks = run_doctor(output_root=Path(args.output_root), models_dir=Path(args.models) if args.models else None)
    print(format_checks(checks))
    return exit_code(checks)


def cmd_engines(args: argparse.Namespace) -> int:
    from gvfx.engines import engine_names, get_engine

    for name in engine_names():
        try:
            eng = get_engine(name)
            print(f"{name:10s} effects: {', '.join(sorted(eng.effects()))}")
        except GvfxError as exc:
            print(f"{name:10s} FAILED TO LOAD: {exc}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """gvfx models list | verify [NAME] | import PATH --as NAME (gvfx.engines.diffusion.store)."""
    from gvfx.engines.diffusion import store

    root = args.models
    if args.models_command == "import":
        st = store.import_stack(args.path, args.name, root, link=args.link, allow_pickle=args.allow_pickle)
        print(f"imported {args.path} as {st.name} -> {st.folder}" + ("" if st.ok else f" ({'; '.join(st.problems)})"))
        return 0 if st.ok else 1
    if args.models_command == "verify":
        names = [args.name] if args.name else [s.name for s in store.list_stacks(root) if s.folder.is_dir()]
        bad = 0
        for name in names:
            st = store.verify(name, root, allow_pickle=args.allow_pickle)
            bad += not st.ok
            print(f"{'ok  ' if st.ok else 'FAIL'} {st.name:18s} {st.folder}")
            for problem in st.problems:
                print(f"     - {problem}")
        if not names:
            print(f"no stack installed in {store.models_root(root)}")
        return 1 if bad else 0
    from gvfx.engines.diffusion.memory import describe
    from gvfx.engines.diffusion.runtime import default_dtype, free_gib
    from gvfx.engines.diffusion.stacks import load_manifest

    free = args.free_gb
    dtype = args.dtype
    if free is None or dtype == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        free = free_gib(device) if free is None else free
        dtype = (default_dtype(device) if device != "cpu" else "bf16") if dtype == "auto" else dtype
    print(f"model store: {store.models_root(root)}")
    for st in store.list_stacks(root):
        flag = f"  NON-COMMERCIAL: {', '.join(st.non_commercial)}" if st.non_commercial else ""
        state = "installed" if st.installed else ("incomplete" if st.folder.is_dir() else "missing")
        print(f"{st.name:18s} {st.kind:5s} {st.family:11s} {state:10s}{flag}")
        print(f"{'':18s} licences: {st.licenses}")
        for line in describe(load_manifest(st.name), st.folder, free, dtype):
            print(f"{'':18s} {line}")
    return 0


def cmd_effects(args: argparse.Namespace) -> int:
    from gvfx.engines import engine_names, get_engine

    for name in ([args.engine] if args.engine else engine_names()):
        eng = get_engine(name)
        for eff_name, info in sorted(eng.effects().items()):
            print(f"{name}/{eff_name}: {info.help}")
            for p in info.params:
                rng = ""
                if p.min is not None or p.max is not None:
                    rng = f" [{'' if p.min is None else p.min}..{'' if p.max is None else p.max}]"
                if p.choices:
                    rng = f" {{{', '.join(map(str, p.choices))}}}"
                print(f"    {p.name:18s} {p.type.__name__:6s} default {p.default!r}{rng}  {p.help}")
    return 0


def add_doctor(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx doctor`` command."""
    s = sub.add_parser("doctor", help="check the installation: versions, OCIO, torch devices, disk, hosts",
                       description="Check everything gvfx needs; each line is ok, warn or FAIL with the fix. "
                                   "Exits non-zero when something required is broken.")
    s.add_argument("--output-root", default=".", help="where renders go (free disk is checked there)")
    s.add_argument("--models", help="model store folder (default: $GVFX_MODELS or ~/.cache/gvfx/models)")
    s.set_defaults(func=cmd_doctor)


def add_engines(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx engines`` command."""
    s = sub.add_parser("engines", help="list the generation engines and their effects")
    s.set_defaults(func=cmd_engines)


def add_models(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx models`` command."""
    s = sub.add_parser("models", help="the local model store: list, verify, import diffusion stacks",
                       description="gvfx never downloads weights: fetch them yourself, then import/verify here.")
    s.add_argument("--models", help="model store folder (default: $GVFX_MODELS or ~/.cache/gvfx/models)")
    s.add_argument("--allow-pickle", action="store_true", help="accept pickled .bin/.ckpt weights (trusted files only)")
    models = s.add_subparsers(dest="models_command", metavar="ACTION")
    m = models.add_parser("list", help="every stack manifest, installed or not: licences, size on disk, computed "
                                       "VRAM per memory plan and the plan a free-memory figure gets")
    m.add_argument("--free-gb", type=float, default=None,
                   help="free GPU memory to plan for, GiB (default: this machine's, or the CPU)")
    m.add_argument("--dtype", default="auto", choices=("auto", "fp16", "bf16", "fp32"),
                   help="precision to plan for (default: this machine's; bf16 without a GPU)")
    m = models.add_parser("verify", help="files present, safetensors readable, hashes, matching base model")
    m.add_argument("name", nargs="?", help="stack name (default: every installed stack)")
    m = models.add_parser("import", help="copy (or --link) a diffusers-format folder into the store")
    m.add_argument("path", help="the folder, laid out as the manifest says")
    m.add_argument("--as", dest="name", required=True, help="stack (manifest) name")
    m.add_argument("--link", action="store_true", help="symlink instead of copying")
    s.set_defaults(func=cmd_models)


def add_effects(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx effects`` command."""
    s = sub.add_parser("effects", help="list every effect with its parameters and defaults")
    s.add_argument("--engine", help="only this engine")
    s.set_defaults(func=cmd_effects)
