"""The buttons of a GVFX node: Generate, Cancel, Refresh versions, Submit to farm, Lock estimates.

Generate: the plate (and depth, element, camera) inputs are written with Write nodes executed for the
frame range (scene-linear, the script's working space), the job is built from the knobs by
:func:`gvfx_nuke.jobs.build_job`, and the worker renders it. Its events reach a ``nuke.ProgressTask``
on the main thread (``nuke.executeInMainThread``); the Read inside the node switches to the new version.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path

import nuke

from gvfx_nuke import jobs as J
from gvfx_nuke import nodes as N
from gvfx_nuke import params as P
from gvfx_nuke.connect import gvfx_argv, gvfx_env, import_gvfx, worker_argv
from gvfx_nuke.session import Session

_session: Session | None = None
RUNS: dict[str, "Run"] = {}  # node name -> its running Generate
MASK_GRID = (32, 18)


def session() -> Session:
    """The Nuke session's worker (started on first use)."""
    global _session
    if _session is None:
        client = import_gvfx("gvfx.client")
        _session = Session(lambda: client.WorkerClient(worker_argv()), nuke.executeInMainThread)
    return _session


def set_session(s: Session | None) -> None:
    global _session
    _session = s


def _report(node, exc: Exception) -> None:
    text = f"GVFX {node.name()}: {exc}"
    node["status"].setValue(str(exc))
    if nuke.GUI:
        nuke.message(text)
    else:
        print(text)


# ---------------------------------------------------------------- inputs

def knob_value(knob):
    """A knob's value; array knobs (XYZ, Color...) as a list read by index, since ``value()`` returns one
    float when all components are equal (Foundry, nuke.Array_Knob)."""
    size = knob.arraySize() if hasattr(knob, "arraySize") else 1
    if size > 1:
        return [knob.value(i) for i in range(size)]
    return knob.value()


def gather_knobs(node) -> dict:
    return {name: knob_value(knob) for name, knob in node.knobs().items()}


def _input(node, kind: str, name: str):
    i = N.input_index(kind, name)
    return None if i is None else node.input(i)


def _camera_samples(cam, frames: tuple[int, int]) -> list:
    out = []
    for f in range(frames[0], frames[1] + 1):
        t = [cam["translate"].getValueAt(f, i) for i in range(3)]
        r = [cam["rotate"].getValueAt(f, i) for i in range(3)]
        out.append((f, t, r, cam["focal"].getValueAt(f), cam["haperture"].getValueAt(f)))
    return out


def _axis_point(axis, frame: int) -> tuple[float, float, float]:
    knob = axis.knob("world_matrix")
    if knob is not None:  # world position, parents included (row-major 4x4)
        return tuple(float(knob.getValueAt(frame, i)) for i in (3, 7, 11))
    return tuple(float(axis["translate"].getValueAt(frame, i)) for i in range(3))


def _mask_samples(mask, width: int, height: int, frame: int) -> list:
    nx, ny = MASK_GRID
    out = []
    for j in range(ny):
        for i in range(nx):
            x, y = (i + 0.5) * width / nx, (j + 0.5) * height / ny
            out.append((x, y, float(mask.sample("rgba.alpha", x, y, 1, 1, frame))))
    return out


def _working_space(root) -> str:
    """Root's working space, an OCIO role resolved through the script's own OCIO config."""
    from gvfx_nuke.colorspace import resolve_working_space

    def knob(name: str) -> str:
        k = root.knob(name)
        return str(k.value()) if k is not None else ""

    ws = knob("workingSpaceLUT") or "linear"
    return resolve_working_space(ws, color_management=knob("colorManagement"), ocio_config=knob("OCIO_config"),
                                 config_path=knob("customOCIOConfigPath"))


