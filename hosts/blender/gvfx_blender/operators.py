"""Operators: Generate (modal, or blocking in background mode), Cancel, Check, the element list,
versions and the USD layout import. All of the add-on's operators live here.

Generate runs as a modal operator: a window-manager timer calls :func:`tick`, which steps the
:class:`~.session.JobSession` (non-blocking ``client.poll()``) and updates Blender's progress UI. In
background mode (``blender -b``, tests, farm scripts) modal operators get no events, so ``execute``
drives the very same :func:`tick` in a loop until the job ends.
"""

from __future__ import annotations

import os
import time

import bpy
from bpy.props import BoolProperty, FloatProperty

from . import compositor, jobspec, session

#: the job being generated (one at a time)
_ACTIVE: "session.JobSession | None" = None
_SUSPEND_SWITCH = False


def active_session():
    return _ACTIVE


def shutdown_workers() -> None:
    stop_active()
    session.shutdown_all()


def stop_active() -> "session.JobSession | None":
    """Cancel the running job (if any) and forget it: the operator's ``cancel()``, File > Open, Revert.

    The worker is asked to cancel; the job's files are left as a cancelled version. Returns the session."""
    global _ACTIVE
    sess, _ACTIVE = _ACTIVE, None
    if sess is not None and not sess.finished:
        sess.cancel()
    return sess


@bpy.app.handlers.persistent
def on_load_pre(*_args) -> None:
    """File > Open / Revert: the scene the job was for goes away, so the job stops with it."""
    if stop_active() is not None:
        print("gvfx: a new file is loading: the running job was cancelled")


@bpy.app.handlers.persistent
def on_load_post(*_args) -> None:
    """A file saved while a job ran opens with no job running: clear its stale "running" flags."""
    for scene in bpy.data.scenes:
        s = getattr(scene, "gvfx", None)
        if s is not None and s.running:
            s.running, s.progress = False, 0.0


HANDLERS = ((bpy.app.handlers.load_pre, on_load_pre), (bpy.app.handlers.load_post, on_load_post))


def add_handlers() -> None:
    for where, fn in HANDLERS:
        if fn not in where:
            where.append(fn)


def remove_handlers() -> None:
    for where, fn in HANDLERS:
        while fn in where:
            where.remove(fn)


def _prefs(context):
    prefs = jobspec.addon_prefs(context)
    return (prefs.executable if prefs else ""), (prefs.models_dir if prefs else "")


def _client(context):
    exe_pref, models = _prefs(context)
    exe = session.resolve_executable(exe_pref)
    return session.get_client(exe, models)


def _set_status(context, text: str) -> None:
    context.scene.gvfx.status = text
    ws = getattr(context, "workspace", None)
    if ws is not None and not bpy.app.background:
        try:
            ws.status_text_set(text or None)
        except (AttributeError, TypeError, RuntimeError):
            pass
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type in ("NODE_EDITOR", "VIEW_3D"):
                area.tag_redraw()


# ------------------------------------------------------------------------------ comp and versions

def _plate_layer(context, data: dict) -> compositor.Layered:
    scene = context.scene
    s = scene.gvfx
    first, last = (data.get("frames") or [scene.frame_start, scene.frame_end])[:2]
    colorspace = s.plate_colorspace or "ACEScg"
    img = s.plate_image if s.plate_source == "IMAGE" else None
    if img is not None and img.colorspace_settings.name == colorspace:
        if img.source != "SEQUENCE" and first != last:
            img.source = "SEQUENCE"
    elif img is not None:
        # the worker reads the plate in the declared colour space: so must the comp. Blender 4.x reads an
        # ACEScg EXR as Linear Rec.709 (5.x follows its chromaticities): comp a copy, leave the artist's image
        img = compositor.load_sequence(jobspec.plate_path(s), first, last, name="gvfx plate", colorspace=colorspace,
                                       premultiplied=False)
    else:
        pattern = data.get("plate") or jobspec.plate_path(s)
        img = compositor.load_sequence(pattern, first, last, name="gvfx plate", colorspace=colorspace,
                                       premultiplied=False)
    return compositor.Layered("plate", img, int(first), int(last))


