"""Settings: the add-on preferences, one element of the list, and the scene's settings (one PropertyGroup
on ``Scene.gvfx``)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

EFFECTS = ("fire", "smoke", "sparks", "explosion", "dust", "debris", "rain", "snow", "insert")
ENGINES = (("sim", "Simulation", "Physically simulated element (fire, smoke, sparks, ...)"),
           ("diffusion", "Diffusion", "Generated from a prompt and/or a reference image"))

PROXIES = (("auto", "Auto", "Lathe when the matte is left-right symmetric, else inflate (a mesh file: mesh)"),
           ("lathe", "Lathe", "A surface of revolution from the silhouette: cans, bottles, cups"),
           ("inflate", "Inflate", "A rounded volume grown from the silhouette: organic objects"),
           ("card", "Card", "The flat cut-out facing the camera: posters, signs, leaves"),
           ("mesh", "Mesh", "Your own mesh (OBJ, GLB or USD), scaled to Size"))
COLLIDERS = (("auto", "Auto", "The proxy's own shape and mass (a card: a sphere)"),
             ("hull", "Shape", "The proxy's own shape and mass: it tips, rolls, lands on a face"),
             ("sphere", "Sphere", "A ball of the object's height: rolls"),
             ("box", "Box", "An upright box: slides, never turns"))
#: What the compositor's Viewer shows: the comp, or a layer of the active element (the 3D insert's world
#: normals N and positions P, its motion vectors, shadow).
VIEWER_LAYERS = (("COMP", "Comp", "The comp of the plate and every element"),
                 ("N", "N (normals)", "The active element's world normals (a 3D insert)"),
                 ("P", "P (position)", "The active element's world positions in metres (a 3D insert)"),
                 ("motion", "Motion", "The active element's motion vectors"),
                 ("shadow", "Shadow", "The active element's shadow"))
MESH_SUFFIXES = (".obj", ".glb", ".usd", ".usda", ".usdc", ".usdz")

_version_items_cache: dict = {}  # Blender needs the enum item strings kept alive


def _version_items(self, context):
    from . import jobspec

    try:
        root = jobspec.output_root(context)
        found = jobspec.element_versions(root, self.name.strip())
    except Exception:  # noqa: BLE001 - an enum callback must never raise
        found = []
    items = [(f"v{n:03d}", f"v{n:03d}", folder, i) for i, (n, folder) in enumerate(found)]
    if not items:
        items = [("NONE", "none yet", "Generate to make the first version", 0)]
    _version_items_cache[self.as_pointer()] = items
    return items


def _version_changed(self, context):
    from . import operators

    operators.switch_version(context, self)


def _viewer_changed(self, context):
    from . import operators

    operators.refresh_viewer(context)


class GVFX_Preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    executable: StringProperty(
        name="gvfx executable", subtype="FILE_PATH", default="",
        description="The gvfx program (empty: $GVFX_EXECUTABLE, else gvfx on PATH)")
    models_dir: StringProperty(
        name="Model store", subtype="DIR_PATH", default="",
        description="Folder of gvfx models (empty: $GVFX_MODELS or ~/.cache/gvfx/models)")
    output_root: StringProperty(
        name="Output root", subtype="DIR_PATH", default="",
        description="Where versions, caches and timelines are written (empty: //gvfx next to the .blend)")
    doctor_report: StringProperty(name="Check result", default="", options={"SKIP_SAVE"})

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "executable")
        layout.prop(self, "models_dir")
        layout.prop(self, "output_root")
        layout.operator("gvfx.check", icon="CHECKMARK")
        if self.doctor_report:
            box = layout.box()
            for line in self.doctor_report.splitlines():
                icon = "ERROR" if line.startswith("FAIL") else ("INFO" if line.startswith("warn") else "NONE")
                if line.startswith("ok"):
                    icon = "CHECKMARK"
                box.label(text=line, icon=icon)


class GVFX_Element(bpy.types.PropertyGroup):
    name: StringProperty(name="Name", default="fire", description="Letters, digits, _ and -")
    enabled: BoolProperty(name="Enabled", default=True)
    engine: EnumProperty(name="Engine", items=ENGINES, default="sim")
    effect: EnumProperty(name="Effect", items=[(e, e.capitalize(), "") for e in EFFECTS], default="fire")
    prompt: StringProperty(name="Prompt", default="", description="Text prompt (diffusion engine)")
    reference: StringProperty(name="Reference", subtype="FILE_PATH", default="",
                              description="Look reference, or the object's image for an insert")
    placement: EnumProperty(name="Placement", default="CURSOR", items=(
        ("CURSOR", "3D Cursor", "The 3D cursor's position (Blender world, converted to gvfx's Y-up metres)"),
        ("OBJECT", "Object", "An object's position, e.g. an Empty you move"),
        ("SCREEN", "Screen", "A position on the frame, 0..1 from the top-left"),
        ("AUTO", "Automatic", "gvfx's default: the bottom-centre third of the frame")))
    placement_object: PointerProperty(name="Object", type=bpy.types.Object)
    screen_norm: FloatVectorProperty(name="Screen", size=2, default=(0.5, 0.65), min=0.0, max=1.0)
    size_m: FloatProperty(name="Size", default=0.6, min=0.001, soft_max=50.0, unit="LENGTH",
                          description="The element's size in metres")
    seed: IntProperty(name="Seed", default=1, min=0)
    # the insert's 3D proxy and rigid body (docs/insert.md)
    proxy: EnumProperty(name="Proxy", default="auto", items=PROXIES,
                        description="The object's 3D shape, built from the reference (or your mesh)")
    mesh_file: StringProperty(name="Mesh", subtype="FILE_PATH", default="",
                              description="The object's own mesh for Proxy: Mesh (OBJ, GLB or USD)")
    collider: EnumProperty(name="Collider", default="auto", items=COLLIDERS,
                           description="The rigid body that falls, tips and rolls on the plate")
    version: EnumProperty(name="Version", items=_version_items, update=_version_changed,
                          description="The version shown in the compositor")


class GVFX_Settings(bpy.types.PropertyGroup):
    plate_source: EnumProperty(name="Plate", default="IMAGE", items=(
        ("IMAGE", "Image", "An image sequence already in the file"),
        ("CLIP", "Movie Clip", "A movie clip (image sequence) already in the file"),
        ("PATH", "Path", "A frame pattern on disk")))
    plate_image: PointerProperty(name="Plate image", type=bpy.types.Image)
    plate_clip: PointerProperty(name="Plate clip", type=bpy.types.MovieClip)
    plate_path: StringProperty(name="Plate path", subtype="FILE_PATH", default="")
    plate_colorspace: StringProperty(name="Colour space", default="ACEScg")
    depth_source: EnumProperty(name="Depth", default="LAYER", items=(
        ("LAYER", "Plate layer", "A depth channel of the plate file (e.g. Z)"),
        ("PATH", "Sequence", "A separate depth sequence"),
        ("NONE", "Automatic", "Let gvfx find a depth layer or use its default")))
    depth_layer: StringProperty(name="Layer", default="Z")
    depth_path: StringProperty(name="Depth path", subtype="FILE_PATH", default="")
    depth_convention: EnumProperty(name="Convention", default="z", items=(
        ("z", "Z", "Camera-space Z in metres"), ("distance", "Distance", "Distance along each ray"),
        ("inverse_z", "Inverse Z", "1/z (Nuke ScanlineRender)"), ("normalized", "Normalized", "0..1 estimator")))
    camera_source: EnumProperty(name="Camera", default="SCENE", items=(
        ("SCENE", "Scene camera", "Export the scene camera per frame to a .chan file"),
        ("FILE", "File", "A USD or .chan camera file"),
        ("NONE", "None", "gvfx's default lens, locked off")))
    camera_file: StringProperty(name="Camera file", subtype="FILE_PATH", default="")
    viewer_layer: EnumProperty(name="Viewer", default="COMP", items=VIEWER_LAYERS, update=_viewer_changed,
                               description="What the compositor's Viewer node shows")
    layout_path: StringProperty(name="Layout", subtype="FILE_PATH", default="",
                                description="The shot's layout.usda (empty: OUTPUT/layout.usda)")
    elements: CollectionProperty(type=GVFX_Element)
    active_element: IntProperty(default=0)
    # job state (shown in the panel; reset when a job ends)
    running: BoolProperty(default=False, options={"SKIP_SAVE"})
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    status: StringProperty(default="", options={"SKIP_SAVE"})


CLASSES = (GVFX_Preferences, GVFX_Element, GVFX_Settings)