def input_context(node, kind: str, knobs: dict) -> tuple[J.InputContext, tuple[int, int], J.ShotPaths]:
    """What the node's inputs and the script say, validated; no files are written yet."""
    plate = _input(node, kind, "plate")
    if plate is None:
        raise P.KnobError("plate", "connect a plate to input 0 (plate)")
    root = nuke.root()
    ws = _working_space(root)
    rng = (int(plate.firstFrame()), int(plate.lastFrame()))
    frames = J.resolve_frame_range(knobs.get("frame_range", "input"), knobs.get("first"), knobs.get("last"), rng)
    width, height = int(plate.width()), int(plate.height())
    cam = _input(node, kind, "camera")
    axis, mask = _input(node, kind, "axis"), _input(node, kind, "mask")
    pframe = int(knobs.get("placement_frame") or frames[0])
    ctx = J.InputContext(
        script_path=root.name() if root.name() not in ("", "Root") else "", input_range=rng, width=width,
        height=height, colorspace=ws, fps=float(root["fps"].value()),
        has_depth_input=_input(node, kind, "depth") is not None, has_camera=cam is not None,
        haperture_mm=float(cam["haperture"].getValueAt(frames[0])) if cam is not None else None,
        axis_point=_axis_point(axis, pframe) if axis is not None and knobs.get("placement") == "axis" else None,
        mask_centroid=J.mask_centroid(_mask_samples(mask, width, height, pframe), height)
        if mask is not None and knobs.get("placement") == "mask" else None,
        has_element_input=_input(node, kind, "element") is not None)
    paths = J.shot_paths(ctx.script_path, node.name(), knobs.get("output_dir", ""))
    return ctx, frames, paths


def write_sequence(src, pattern: str, frames: tuple[int, int], colorspace: str) -> None:
    """Write ``src``'s output as a scene-linear EXR sequence (all channels, float) with a Write node."""
    Path(pattern).parent.mkdir(parents=True, exist_ok=True)
    with nuke.root():
        w = nuke.nodes.Write(file=pattern, file_type="exr", channels="all", datatype="32 bit float",
                             colorspace=colorspace, create_directories=True)
        try:
            w.setInput(0, src)
            nuke.execute(w, frames[0], frames[1])
        finally:
            nuke.delete(w)


def write_inputs(node, kind: str, ctx: J.InputContext, frames: tuple[int, int], paths: J.ShotPaths) -> None:
    cs = ctx.colorspace or "scene_linear"
    write_sequence(_input(node, kind, "plate"), paths.plate, frames, cs)
    for name, pattern in (("depth", paths.depth), ("element", paths.element_input)):
        src = _input(node, kind, name)
        if src is not None:
            write_sequence(src, pattern, frames, cs)
    cam = _input(node, kind, "camera")
    if cam is not None:
        rot = cam["rot_order"].value() if cam.knob("rot_order") is not None else "ZXY"
        text = J.chan_text(_camera_samples(cam, frames), ctx.width, ctx.height, rot)
        Path(paths.camera).parent.mkdir(parents=True, exist_ok=True)
        Path(paths.camera).write_text(text)


# ---------------------------------------------------------------- Generate

class Run:
    """One Generate of a node: a worker job (or a ``gvfx match`` process) and its ProgressTask."""

    def __init__(self, node, paths: J.ShotPaths, frames: tuple[int, int]) -> None:
        self.node_name = node.name()
        self.paths = paths
        self.frames = frames
        self.id: str | None = None
        self.done = False
        self.status = "queued"
        self.cancel_sent = False
        self.proc: subprocess.Popen | None = None
        self.task = nuke.ProgressTask(f"GVFX {node.name()}")
        self.task.setMessage("queued")

    def node(self):
        return nuke.toNode(self.node_name)

    def tick(self) -> None:  # main thread, every 0.25 s
        if self.task is not None and self.task.isCancelled() and not self.cancel_sent:
            self.cancel()

    def cancel(self) -> None:
        self.cancel_sent = True
        if self.proc is not None:
            self.proc.kill()
        elif self.id is not None:
            session().cancel(self.id)

    def on_event(self, ev: dict) -> None:  # main thread
        kind = ev.get("type")
        node = self.node()
        if kind == "progress":
            total = max(1, int(ev.get("total") or 1))
            done = int(ev.get("done") or 0)
            if self.task is not None:
                self.task.setProgress(int(100 * done / total))
                self.task.setMessage(f"{ev.get('stage', '')} {done}/{total}")
            self.status = "rendering"
        elif kind == "result":
            self.finish("done")
            if node is not None:
                self.apply_result(node, ev)
        elif kind == "error":
            self.finish("failed")
            if node is not None:
                _report(node, RuntimeError(ev.get("message", "the worker failed")))
        elif kind == "cancelled":
            self.finish("cancelled")
            if node is not None:
                node["status"].setValue("cancelled")

    def finish(self, status: str) -> None:
        self.status = status
        self.done = True
        self.task = None  # deleting the ProgressTask closes it
        if RUNS.get(self.node_name) is self:
            del RUNS[self.node_name]

    def apply_result(self, node, ev: dict) -> None:
        outputs = ev.get("outputs") or {}
        el = (outputs.get("elements") or {}).get(self.paths.name) or {}
        if el.get("pattern"):
            N.set_read(node, el["pattern"], el.get("frames") or list(self.frames))
        est = ((ev.get("data") or {}).get("estimates") or {}).get(self.paths.name)
        if est is not None:
            node["estimates"].setValue(J.format_estimates(est))
        if outputs.get("timeline"):
            refresh_versions(node, select=el.get("version"))
        node["status"].setValue(f"{el.get('version', '')} {el.get('status', 'done')}".strip())


