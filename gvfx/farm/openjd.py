"""Open Job Description job templates for a gvfx job (``gvfx farm openjd``).

The template has the farm's shape in three steps, each a ``gvfx render`` command line:

* ``Sim``: ``gvfx render JOB --sim-only`` simulates every element into its cache, computes the match
  estimates and opens the new versions (one task);
* ``Render`` (depends on Sim): one task per chunk of frames, ``gvfx render JOB --frames A-B --resume``,
  all writing into the versions Sim opened. The frames are a ``CHUNK[INT]`` task parameter
  (``extensions: [TASK_CHUNKING]``): the scheduler forms the chunks (at most ``defaultTaskCount`` frames,
  contiguous, so ``{{Task.Param.Frame}}`` expands to ``A-B``; ``openjd run`` evens them out), and may resize them toward
  ``targetRuntimeSeconds`` where it supports that (AWS Deadline Cloud does);
* ``Finalize`` (depends on Render): ``gvfx render JOB --frames ... --resume`` finds every frame on disk,
  marks the versions complete and writes the shot's OTIO timeline once.

Job parameters: ``JobFile`` (the job file, PATH in), ``OutputDir`` (PATH out), ``Frames``, ``ChunkSize``
and ``Gvfx`` (the gvfx command on the render nodes). Any OpenJD runner runs it: AWS Deadline Cloud, or
``openjd run job-template.yaml --step Render`` locally. See docs/farm.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gvfx.errors import GvfxError, InputError
from gvfx.executors.chunks import DEFAULT_CHUNK_SIZE

if TYPE_CHECKING:
    from gvfx.job import Job

__all__ = ["EXTENSIONS", "SPECIFICATION_VERSION", "job_template", "validate_job_template", "write_job_template"]

log = logging.getLogger(__name__)

SPECIFICATION_VERSION = "jobtemplate-2023-09"
EXTENSIONS = ("TASK_CHUNKING",)
#: AWS Deadline Cloud accepts at most this many values in one chunk
MAX_CHUNK_SIZE = 150


def _render_action(*args: str) -> dict[str, Any]:
    return {"actions": {"onRun": {"command": "{{Param.Gvfx}}",
                                  "args": ["render", "{{Param.JobFile}}", "--out", "{{Param.OutputDir}}", *args,
                                           "--quiet"]}}}


def _path_param(name: str, object_type: str, data_flow: str, description: str, path: Path,
                template_dir: Path | None) -> dict[str, Any]:
    """A PATH job parameter. OpenJD wants PATH defaults relative to the template's folder and inside it
    (no ``..``): the default is the path relative to ``template_dir`` when it lies inside; otherwise (or
    without ``template_dir``) there is no default and the parameter must be given (``-p NAME=...``)."""
    d: dict[str, Any] = {"name": name, "type": "PATH", "objectType": object_type, "dataFlow": data_flow,
                         "description": description}
    if template_dir is not None:
        rel = Path(os.path.relpath(Path(path).resolve(), Path(template_dir).resolve()))
        if rel.parts and rel.parts[0] != "..":
            d["default"] = rel.as_posix()
        else:
            log.info("%s %s is outside the template's folder: no default, give -p %s=PATH", name, path, name)
    return d


def job_template(job: "Job", *, chunk_size: int = DEFAULT_CHUNK_SIZE, frames: tuple[int, int] | None = None,
                 gvfx_command: str = "gvfx", target_runtime_s: int | None = None,
                 template_dir: str | Path | None = None) -> dict[str, Any]:
    """The job template (a plain dict, ready for YAML/JSON) rendering ``job`` in chunks of ``chunk_size``.

    ``frames`` defaults to the plate's range; ``gvfx_command`` is the default of the ``Gvfx`` parameter
    (the command as the render nodes see it); ``target_runtime_s`` lets a scheduler that supports it
    resize chunks toward that runtime; ``template_dir`` is where the template will live (the JobFile and
    OutputDir defaults are relative to it; without it they have no default and must be given).
    """
    if job.source is None:
        raise InputError("this job has no job file: a farm template runs `gvfx render JOB_FILE`",
                         hint="write the job to a .yaml file and load it with gvfx.job.load_job")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise InputError(f"--chunk-size {chunk_size!r}: must be 1..{MAX_CHUNK_SIZE} frames")
    if frames is None:
        from gvfx.plate import open_plate

        pf = open_plate(job).frames
        frames = (pf[0], pf[-1])
    first, last = frames
    tdir = Path(template_dir) if template_dir is not None else None
    chunks: dict[str, Any] = {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"}
    if target_runtime_s:
        chunks["targetRuntimeSeconds"] = int(target_runtime_s)
    return {
        "specificationVersion": SPECIFICATION_VERSION,
        "extensions": list(EXTENSIONS),
        "name": f"gvfx {job.name}",
        "description": f"gvfx render of {Path(job.source).name}: Sim once, Render in chunks, Finalize.",
        "parameterDefinitions": [
            _path_param("JobFile", "FILE", "IN", "The gvfx job file (YAML/JSON).", Path(job.source), tdir),
            _path_param("OutputDir", "DIRECTORY", "OUT", "Output root: elements, comp, sim caches, timeline.",
                        job.output, tdir),
            {"name": "Frames", "type": "STRING", "description": "Frames to render, FIRST-LAST.",
             "default": f"{first}-{last}"},
            {"name": "ChunkSize", "type": "INT", "description": "Frames per Render task.",
             "default": chunk_size, "minValue": 1, "maxValue": MAX_CHUNK_SIZE},
            {"name": "Gvfx", "type": "STRING", "description": "The gvfx command on the render nodes.",
             "default": gvfx_command},
        ],
        "steps": [
            {"name": "Sim", "description": "Simulate every element into its cache; open the new versions.",
             "script": _render_action("--frames", "{{Param.Frames}}", "--sim-only")},
            {"name": "Render", "description": "Render a chunk of frames into the versions Sim opened.",
             "dependencies": [{"dependsOn": "Sim"}],
             "parameterSpace": {"taskParameterDefinitions": [
                 {"name": "Frame", "type": "CHUNK[INT]", "range": "{{Param.Frames}}", "chunks": chunks}]},
             "script": _render_action("--frames", "{{Task.Param.Frame}}", "--resume")},
            {"name": "Finalize", "description": "Mark the versions complete and write the shot's timeline.",
             "dependencies": [{"dependsOn": "Render"}],
             "script": _render_action("--frames", "{{Param.Frames}}", "--resume")},
        ],
    }


def validate_job_template(template: dict[str, Any]) -> None:
    """Check ``template`` against the OpenJD model (openjd-model); a clear error when it does not pass.
    Skipped with a log line when openjd-model is not installed (it is only needed to check)."""
    try:
        from openjd.model import DecodeValidationError, decode_job_template
    except ImportError:
        log.info("openjd-model is not installed: the template is not validated (pip install openjd-model)")
        return
    try:
        decode_job_template(template=template, supported_extensions=list(EXTENSIONS))
    except DecodeValidationError as exc:
        raise GvfxError(f"the Open Job Description template does not validate: {exc}") from None


def write_job_template(job: "Job", path: str | Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                       frames: tuple[int, int] | None = None, gvfx_command: str = "gvfx",
                       target_runtime_s: int | None = None) -> Path:
    """Write ``job_template(...)`` to ``path`` (YAML, or JSON for a ``.json`` name), validated first."""
    out = Path(path)
    template = job_template(job, chunk_size=chunk_size, frames=frames, gvfx_command=gvfx_command,
                            target_runtime_s=target_runtime_s, template_dir=out.parent)
    validate_job_template(template)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        import json

        out.write_text(json.dumps(template, indent=2) + "\n")
    else:
        out.write_text(yaml.safe_dump(template, sort_keys=False, width=120))
    return out
