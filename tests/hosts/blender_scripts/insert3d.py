"""The 3D insert in the add-on: the element's Proxy (auto/lathe/inflate/card/mesh), its Mesh file and
Collider go into the job; generate a lathe insert; the Viewer shows its N and P layers on request while
the comp output stays the comp."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import bpy  # noqa: E402
import common  # noqa: E402

cfg = common.config()
prefs = common.install(cfg["zip"])
scene = common.setup_scene(cfg, prefs)
mod = sys.modules["bl_ext.user_default.gvfx.jobspec"]
out = {}
el = scene.gvfx.elements[0]
el.name, el.effect, el.reference, el.size_m = "can", "insert", cfg["can_png"], 0.3
rna = el.bl_rna.properties
out["proxy_items"] = [i.identifier for i in rna["proxy"].enum_items]
out["collider_items"] = [i.identifier for i in rna["collider"].enum_items]
out["viewer_items"] = [i.identifier for i in scene.gvfx.bl_rna.properties["viewer_layer"].enum_items]
out["mesh_subtype"] = rna["mesh_file"].subtype

el.proxy = "mesh"
errors = []
for mesh in ("", cfg["can_png"], os.path.join(cfg["work"], "gone.glb")):
    el.mesh_file = mesh
    try:
        mod.build_job(bpy.context)
        errors.append(None)
    except mod.SetupError as exc:
        errors.append(str(exc))
out["mesh_errors"] = errors
el.mesh_file = cfg["mesh_obj"]
el.collider = "box"
job, _ = mod.build_job(bpy.context)
out["mesh_job_element"] = job["elements"][0]

el.proxy, el.collider = "lathe", "auto"
job, _ = mod.build_job(bpy.context)
out["lathe_job_element"] = job["elements"][0]
out["run"] = sorted(bpy.ops.gvfx.generate())
out["status"] = scene.gvfx.status
out["version"] = el.version


def links():
    t = common.comp_tree(scene)
    return sorted(f"{l.from_node.name}:{common.socket_label(l.from_socket)}->"
                  f"{l.to_node.name}:{common.socket_label(l.to_socket)}" for l in t.links)


tree = common.comp_tree(scene)
out["element_outputs"] = [s.name for s in tree.nodes["gvfx can element"].outputs if s.enabled]
out["links_comp"] = links()
scene.gvfx.viewer_layer = "N"  # the update callback rebuilds the comp
out["links_n"] = links()
scene.gvfx.viewer_layer = "P"
out["links_p"] = links()
scene.gvfx.viewer_layer = "COMP"
out["links_back"] = links()
common.dump(cfg["result"], out)