def generate(node) -> Run | None:
    """The Generate button."""
    kind = N.kind_of(node)
    if RUNS.get(node.name()) is not None:
        _report(node, RuntimeError("already generating: Cancel first"))
        return None
    try:
        knobs = gather_knobs(node)
        params = P.load_params()
        ctx, frames, paths = input_context(node, kind, knobs)
        if kind == J.MATCH:
            return _generate_match(node, knobs, ctx, frames, paths, params)
        job = J.build_job(kind, knobs, ctx, paths, params)  # every knob checked before any file is written
        write_inputs(node, kind, ctx, frames, paths)
        paths.job_file.parent.mkdir(parents=True, exist_ok=True)
        paths.job_file.write_text(json.dumps(job, indent=1))
        run = Run(node, paths, frames)
        run.id = session().submit(run.on_event, run.tick, job_file=str(paths.job_file))
    except Exception as exc:  # KnobError, WorkerError, OSError: one clear line
        _report(node, exc)
        return None
    RUNS[node.name()] = run
    node["status"].setValue("rendering")
    return run


def cancel(node) -> None:
    run = RUNS.get(node.name())
    if run is not None:
        run.cancel()


def refresh_versions(node, select: str | None = None) -> dict:
    """Ask the worker for the versions in the node's shot timeline; fill the version knob."""
    from gvfx_nuke.connect import import_gvfx as _imp

    model = _imp("gvfx.ui.model")
    try:
        paths = J.shot_paths(nuke.root().name(), node.name(), node["output_dir"].value())
        if N.kind_of(node) == J.MATCH:
            data = _match_versions(paths)
        elif paths.timeline.is_file():
            ev = session().request("versions", timeline=str(paths.timeline))
            if ev.get("type") != "result":
                raise RuntimeError(ev.get("message", "versions request failed"))
            data = ev.get("data") or {}
        else:
            data = {}
    except Exception as exc:
        _report(node, exc)
        return {}
    node["gvfx_versions"].setValue(json.dumps(data))
    name = "match" if N.kind_of(node) == J.MATCH else paths.name
    versions = model.versions_of(data, name)
    labels = [model.version_label(v) for v in versions] or ["(none)"]
    node["version"].setValues(labels)
    chosen = select or model.current_version(data, name)
    for label in labels:
        if label.split()[0] == chosen:
            node["version"].setValue(label)
    N.show_version(node)
    return data


# ---------------------------------------------------------------- Match node

def _match_frames(folder: Path) -> list[int] | None:
    """First and last frame of the ``element.NNNN.exr`` files in a match version folder."""
    found = (re.fullmatch(r"element\.(-?\d+)\.exr", p.name) for p in folder.iterdir())
    nums = [int(m.group(1)) for m in found if m]
    return [min(nums), max(nums)] if nums else None


