"""Generate through the add-on's operator (background mode: blocking, the same tick() as the modal),
record the compositor tree and render a comp frame; generate again with a changed element and a second
one placed by an Empty (next versions, the sum of elements), render; switch fire back to v001, render."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import bpy  # noqa: E402
import common  # noqa: E402

cfg = common.config()
prefs = common.install(cfg["zip"])
scene = common.setup_scene(cfg, prefs)
out = {}

r = scene.render
r.image_settings.file_format = "OPEN_EXR"
r.image_settings.color_depth = "32"
r.image_settings.color_mode = "RGBA"
scene.view_settings.view_transform = "Standard"
frame = cfg["check_frame"]


def render(name):
    """Render the comp at the check frame (EXR: Blender's scene-linear working space, Linear Rec.709)."""
    scene.frame_set(frame)
    r.filepath = os.path.join(cfg["work"], f"render_{name}.exr")
    bpy.ops.render.render(write_still=True)
    out[f"render_{name}"] = r.filepath


def tree_state(tree):
    return ({n.name: {"type": n.bl_idname,
                      "image": bpy.path.abspath(n.image.filepath) if getattr(n, "image", None) else None,
                      "source": n.image.source if getattr(n, "image", None) else None,
                      "colorspace": n.image.colorspace_settings.name if getattr(n, "image", None) else None,
                      "frame_start": getattr(n, "frame_start", None),
                      "frame_duration": getattr(n, "frame_duration", None),
                      "frame_offset": getattr(n, "frame_offset", None)} for n in tree.nodes},
            sorted(f"{l.from_node.name}:{common.socket_label(l.from_socket)}->"
                   f"{l.to_node.name}:{common.socket_label(l.to_socket)}" for l in tree.links))


user_plate = scene.gvfx.plate_image
out["user_plate_colorspace_before"] = user_plate.colorspace_settings.name  # 4.x: Linear Rec.709, 5.x: ACEScg
res = bpy.ops.gvfx.generate()
out["user_plate_colorspace_after"] = user_plate.colorspace_settings.name
out["first_run"] = sorted(res)
out["status1"] = scene.gvfx.status
el = scene.gvfx.elements[0]
out["version1"] = el.version
tree = common.comp_tree(scene)
out["tree"] = tree.name
out["nodes"], out["links"] = tree_state(tree)
render("run1")

# second run: fire changes (new seed -> v002) and a second element placed by an Empty joins (v001)
el.seed = 4
empty = bpy.data.objects.new("sparks_here", None)
scene.collection.objects.link(empty)
x, y, z = cfg["point2"]
empty.location = (x, -z, y)
bpy.ops.gvfx.element_add()
el2 = scene.gvfx.elements[1]
el2.name, el2.effect, el2.size_m, el2.seed = "sparks", "sparks", 0.4, 11
el2.placement, el2.placement_object = "OBJECT", empty
res = bpy.ops.gvfx.generate("INVOKE_DEFAULT")  # invoke: in background mode it runs blocking
out["second_run"] = sorted(res)
out["version2"] = [e.version for e in scene.gvfx.elements]
mod = sys.modules["bl_ext.user_default.gvfx.props"]
out["version_items"] = [it[0] for it in mod._version_items(el, bpy.context)]
out["running_after"] = scene.gvfx.running
out["nodes2"], out["links2"] = tree_state(common.comp_tree(scene))
render("run2")

# older versions stay selectable: switch fire back to v001 and render again
el.version = "v001"
out["after_switch"] = {n.name: bpy.path.abspath(n.image.filepath) for n in common.comp_tree(scene).nodes
                       if getattr(n, "image", None) is not None}
render("switched")
# the shot's USD layout (written by the render) through Blender's USD importer
before = set(bpy.data.objects.keys())
out["layout_import"] = sorted(bpy.ops.gvfx.import_layout())
out["layout_objects"] = sorted((o.name, o.type) for o in bpy.data.objects if o.name not in before)
out["camera_chan"] = [os.path.join(cfg["output"], f) for f in os.listdir(cfg["output"]) if f.endswith(".chan")]
common.dump(cfg["result"], out)
