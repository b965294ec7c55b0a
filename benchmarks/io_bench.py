"""EXR I/O benchmark: gvfx's writer/reader against a bare OpenImageIO loop, in the same process.

A 2048x1152 RGBA+Z half sequence (smooth content + grain). Prints frames per second (medians over
repeats) and the ratios gvfx / bare OIIO. Targets: single-frame reads >= 0.9x bare OIIO (its own
threads); sequence reads faster than bare single-threaded OIIO.

    .venv/bin/python benchmarks/io_bench.py [--frames 12] [--repeats 3] [--compression zip]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from gvfx.exr import read_exr, write_layers
from gvfx.exr_sequence import SequenceWriter, read_sequence
from gvfx.sequence import discover

W, H = 2048, 1152


def make_frame(f: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(f)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = 0.5 + 0.4 * np.sin(xx / 97.0 + f * 0.1) * np.cos(yy / 61.0)
    rgba = np.stack([base, base * 0.8, base * 0.6, np.ones_like(base)], axis=-1)
    rgba[..., :3] += rng.normal(0, 0.01, (H, W, 3)).astype(np.float32)
    z = (10.0 + yy / 100.0).astype(np.float32)
    return rgba.astype(np.float32), z


def bare_write(path: Path, rgba: np.ndarray, z: np.ndarray, compression: str) -> None:
    spec = oiio.ImageSpec(W, H, 5, "half")
    spec.channelnames = ("R", "G", "B", "A", "Z")
    spec.channelformats = tuple(oiio.TypeDesc(t) for t in ("half",) * 4 + ("float",))
    spec.attribute("compression", compression)
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(np.concatenate([rgba, z[..., None]], axis=-1))
    out.close()


def bare_read(path: Path) -> np.ndarray:
    inp = oiio.ImageInput.open(str(path))
    pix = inp.read_image(0, 0, 0, 5, "float")
    inp.close()
    return pix


def median_fps(fn, n_frames: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_frames / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compression", default="zip")
    args = ap.parse_args()
    n, comp = args.frames, args.compression
    frames = [make_frame(f) for f in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        nthreads = oiio.get_int_attribute("threads")

        def w_bare() -> None:
            for f, (rgba, z) in enumerate(frames):
                bare_write(d / f"bare.{f:04d}.exr", rgba, z, comp)

        def w_gvfx_serial() -> None:
            for f, (rgba, z) in enumerate(frames):
                write_layers(d / f"g1.{f:04d}.exr", rgba=rgba, z=z, compression=comp)

        def w_gvfx_pool() -> None:
            with SequenceWriter(d / "g.####.exr", threads=2, compression=comp) as wr:
                for f, (rgba, z) in enumerate(frames):
                    wr.write(f, rgba=rgba, z=z)

        res = {"write bare OIIO": median_fps(w_bare, n, args.repeats),
               "write gvfx (1 frame at a time)": median_fps(w_gvfx_serial, n, args.repeats),
               "write gvfx SequenceWriter(2)": median_fps(w_gvfx_pool, n, args.repeats)}
        seq = discover(d / "g.####.exr")
        paths = [seq.path(f) for f in seq.frames]

        def r_bare_single() -> None:  # OIIO's own threads
            for p in paths:
                bare_read(p)

        def r_bare_seq_1thread() -> None:
            # single-threaded for real: OpenEXR decodes on its own pool (exr_threads), not OIIO's `threads`
            exr_threads = oiio.get_int_attribute("exr_threads")
            oiio.attribute("threads", 1)
            oiio.attribute("exr_threads", 1)
            try:
                for p in paths:
                    bare_read(p)
            finally:
                oiio.attribute("threads", nthreads)
                oiio.attribute("exr_threads", exr_threads)

        def r_gvfx_single() -> None:
            for p in paths:
                read_exr(p)

        def r_gvfx_seq() -> None:
            for _ in read_sequence(seq, threads=2):
                pass

        res["read bare OIIO, own threads"] = median_fps(r_bare_single, n, args.repeats)
        res["read bare OIIO, threads=1 (sequence baseline)"] = median_fps(r_bare_seq_1thread, n, args.repeats)
        res["read gvfx read_exr, frame by frame"] = median_fps(r_gvfx_single, n, args.repeats)
        res["read gvfx read_sequence(threads=2)"] = median_fps(r_gvfx_seq, n, args.repeats)
        size_mib = sum(p.stat().st_size for p in paths) / n / 2**20

    print(f"{n} frames {W}x{H} RGBA+Z half ({comp}, {size_mib:.1f} MiB/frame), medians of {args.repeats}, "
          f"OIIO threads={nthreads}")
    for k, v in res.items():
        print(f"  {k:<48} {v:6.2f} fps")
    print("ratios:")
    print(f"  gvfx write (serial) / bare write              {res['write gvfx (1 frame at a time)'] / res['write bare OIIO']:.2f}x")
    print(f"  gvfx SequenceWriter / bare write              {res['write gvfx SequenceWriter(2)'] / res['write bare OIIO']:.2f}x")
    print(f"  gvfx read_exr / bare single-frame read        {res['read gvfx read_exr, frame by frame'] / res['read bare OIIO, own threads']:.2f}x  (target >= 0.9)")
    print(f"  gvfx read_sequence / bare threads=1 sequence  {res['read gvfx read_sequence(threads=2)'] / res['read bare OIIO, threads=1 (sequence baseline)']:.2f}x  (target > 1)")
    print(f"  gvfx read_sequence / bare own-threads loop    {res['read gvfx read_sequence(threads=2)'] / res['read bare OIIO, own threads']:.2f}x")


if __name__ == "__main__":
    main()
