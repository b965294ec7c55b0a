"""Blender ending a running Generate: the modal operator's ``cancel()`` (Blender calls it when it ends a
modal operator, e.g. on File > Open) and File > Open / Revert of a file saved mid-job (the persistent
``load_pre`` / ``load_post`` handlers). Each must stop the job in the worker and leave nothing "running".

Background mode has no windows or events, so the operator's ``cancel()`` is driven by hand on an object
carrying the operator's own timer field and methods (as cancel_errors.py drives ``tick``).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bpy  # noqa: E402
import common  # noqa: E402

cfg = common.config()
prefs = common.install(cfg["zip"])
scene = common.setup_scene(cfg, prefs)
ops = sys.modules["bl_ext.user_default.gvfx.operators"]
ctx = bpy.context
out = {}


def wait(sess, until, limit=90.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        ops.tick(ctx) if ops.active_session() is sess else sess.step()
        if until(sess):
            return True
        time.sleep(0.02)
    return False


def started(sess):
    return sess.finished or (sess.total > 0 and sess.stage not in ("queued", "accepted"))


# --- the operator's cancel() -----------------------------------------------------------------------
class RunningGenerate:
    """What Blender hands cancel(): the running operator, here with a real window-manager timer."""
    _end_modal = ops.GVFX_OT_generate._end_modal
    cancel = ops.GVFX_OT_generate.cancel

    def __init__(self):
        self._timer = ctx.window_manager.event_timer_add(0.2, window=None)


sess = ops.start_generate(ctx)
out["cancel_started"] = wait(sess, started) and not sess.finished
op = RunningGenerate()
out["had_timer"] = op._timer is not None
op.cancel(ctx)
out["cancel_timer_after"] = op._timer is None
out["cancel_active_after"] = ops.active_session() is None
out["cancel_requested"] = sess.cancel_requested
out["cancel_running_after"] = scene.gvfx.running
out["cancel_ended"] = wait(sess, lambda s: s.finished)
out["cancel_state"] = sess.state

# --- File > Open of a file saved while the job ran ---------------------------------------------------
sess = ops.start_generate(ctx)
out["open_started"] = wait(sess, started) and not sess.finished
saved = os.path.join(cfg["work"], "saved_while_running.blend")
bpy.ops.wm.save_as_mainfile(filepath=saved, copy=True)
out["saved_running"] = scene.gvfx.running
bpy.ops.wm.open_mainfile(filepath=saved)
out["open_active_after"] = ops.active_session() is None
out["open_requested"] = sess.cancel_requested
out["open_running_after"] = [s.gvfx.running for s in bpy.data.scenes]
out["open_ended"] = wait(sess, lambda s: s.finished)
out["open_state"] = sess.state
out["handlers_kept"] = [ops.on_load_pre in bpy.app.handlers.load_pre, ops.on_load_post in bpy.app.handlers.load_post]

# --- disabling the add-on takes its handlers with it -------------------------------------------------
bpy.ops.preferences.addon_disable(module="bl_ext.user_default.gvfx")
out["handlers_after_disable"] = [f.__name__ for f in bpy.app.handlers.load_pre if f.__name__.startswith("on_load")]
common.dump(cfg["result"], out)
ops.shutdown_workers()
