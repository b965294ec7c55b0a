# gvfx for Nuke. Install: add this folder to NUKE_PATH, or put one line in ~/.nuke/init.py:
#     nuke.pluginAddPath("/path/to/gvfx/hosts/nuke")
# Everything else lives in the gvfx_nuke package (docs/nuke.md).
import nuke

nuke.pluginAddPath("icons")