def rebuild_comp(context, data: dict | None = None):
    """Build the compositor tree from each element's chosen version; returns the tree (None: nothing yet)."""
    scene = context.scene
    root = jobspec.output_root(context)
    layers = []
    for el in scene.gvfx.elements:
        if not el.enabled or el.version == "NONE":
            continue
        folder = os.path.join(root, "elements", el.name.strip(), el.version)
        found = jobspec.version_frames(folder, el.name.strip()) if os.path.isdir(folder) else None
        if found is None:
            continue
        pattern, first, last = found
        img = compositor.load_sequence(pattern, first, last, name=f"gvfx {el.name} {el.version}")
        layers.append(compositor.Layered(el.name.strip(), img, first, last))
    if not layers:
        return None
    return compositor.build_comp(scene, _plate_layer(context, data or {}), layers)


def switch_version(context, element) -> None:
    """The version enum's update: show that version in the compositor."""
    if _SUSPEND_SWITCH:
        return
    try:
        rebuild_comp(context)
    except (OSError, RuntimeError, ValueError) as exc:
        _set_status(context, f"gvfx: cannot load {element.name} {element.version}: {exc}")


def _apply_result(context, sess) -> list[str]:
    """Point each element at its new version and rebuild the comp; returns the loaded versions."""
    global _SUSPEND_SWITCH
    by_name = {e.name.strip(): e for e in context.scene.gvfx.elements}
    loaded = []
    _SUSPEND_SWITCH = True
    try:
        for name, out in (sess.outputs.get("elements") or {}).items():
            el = by_name.get(name)
            if el is not None and out.get("version"):
                el.version = out["version"]
                loaded.append(f"{name} {out['version']}")
    finally:
        _SUSPEND_SWITCH = False
    rebuild_comp(context, sess.data)
    return loaded


# ---------------------------------------------------------------------------------- generate

def start_generate(context) -> "session.JobSession":
    """Build the job from the scene, start (or reuse) the worker and submit. Raises SetupError,
    ExecutableError or WorkerError with a message for the artist."""
    global _ACTIVE
    if _ACTIVE is not None and not _ACTIVE.finished:
        raise jobspec.SetupError("a gvfx job is already running: wait for it or press Cancel")
    job, root = jobspec.build_job(context)
    sess = session.JobSession.submit(_client(context), job, root)
    _ACTIVE = sess
    s = context.scene.gvfx
    s.running, s.progress = True, 0.0
    _set_status(context, sess.status_line)
    return sess


def tick(context) -> "session.JobSession | None":
    """One timer step: read the worker's events, update the progress UI; finish when the job ended.
    Returns the session (``finished`` tells whether it ended) or None when no job runs."""
    global _ACTIVE
    sess = _ACTIVE
    if sess is None:
        return None
    sess.step()
    s = context.scene.gvfx
    s.progress = sess.fraction
    try:
        context.window_manager.progress_update(sess.fraction)
    except (AttributeError, RuntimeError):
        pass
    if not sess.finished:
        _set_status(context, sess.status_line)
        return sess
    _ACTIVE = None
    s.running = False
    if sess.state == "done":
        try:
            loaded = _apply_result(context, sess)
            _set_status(context, "gvfx: done: " + (", ".join(loaded) or "no elements"))
        except Exception as exc:  # noqa: BLE001 - shown to the artist as a report, not a traceback
            import traceback
            traceback.print_exc()
            sess.state, sess.message = "error", f"the render finished but loading it failed: {exc}"
            _set_status(context, f"gvfx: error: {sess.message}")
    elif sess.state == "cancelled":
        _set_status(context, "gvfx: cancelled (the unfinished version is not loaded)")
    else:
        _set_status(context, f"gvfx: error: {sess.message}")
        if sess.traceback:
            print(f"gvfx worker traceback:\n{sess.traceback}")
    return sess


