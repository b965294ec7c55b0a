"""Blender's side of the camera round trips (run by Blender's Python, bpy 5.x or 4.2+), no add-on needed.

``export``: for each sensor fit, a camera under a moving, rotating parent with an animated lens, exported
with Blender's own ``bpy.ops.wm.usd_export``; per frame, Blender's own projection of some world points
(``bpy_extras.object_utils.world_to_camera_view``) and a ``.chan`` of the camera written from Blender's
matrix_world (Y up, ZXY Euler in degrees, vertical fov: the format Nuke reads).
``import``: gvfx's ``camera.usda`` through ``bpy.ops.wm.usd_import``; per frame the camera's lens, sensor,
fit and matrix_world; and gvfx's ``camera.chan`` applied the way Nuke reads it (Euler ZXY, fov column).
"""

import json
import math
import os
import sys

import bpy
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Euler, Matrix, Vector

cfg = json.loads(open(sys.argv[sys.argv.index("--") + 1]).read())
FIRST, LAST = cfg["first"], cfg["last"]
W, H = cfg["width"], cfg["height"]
Z_UP_TO_Y_UP = Matrix.Rotation(math.radians(-90.0), 4, "X")  # Blender world -> Nuke/gvfx world


def fresh_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = W, H, 100
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = FIRST, LAST
    return scene


def export(fit):
    scene = fresh_scene()
    rig = bpy.data.objects.new("rig", None)
    scene.collection.objects.link(rig)
    data = bpy.data.cameras.new("shotcam")
    data.sensor_fit, data.sensor_width, data.sensor_height = fit, 36.0, 20.0
    data.shift_x, data.shift_y = 0.05, -0.03
    cam = bpy.data.objects.new("shotcam", data)
    scene.collection.objects.link(cam)
    cam.parent = rig
    cam.location, cam.rotation_euler = (0.3, -0.2, 0.1), (math.radians(80), 0.0, math.radians(5))
    scene.camera = cam
    for i, f in enumerate(range(FIRST, LAST + 1)):
        rig.location = (0.4 * i, -8.0 + 0.3 * i, 1.5 + 0.05 * i)
        rig.rotation_euler = (0.0, math.radians(2 * i), math.radians(3 * i))
        rig.keyframe_insert("location", frame=f)
        rig.keyframe_insert("rotation_euler", frame=f)
        data.lens = 30.0 + 4.0 * i
        data.keyframe_insert("lens", frame=f)
    points = [Vector((x, y, z)) for x in (-1.5, 0.0, 1.2) for y in (0.0, 3.0) for z in (0.0, 2.5)]
    frames = {}
    chan = []
    for f in range(FIRST, LAST + 1):
        scene.frame_set(f)
        px = []
        for p in points:
            ndc = world_to_camera_view(scene, cam, p)
            px.append([ndc.x * W, (1.0 - ndc.y) * H, ndc.z])
        frames[f] = {"lens": data.lens, "pixels": px}
        m = Z_UP_TO_Y_UP @ cam.matrix_world
        t, r = m.to_translation(), m.to_euler("ZXY")
        vfov = 2 * math.atan((data.sensor_height if fit == "VERTICAL" else data.sensor_width * H / W) / (2 * data.lens))
        chan.append(f"{f}\t{t.x:f}\t{t.y:f}\t{t.z:f}\t{math.degrees(r.x):f}\t{math.degrees(r.y):f}\t"
                    f"{math.degrees(r.z):f}\t{math.degrees(vfov):f}")
    usd = os.path.join(cfg["work"], f"blender_{fit}.usda")
    res = bpy.ops.wm.usd_export(filepath=usd, export_animation=True, selected_objects_only=False)
    assert res == {"FINISHED"}, res
    chan_path = os.path.join(cfg["work"], f"blender_{fit}.chan")
    with open(chan_path, "w") as fh:
        fh.write("\n".join(chan) + "\n")
    return {"usd": usd, "chan": chan_path, "frames": frames,
            "points": [[p.x, p.z, -p.y] for p in points]}  # in gvfx's Y-up world


def import_usd(path):
    fresh_scene()
    res = bpy.ops.wm.usd_import(filepath=path)
    assert res == {"FINISHED"}, res
    scene = bpy.context.scene
    cams = [o for o in scene.objects if o.type == "CAMERA"]
    assert len(cams) == 1, [o.name for o in scene.objects]
    cam = cams[0]
    out = {}
    for f in range(FIRST, LAST + 1):
        scene.frame_set(f)
        out[f] = {"lens": cam.data.lens, "sensor_width": cam.data.sensor_width,
                  "sensor_height": cam.data.sensor_height, "sensor_fit": cam.data.sensor_fit,
                  "matrix_world": [list(r) for r in cam.matrix_world]}
    return out


def read_chan_like_nuke(path):
    """gvfx's .chan applied as Nuke reads it: translate, Euler ZXY degrees (Y up), vertical fov."""
    out = {}
    for line in open(path):
        f, tx, ty, tz, rx, ry, rz, vfov = (float(v) for v in line.split())
        m = Matrix.Translation((tx, ty, tz)) @ Euler((math.radians(rx), math.radians(ry), math.radians(rz)), "ZXY").to_matrix().to_4x4()
        out[int(f)] = {"matrix": [list(r) for r in m], "vfov_deg": vfov}
    return out


result = {"blender_version": list(bpy.app.version)}
if cfg["mode"] == "export":
    result["fits"] = {fit: export(fit) for fit in cfg["fits"]}
else:
    result["usd"] = import_usd(cfg["camera_usd"])
    result["chan"] = read_chan_like_nuke(cfg["camera_chan"])
with open(cfg["result"], "w") as fh:
    json.dump(result, fh)