def _match_versions(paths: J.ShotPaths) -> dict:
    root = paths.match_root
    names = sorted((p.name for p in root.iterdir() if re.fullmatch(r"v\d{3,}", p.name)), key=lambda n: int(n[1:])) \
        if root.is_dir() else []
    vs = [{"version": n, "status": "complete" if (root / n / "done").exists() else "partial",
           "pattern": str(root / n / "element.####.exr"), "comp_pattern": str(root / n / "comp.####.exr"),
           "frames": _match_frames(root / n)} for n in names]
    return {"elements": {"match": {"kind": "element", "current": names[-1] if names else None, "versions": vs}}}


def next_version_dir(root: Path, *, create: bool = True) -> Path:
    """``root/vNNN`` after the highest existing version (made when ``create``)."""
    nums = [int(p.name[1:]) for p in root.iterdir() if re.fullmatch(r"v\d{3,}", p.name)] if root.is_dir() else []
    out = root / f"v{max(nums, default=0) + 1:03d}"
    if create:
        out.mkdir(parents=True)
    return out


def _generate_match(node, knobs, ctx, frames, paths, params) -> Run:
    out_dir = next_version_dir(paths.match_root, create=False)
    # every knob checked before any file is written
    argv, settings = J.build_match_command(gvfx_argv(), knobs, ctx, paths, params, out_dir)
    write_inputs(node, J.MATCH, ctx, frames, paths)
    out_dir.mkdir(parents=True)
    (out_dir / "settings.json").write_text(json.dumps(settings, indent=1))
    run = Run(node, paths, frames)
    run.task.setMessage("matching")
    run.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gvfx_env())
    RUNS[node.name()] = run

    def wait() -> None:
        out, err = run.proc.communicate()
        if run.proc.returncode == 0:
            (out_dir / "done").write_text("")
            nuke.executeInMainThread(_match_done, (run, out_dir, out))
        else:
            msg = "cancelled" if run.cancel_sent else (err.strip().splitlines() or ["gvfx match failed"])[-1]
            nuke.executeInMainThread(run.on_event, ({"type": "cancelled" if run.cancel_sent else "error",
                                                     "message": msg},))

    threading.Thread(target=wait, name="gvfx-match", daemon=True).start()
    run.tick_thread = threading.Thread(target=_tick_loop, args=(run,), daemon=True)
    run.tick_thread.start()
    return run


def _tick_loop(run: Run) -> None:
    import time

    while not run.done:
        nuke.executeInMainThread(run.tick, ())
        time.sleep(0.25)


def _match_done(run: Run, out_dir: Path, stdout: str) -> None:
    run.finish("done")
    node = run.node()
    if node is None:
        return
    est = J.parse_match_estimates(stdout)
    node["estimates"].setValue(J.format_estimates(est))
    (out_dir / "estimates.json").write_text(json.dumps(est, indent=1))
    refresh_versions(node, select=out_dir.name)  # shows the version's comp (or element: the "show" knob)
    node["status"].setValue(f"{out_dir.name} done")


def lock_estimates(node) -> None:
    """Copy the node's last estimates into its match knobs (marking them given)."""
    text = node["estimates"].value()
    est = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        try:
            est[key] = json.loads(value)
        except json.JSONDecodeError:
            continue
    for name, value in J.lock_estimates(est, P.load_params()).items():
        if node.knob(name) is not None:
            node[name].setValue(value)


# ---------------------------------------------------------------- farm

def submit_to_farm(node) -> Path | None:
    """Write the node's inputs, its job and an Open Job Description template next to the script."""
    kind = N.kind_of(node)
    try:
        knobs = gather_knobs(node)
        params = P.load_params()
        if kind == J.MATCH:
            raise P.KnobError("farm", "Match nodes run locally (gvfx match); farm Element and Insert nodes")
        ctx, frames, paths = input_context(node, kind, knobs)
        job = J.build_job(kind, knobs, ctx, paths, params)
        write_inputs(node, kind, ctx, frames, paths)
        paths.farm_job.write_text(json.dumps(job, indent=1))
        proc = subprocess.run(J.farm_command(gvfx_argv(), paths.farm_job, paths.farm_template),
                              capture_output=True, text=True, env=gvfx_env())
        if proc.returncode != 0:
            raise RuntimeError(f"gvfx farm openjd failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    except Exception as exc:
        _report(node, exc)
        return None
    node["status"].setValue(f"farm template: {paths.farm_template.name}")
    return paths.farm_template
