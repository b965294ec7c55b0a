"""Cancel mid-job, a worker killed mid-job, a worker that crashes, a wrong gvfx path, the doctor check
and a missing USD layout: each must end as a Blender error report (or a clean cancel), never a hang.

Background mode gets no timer events, so this drives the modal operator's own code path by hand:
``operators.start_generate`` (what ``invoke`` calls) then ``operators.tick`` (what each TIMER event calls).
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bpy  # noqa: E402
import common  # noqa: E402

cfg = common.config()
prefs = common.install(cfg["zip"])
scene = common.setup_scene(cfg, prefs)
ops = sys.modules["bl_ext.user_default.gvfx.operators"]
props = sys.modules["bl_ext.user_default.gvfx.props"]
ctx = bpy.context
out = {}


def run_ticks(sess, limit=90.0, until=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        ops.tick(ctx)
        if sess.finished or (until is not None and until(sess)):
            return True
        time.sleep(0.02)
    return False


def op_error(fn, **kw):
    try:
        fn(**kw)
    except RuntimeError as exc:
        return str(exc)
    return None


# --- cancel mid-job --------------------------------------------------------------------------------
sess = ops.start_generate(ctx)
out["running_during"] = scene.gvfx.running
out["saw_progress"] = run_ticks(sess, until=lambda s: s.total > 0 and s.stage not in ("queued", "accepted"))
out["stage_at_cancel"] = [sess.stage, sess.done, sess.total]
bpy.ops.gvfx.cancel()
out["cancel_finished"] = run_ticks(sess)
out["cancel_state"] = sess.state
out["cancel_running_after"] = scene.gvfx.running
out["cancel_status"] = scene.gvfx.status
out["cancel_active_after"] = ops.active_session() is None
out["cancel_tree"] = common.comp_tree(scene).name if common.comp_tree(scene) else None
out["cancel_version_items"] = [it[0] for it in props._version_items(scene.gvfx.elements[0], ctx)]

# --- the worker dies mid-job -----------------------------------------------------------------------
sess = ops.start_generate(ctx)
# kill at once: the job is submitted and the worker busy with it; waiting for a stage first lets a loaded
# machine finish the tiny job before the kill lands (a race, not what this tests)
os.kill(sess.client.pid, signal.SIGKILL)
out["kill_finished"] = run_ticks(sess, limit=30)
out["kill_state"] = sess.state
out["kill_message"] = sess.message
out["kill_running_after"] = scene.gvfx.running

# --- through the operator: a worker that crashes on submit ------------------------------------------
prefs.executable = cfg["crashing_worker"]
t0 = time.monotonic()
out["crash_error"] = op_error(bpy.ops.gvfx.generate)
out["crash_seconds"] = time.monotonic() - t0
out["crash_running_after"] = scene.gvfx.running

# --- a wrong gvfx path --------------------------------------------------------------------------------
prefs.executable = "/nonexistent/venv/bin/gvfx"
out["wrong_path_error"] = op_error(bpy.ops.gvfx.generate)
out["wrong_path_check_error"] = op_error(bpy.ops.gvfx.check)
out["wrong_path_report"] = prefs.doctor_report

# --- doctor through the real worker ------------------------------------------------------------------
prefs.executable = cfg["executable"]
out["doctor_error"] = op_error(bpy.ops.gvfx.check)
out["doctor_report"] = prefs.doctor_report

# --- USD layout import when the layout is absent ------------------------------------------------------
out["layout_error"] = op_error(bpy.ops.gvfx.import_layout)

common.dump(cfg["result"], out)
ops.shutdown_workers()
