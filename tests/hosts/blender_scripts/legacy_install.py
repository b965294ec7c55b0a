"""The legacy add-on zip (``build.py --legacy``) installs with Preferences > Add-ons > Install and enables."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import bpy  # noqa: E402  (first: it puts addon_utils on the path)
import addon_utils  # noqa: E402
import common  # noqa: E402

cfg = common.config()
res = bpy.ops.preferences.addon_install(filepath=cfg["legacy_zip"])
addon_utils.enable("gvfx", default_set=True)
prefs = bpy.context.preferences.addons["gvfx"].preferences
prefs.output_root = cfg["work"]
common.dump(cfg["result"], {"install": sorted(res), "operators": hasattr(bpy.ops.gvfx, "generate"),
                            "settings": bpy.context.scene.gvfx.plate_source,
                            "prefs": bpy.context.preferences.addons["gvfx"].preferences.output_root})
