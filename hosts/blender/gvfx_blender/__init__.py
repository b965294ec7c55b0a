"""gvfx for Blender: generate VFX elements matched to a plate and comp them in the compositor.

Installs as a Blender extension (``blender_manifest.toml``, Blender 4.2+) or the legacy way
(``bl_info``). The heavy work runs in a separate ``gvfx worker`` process reached through the vendored
standard-library client (``vendor/gvfx_client.py``); nothing here imports torch, numpy or OpenImageIO.
Registration happens in one place (this file); importing the package does no work.
"""

bl_info = {
    "name": "gvfx",
    "author": "gvfx developers",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "Compositor / 3D View > Sidebar > gvfx",
    "description": "Generate VFX elements matched to a plate and comp them",
    "category": "Compositing",
}

import bpy

from . import operators, panels, props

CLASSES = props.CLASSES + operators.CLASSES + panels.CLASSES

_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.Scene.gvfx = bpy.props.PointerProperty(type=props.GVFX_Settings)
    operators.add_handlers()


def unregister() -> None:
    operators.remove_handlers()
    operators.shutdown_workers()
    del bpy.types.Scene.gvfx
    _unregister_classes()
