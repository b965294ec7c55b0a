# GVFX menu and toolbar; every entry calls a function of the gvfx_nuke package (docs/nuke.md).
import gvfx_nuke.menus

gvfx_nuke.menus.build()
