# GVFX menu and toolbar; every entry calls a function of the gvfx_nuke package (docs/nuke.md).
# Nothing here may stop Nuke from starting: a failure is one line in the terminal.
try:
    import gvfx_nuke.menus
    gvfx_nuke.menus.build()
except Exception as exc:  # noqa: BLE001
    print(f"GVFX: not loaded ({type(exc).__name__}: {exc}); see docs/nuke.md")
