"""The gvfx panel in the Compositor's sidebar and the 3D View's (same content), and the element list."""

from __future__ import annotations

import bpy

from . import operators


class GVFX_UL_elements(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.prop(item, "name", text="", emboss=False)
        row.label(text=item.effect if item.engine == "sim" else item.engine)
        row.label(text=item.version if item.version != "NONE" else "-")


def _draw(layout, context):
    s = context.scene.gvfx
    col = layout.column()
    box = col.box()
    box.label(text="Plate", icon="IMAGE_DATA")
    box.prop(s, "plate_source", text="")
    if s.plate_source == "IMAGE":
        box.template_ID(s, "plate_image", open="image.open")
    elif s.plate_source == "CLIP":
        box.template_ID(s, "plate_clip", open="clip.open")
    else:
        box.prop(s, "plate_path", text="")
    box.prop(s, "plate_colorspace")
    box.prop(s, "depth_source")
    if s.depth_source == "LAYER":
        box.prop(s, "depth_layer")
    elif s.depth_source == "PATH":
        box.prop(s, "depth_path", text="")
    if s.depth_source != "NONE":
        box.prop(s, "depth_convention")
    box.prop(s, "camera_source")
    if s.camera_source == "FILE":
        box.prop(s, "camera_file", text="")
    elif s.camera_source == "SCENE" and context.scene.camera is None:
        box.label(text="The scene has no camera", icon="ERROR")

    col.label(text="Elements")
    row = col.row()
    row.template_list("GVFX_UL_elements", "", s, "elements", s, "active_element", rows=3)
    sub = row.column(align=True)
    sub.operator("gvfx.element_add", icon="ADD", text="")
    sub.operator("gvfx.element_remove", icon="REMOVE", text="")
    if 0 <= s.active_element < len(s.elements):
        el = s.elements[s.active_element]
        eb = col.box()
        eb.prop(el, "engine")
        eb.prop(el, "effect")
        if el.engine != "sim":
            eb.prop(el, "prompt")
        if el.effect == "insert" and el.engine == "sim":
            eb.prop(el, "proxy")
            if el.proxy == "mesh":
                eb.prop(el, "mesh_file")
            else:
                eb.prop(el, "reference")
            eb.prop(el, "collider")
        else:
            eb.prop(el, "reference")
        eb.prop(el, "placement")
        if el.placement == "OBJECT":
            eb.prop(el, "placement_object")
        elif el.placement == "SCREEN":
            eb.prop(el, "screen_norm")
        eb.prop(el, "size_m")
        eb.prop(el, "seed")
        eb.prop(el, "version")

    row = col.row(align=True)
    running = operators.active_session() is not None and not operators.active_session().finished
    row.enabled = not running
    row.operator("gvfx.generate", icon="RENDER_ANIMATION")
    if running:
        col.progress(factor=s.progress, text=s.status or "gvfx")
        col.operator("gvfx.cancel", icon="CANCEL")
    elif s.status:
        col.label(text=s.status, icon="ERROR" if "error" in s.status else "INFO")
    row = col.row(align=True)
    row.operator("gvfx.refresh_comp", icon="NODETREE")
    row.operator("gvfx.import_layout", icon="IMPORT")
    col.prop(s, "viewer_layer")
    col.prop(s, "layout_path")


class GVFX_PT_compositor(bpy.types.Panel):
    bl_label = "gvfx"
    bl_idname = "GVFX_PT_compositor"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "gvfx"

    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "tree_type", "") == "CompositorNodeTree"

    def draw(self, context):
        _draw(self.layout, context)


class GVFX_PT_view3d(bpy.types.Panel):
    bl_label = "gvfx"
    bl_idname = "GVFX_PT_view3d"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "gvfx"

    def draw(self, context):
        _draw(self.layout, context)


CLASSES = (GVFX_UL_elements, GVFX_PT_compositor, GVFX_PT_view3d)
