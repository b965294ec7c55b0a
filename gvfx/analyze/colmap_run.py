"""Running COLMAP for the camera solve: the 8-bit proxies it reads, the worker process and its environment.

The worker (:mod:`gvfx.analyze.colmap_worker`) runs in its own process: with pycolmap loaded, OIIO's PNG
writer aborts (see FIELD_NOTES); its progress is read back from its log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gvfx.errors import AnalyzeError

log = logging.getLogger(__name__)

__all__ = ["write_proxies", "worker_environment", "run_worker"]

ImagesFn = Callable[[int], np.ndarray]
ProgressFn = Callable[[str, int, int], None]


def write_proxies(frames: list[int], images: ImagesFn, folder: Path, size: tuple[int, int], *,
                  matte: ImagesFn | None = None, progress: ProgressFn | None = None) -> list[str]:
    """Write display-referred 8-bit PNG proxies (and COLMAP masks from the matte); returns image names.

    Runs in the main process (never where pycolmap is loaded: see FIELD_NOTES). Masks: COLMAP reads
    ``masks/<image name>.png`` and ignores features where the mask is 0, so white matte -> 0.
    """
    from PIL import Image
    from scipy.ndimage import maximum_filter

    from gvfx.color import preview_srgb

    img_dir = folder / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir = folder / "masks"
    if matte is not None:
        mask_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for k, f in enumerate(frames):
        name = f"f{k:05d}.png"
        rgb = np.asarray(images(f), dtype=np.float32)[..., :3]
        im = Image.fromarray(preview_srgb(rgb)).resize(size, Image.Resampling.LANCZOS)
        im.save(img_dir / name)
        if matte is not None:
            m = np.asarray(matte(f), dtype=np.float32)
            m = m[..., 0] if m.ndim == 3 else m
            small = np.asarray(Image.fromarray((np.clip(m, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR))
            ignore = maximum_filter(small > 127, size=5)  # no features on the matte's edge either
            Image.fromarray(np.where(ignore, 0, 255).astype(np.uint8)).save(mask_dir / f"{name}.png")
        names.append(name)
        if progress:
            progress("proxies", k + 1, len(frames))
    return names


_LOG_PATTERNS = (
    ("features", re.compile(r"Processed file \[(\d+)/(\d+)\]")),
    ("matching", re.compile(r"Processing image \[(\d+)/(\d+)\]")),
    ("mapping", re.compile(r"num_reg_frames=(\d+)\)")),
)


def worker_environment() -> dict[str, str]:
    """The worker's environment: one OpenMP/BLAS thread, so sparse solves sum in one order on any CPU.

    COLMAP's own thread pools are sized by the protocol's ``*_threads``; the bundled OpenMP runtime and
    BLAS would otherwise split reductions across threads in an order that varies between machines."""
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = "1"
    if _cpu_has("avx2", "fma"):
        # pycolmap's static OpenBLAS picks its kernels by CPU (Haswell, SkylakeX, Zen…), and the kernels
        # round descriptor distances differently: pin the one every AVX2 machine runs, for the same matches.
        env["OPENBLAS_CORETYPE"] = "Haswell"
    return env


def _cpu_has(*flags: str) -> bool:
    """Whether /proc/cpuinfo lists every one of these CPU flags (False where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    have = set(line.split(":", 1)[-1].split())
    return all(f in have for f in flags)


def run_worker(args: dict, *, timeout_s: float, n_images: int, progress: ProgressFn | None = None
               ) -> tuple[dict, dict[str, np.ndarray]]:
    """Run ``gvfx.analyze.colmap_worker`` in a subprocess, reporting progress from its log; kill it on timeout."""
    work = Path(args["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    args_path = work / "worker_args.json"
    args_path.write_text(json.dumps(args))
    log_path = work / "colmap.log"
    Path(args["out_json"]).unlink(missing_ok=True)
    t0 = time.monotonic()
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "gvfx.analyze.colmap_worker", str(args_path)],
                                stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env=worker_environment())
        seen: dict[str, int] = {}
        try:
            while proc.poll() is None:
                if time.monotonic() - t0 > timeout_s:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise AnalyzeError(f"the camera solve took longer than {timeout_s:.0f} s and was stopped",
                                       path=log_path, hint="solve fewer frames (--frames) or a smaller proxy "
                                       "(--proxy-width), or give the camera")
                if progress:
                    _report_log(log_path, n_images, seen, progress)
                time.sleep(0.25)
        except BaseException:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
    if progress:
        _report_log(log_path, n_images, seen, progress)
    out_json = Path(args["out_json"])
    if not out_json.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise AnalyzeError(f"the COLMAP worker died (exit code {proc.returncode}): {' | '.join(tail)}",
                           path=log_path, hint="run `gvfx doctor`; check memory and the proxy size")
    result = json.loads(out_json.read_text())
    if result.get("status") != "ok":
        log.debug("worker traceback:\n%s", result.get("traceback", ""))
        raise AnalyzeError(f"the COLMAP solve failed: {result.get('message')}", path=log_path,
                           hint="see the log; check the plate frames")
    with np.load(args["out_npz"]) as z:
        arrays = {k: z[k] for k in z.files}
    return result, arrays


def _report_log(path: Path, n_images: int, seen: dict[str, int], progress: ProgressFn) -> None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for stage, rx in _LOG_PATTERNS:
        hits = rx.findall(text)
        if not hits:
            continue
        done = int(hits[-1][0] if isinstance(hits[-1], tuple) else hits[-1])
        if seen.get(stage) != done:
            seen[stage] = done
            progress(stage, min(done, n_images), n_images)
