"""Shared set-up for the Blender-side test scripts (run by Blender's Python, bpy 5.x or 4.2+).

``install(zip)`` installs the built extension zip the way a user does (Install from Disk), and
``setup_scene(cfg)`` builds a scene around the gvfx demo plate: frame range, resolution, the plate as an
image sequence, and a camera keyed to the demo camera (given in gvfx's Y-up world, converted to
Blender's Z-up here: gvfx (x, y, z) -> Blender (x, -z, y)).
"""

import json
import sys

import bpy
from mathutils import Matrix


def config():
    return json.loads(open(sys.argv[sys.argv.index("--") + 1]).read())


def install(zip_path):
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    assert res == {"FINISHED"}, res
    assert "bl_ext.user_default.gvfx" in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return bpy.context.preferences.addons["bl_ext.user_default.gvfx"].preferences


Y_UP_TO_Z_UP = Matrix(((1, 0, 0, 0), (0, 0, -1, 0), (0, 1, 0, 0), (0, 0, 0, 1)))


def setup_scene(cfg, prefs):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = cfg["first"], cfg["last"]
    scene.frame_set(cfg["first"])
    scene.render.resolution_x, scene.render.resolution_y = cfg["width"], cfg["height"]
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = 24, 1.0
    cam_data = bpy.data.cameras.new("shotcam")
    cam_data.lens, cam_data.sensor_width, cam_data.sensor_fit = cfg["focal_mm"], cfg["haperture_mm"], "HORIZONTAL"
    cam = bpy.data.objects.new("shotcam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    for f, m in zip(range(cfg["first"], cfg["last"] + 1), cfg["cam_to_world"]):
        cam.matrix_world = Y_UP_TO_Z_UP @ Matrix(m)
        cam.keyframe_insert("location", frame=f)
        cam.keyframe_insert("rotation_euler", frame=f)
    img = bpy.data.images.load(cfg["plate_first"])
    img.source = "SEQUENCE"
    s = scene.gvfx
    s.plate_source, s.plate_image = "IMAGE", img
    s.depth_source, s.depth_layer = "LAYER", "Z"
    s.camera_source = "SCENE"
    prefs.executable = cfg["executable"]
    prefs.output_root = cfg["output"]
    bpy.ops.gvfx.element_add()
    el = s.elements[0]
    el.name, el.effect, el.size_m, el.seed, el.placement = "fire", "fire", cfg["size_m"], 3, "CURSOR"
    x, y, z = cfg["point"]  # gvfx Y-up -> Blender Z-up
    scene.cursor.location = (x, -z, y)
    return scene


def comp_tree(scene):
    """The scene's compositor tree: a node group in Blender 5, the scene's own tree in 4.x (None: none yet)."""
    if bpy.app.version < (5, 0, 0):
        return scene.node_tree
    return scene.compositing_node_group


def socket_label(sock):
    """A socket's name, or its identifier where the name repeats among the node's available sockets
    (4.x Mix: ``Image``/``Image_001``; Math: ``Value``/``Value_001``)."""
    sockets = sock.node.outputs if sock.is_output else sock.node.inputs
    same = [s for s in sockets if s.enabled and s.name == sock.name]
    return sock.name if len(same) <= 1 else sock.identifier


def dump(path, data):
    data = dict(data, blender_version=list(bpy.app.version))
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