def _report_end(op, sess) -> set:
    if sess.state == "done":
        op.report({"INFO"}, bpy.context.scene.gvfx.status or sess.status_line)
        return {"FINISHED"}
    if sess.state == "cancelled":
        op.report({"WARNING"}, "gvfx: job cancelled")
        return {"CANCELLED"}
    op.report({"ERROR"}, f"gvfx: {sess.message}")
    return {"CANCELLED"}


class GVFX_OT_generate(bpy.types.Operator):
    """Generate the scene's gvfx elements matched to the plate, and comp them"""

    bl_idname = "gvfx.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    blocking: BoolProperty(name="Blocking", default=False, options={"SKIP_SAVE"},
                           description="Wait for the job (always so in background mode)")
    timeout: FloatProperty(name="Timeout", default=3600.0, min=1.0, options={"SKIP_SAVE"},
                           description="Blocking mode: cancel the job after this many seconds")

    _timer = None

    @classmethod
    def poll(cls, context):
        return context.scene is not None and (_ACTIVE is None or _ACTIVE.finished)

    def _start(self, context):
        try:
            return start_generate(context)
        except (jobspec.SetupError, session.ExecutableError, session.WorkerError, OSError) as exc:
            msg = " ".join(str(exc).split())
            _set_status(context, f"gvfx: error: {msg}")
            self.report({"ERROR"}, f"gvfx: {msg}")
            return None

    def execute(self, context):
        sess = self._start(context)
        if sess is None:
            return {"CANCELLED"}
        deadline = time.monotonic() + self.timeout
        while True:
            tick(context)
            if sess.finished:
                return _report_end(self, sess)
            if time.monotonic() > deadline and not sess.cancel_requested:
                sess.cancel()
                deadline = time.monotonic() + 30.0
            elif time.monotonic() > deadline:
                sess.state, sess.message = "error", f"the job did not stop within {self.timeout:g} s"
                tick(context)
                return _report_end(self, sess)
            time.sleep(0.05)

    def invoke(self, context, event):
        if bpy.app.background or self.blocking:
            return self.execute(context)
        sess = self._start(context)
        if sess is None:
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0.0, 1.0)
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS" and _ACTIVE is not None:
            _ACTIVE.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        sess = tick(context)
        if sess is None or sess.finished:
            self._end_modal(context)
            return _report_end(self, sess) if sess is not None else {"CANCELLED"}
        return {"PASS_THROUGH"}

    def _end_modal(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        try:
            wm.progress_end()
        except (AttributeError, RuntimeError):
            pass
        if getattr(context, "workspace", None) is not None:
            context.workspace.status_text_set(None)

    def cancel(self, context) -> None:
        """Blender ends the modal operator (File > Open, window closed): remove the timer, stop the job."""
        self._end_modal(context)
        sess = stop_active()
        if sess is not None and context.scene is not None and getattr(context.scene, "gvfx", None) is not None:
            context.scene.gvfx.running = False
            _set_status(context, "gvfx: cancelled (Blender ended the Generate operator)")


class GVFX_OT_cancel(bpy.types.Operator):
    """Cancel the running gvfx job (frames already written stay whole; the version is not loaded)"""

    bl_idname = "gvfx.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return _ACTIVE is not None and not _ACTIVE.finished

    def execute(self, context):
        _ACTIVE.cancel()
        _set_status(context, _ACTIVE.status_line)
        return {"FINISHED"}


# ------------------------------------------------------------------------------------- doctor

def doctor_lines(data: dict) -> list[str]:
    """``status name: detail`` per check, with ``-> fix`` on the ones that are not ok."""
    lines = []
    for c in data.get("checks") or []:
        line = f"{c.get('status', '?')} {c.get('name', '?')}: {c.get('detail', '')}"
        if not c.get("ok") and c.get("fix"):
            line += f" -> {c['fix']}"
        lines.append(line)
    return lines or [str(data.get("text") or "no checks returned")]


class GVFX_OT_check(bpy.types.Operator):
    """Run `gvfx doctor` through the worker and show what is wrong and how to fix it"""

    bl_idname = "gvfx.check"
    bl_label = "Check gvfx"

    def execute(self, context):
        prefs = jobspec.addon_prefs(context)
        try:
            client = _client(context)
            resp = client.request("doctor", timeout=120, output_root=jobspec.output_root(context),
                                  **({"models": prefs.models_dir} if prefs and prefs.models_dir.strip() else {}))
        except (session.ExecutableError, session.WorkerError) as exc:
            lines = [f"FAIL worker: {' '.join(str(exc).split())}"]
            resp = None
        if resp is not None and resp.get("type") == "error":
            lines = [f"FAIL doctor: {resp.get('message')}"]
        elif resp is not None:
            lines = doctor_lines(resp.get("data") or {})
        if prefs is not None:
            prefs.doctor_report = "\n".join(lines)
        fails = [ln for ln in lines if ln.startswith("FAIL")]
        for ln in lines:
            print(f"gvfx doctor: {ln}")
        if fails:
            self.report({"ERROR"}, "gvfx: " + "; ".join(fails))
            return {"CANCELLED"}
        warns = sum(ln.startswith("warn") for ln in lines)
        self.report({"INFO"}, f"gvfx: {len(lines)} checks, {warns} warnings")
        return {"FINISHED"}


# ------------------------------------------------------------------------------ element list

class GVFX_OT_element_add(bpy.types.Operator):
    """Add an element (placed at the 3D cursor)"""

    bl_idname = "gvfx.element_add"
    bl_label = "Add Element"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.gvfx
        names = {e.name for e in s.elements}
        el = s.elements.add()
        base, n = "fire", 1
        el.name = base
        while el.name in names:
            n += 1
            el.name = f"{base}{n}"
        el.seed = len(s.elements)
        s.active_element = len(s.elements) - 1
        return {"FINISHED"}


class GVFX_OT_element_remove(bpy.types.Operator):
    """Remove the selected element from the list (its versions stay on disk)"""

    bl_idname = "gvfx.element_remove"
    bl_label = "Remove Element"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.gvfx.elements) > 0

    def execute(self, context):
        s = context.scene.gvfx
        s.elements.remove(s.active_element)
        s.active_element = max(0, min(s.active_element, len(s.elements) - 1))
        return {"FINISHED"}


