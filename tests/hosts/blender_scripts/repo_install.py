"""Install gvfx the way a studio user does from a self-hosted extensions repository (docs/blender.md):
Preferences > Get Extensions > Repositories > Add Remote Repository (a file:// URL of build.py's
index.json), sync, install. Run by Blender's Python; writes what it saw as JSON."""

import json
import os
import sys

import bpy

cfg = json.loads(open(sys.argv[sys.argv.index("--") + 1]).read())
prefs = bpy.context.preferences
prefs.system.use_online_access = True  # a file:// repository; nothing leaves the machine
out = {"blender_version": list(bpy.app.version)}
out["add"] = list(bpy.ops.preferences.extension_repo_add(name="gvfx studio", remote_url=cfg["url"], type="REMOTE",
                                                         use_sync_on_startup=False))
idx = [i for i, r in enumerate(prefs.extensions.repos) if r.name == "gvfx studio"][0]
repo = prefs.extensions.repos[idx]
out["sync"] = list(bpy.ops.extensions.repo_sync(repo_directory=repo.directory, repo_index=idx))
out["install"] = list(bpy.ops.extensions.package_install(repo_directory=repo.directory, repo_index=idx, pkg_id="gvfx",
                                                         enable_on_install=True))
out["module"] = repo.module
out["addons"] = sorted(k for k in prefs.addons.keys() if "gvfx" in k)
out["operator"] = hasattr(bpy.types, "GVFX_OT_generate")
out["installed"] = sorted(os.listdir(os.path.join(repo.directory, "gvfx")))
with open(cfg["result"], "w") as fh:
    json.dump(out, fh)
