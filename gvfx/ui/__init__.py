"""The gvfx panel (PySide6, or PySide2 in Nuke 15: gvfx.ui.qt): job queue, version browser and viewer (docs/studio.md).

Only Qt (through gvfx.ui.qt), the standard library and ``gvfx.client`` are imported here, so the same widgets run in
``gvfx studio`` and inside Nuke's Python. Pixels come from the worker's ``preview`` request.
"""