class GVFX_OT_refresh_comp(bpy.types.Operator):
    """Rebuild the compositor nodes from each element's chosen version"""

    bl_idname = "gvfx.refresh_comp"
    bl_label = "Rebuild Comp"

    def execute(self, context):
        try:
            tree = rebuild_comp(context)
        except (OSError, RuntimeError, ValueError, jobspec.SetupError) as exc:
            self.report({"ERROR"}, f"gvfx: {exc}")
            return {"CANCELLED"}
        if tree is None:
            self.report({"WARNING"}, "gvfx: no element has a finished version yet: Generate first")
            return {"CANCELLED"}
        return {"FINISHED"}


class GVFX_OT_import_layout(bpy.types.Operator):
    """Import the shot's USD layout (camera and element cards) with Blender's USD importer"""

    bl_idname = "gvfx.import_layout"
    bl_label = "Import USD Layout"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.gvfx
        path = (bpy.path.abspath(s.layout_path.strip()) if s.layout_path.strip()
                else os.path.join(jobspec.output_root(context), "layout.usda"))
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            self.report({"ERROR"}, f"gvfx: no USD layout at {path}: generate the shot first (gvfx writes "
                        "layout.usda in the output root) or set Layout to the file")
            return {"CANCELLED"}
        if not hasattr(bpy.ops.wm, "usd_import"):
            self.report({"ERROR"}, "gvfx: this Blender was built without USD support (no wm.usd_import)")
            return {"CANCELLED"}
        result = bpy.ops.wm.usd_import(filepath=path)
        if "FINISHED" not in result:
            self.report({"ERROR"}, f"gvfx: Blender's USD importer could not read {path}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"gvfx: imported {os.path.basename(path)}")
        return {"FINISHED"}


CLASSES = (GVFX_OT_generate, GVFX_OT_cancel, GVFX_OT_check, GVFX_OT_element_add, GVFX_OT_element_remove,
           GVFX_OT_refresh_comp, GVFX_OT_import_layout)
