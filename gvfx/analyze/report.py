"""The analysis report: what was solved and how well, as ``report.json`` (for tools) and ``report.txt``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gvfx.analyze.solve import Solve
from gvfx.sequence import ranges_text

__all__ = ["build_report", "write_report", "format_report", "REPORT_VERSION", "is_complete"]

REPORT_VERSION = 1


def build_report(solve: Solve, *, plate: str, frames: list[int], width: int, height: int,
                 settings: dict[str, Any], seconds: dict[str, float], outputs: dict[str, str | None],
                 depth_source: str, depth_frames: int) -> dict[str, Any]:
    """Everything an artist or a pipeline needs to judge the solve; ``complete`` marks a finished run."""
    errs = np.asarray(solve.point_errors, dtype=np.float64)
    return {
        "version": REPORT_VERSION,
        "complete": True,
        "plate": plate,
        "resolution": [width, height],
        "frames": {"first": frames[0], "last": frames[-1], "count": len(frames)},
        "registered": solve.registered,
        "interpolated": solve.interpolated,
        "static": solve.static,
        "motion": solve.motion,
        "solve_tries": list(solve.attempts),
        "focal_mm": round(solve.focal_mm, 4),
        "focal_estimated": solve.focal_estimated,
        "haperture_mm": solve.track.camera.haperture_mm,
        "scale_source": solve.scale_source,
        "reprojection_error_px": None if not np.isfinite(solve.reprojection_error_px)
        else round(solve.reprojection_error_px, 4),
        "reprojection_error_p90_px": round(float(np.percentile(errs, 90)), 4) if len(errs) else None,
        "points": int(len(solve.points)),
        "camera_height_m": round(float(solve.track.cam_to_world[0, 1, 3]), 4),
        "depth": {"source": depth_source, "frames": depth_frames},
        "seconds": {k: round(float(v), 3) for k, v in seconds.items()},
        "warnings": list(solve.warnings),
        "settings": settings,
        "outputs": outputs,
    }


def format_report(r: dict[str, Any]) -> str:
    """The report as a few readable lines."""
    f = r["frames"]
    lines = [f"gvfx analyze: {r['plate']}",
             f"  frames        {f['first']}-{f['last']} ({f['count']}), registered {len(r['registered'])}, "
             f"interpolated {len(r['interpolated'])}" + (f" ({ranges_text(r['interpolated'])})" if r["interpolated"] else ""),
             f"  camera        {r['static']}" + (f" ({r['motion']})" if r.get("motion") else ""),
             f"  focal         {r['focal_mm']:.2f} mm on {r['haperture_mm']:g} mm "
             f"({'estimated' if r['focal_estimated'] else 'given'})",
             f"  scale         {r['scale_source']} (first camera {r['camera_height_m']:.2f} m above the ground)",
             f"  reprojection  {r['reprojection_error_px']} px mean, {r['reprojection_error_p90_px']} px p90, "
             f"{r['points']} points",
             f"  depth         {r['depth']['source']}: {r['depth']['frames']} frames",
             "  seconds       " + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items())]
    lines += [f"  solve try     {a['try']}: {a['registered']} frames, {a['points']} points"
              for a in r.get("solve_tries", [])]
    lines += [f"  warning: {w}" for w in r["warnings"]]
    return "\n".join(lines) + "\n"


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(out: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.txt`` then ``report.json`` (last: its presence means the analysis is complete)."""
    out = Path(out)
    txt, js = out / "report.txt", out / "report.json"
    _atomic_text(txt, format_report(report))
    _atomic_text(js, json.dumps(report, indent=2, default=str))
    return js, txt


def is_complete(out: str | Path) -> bool:
    """True when ``out/report.json`` exists and says the analysis finished."""
    p = Path(out) / "report.json"
    try:
        return bool(json.loads(p.read_text()).get("complete"))
    except (OSError, ValueError):
        return False
