"""The gvfx panel (PySide6): job queue, version browser and viewer (docs/studio.md).

Only PySide6, the standard library and ``gvfx.client`` are imported here, so the same widgets run in
``gvfx studio`` and inside Nuke's Python. Pixels come from the worker's ``preview`` request.
"""
