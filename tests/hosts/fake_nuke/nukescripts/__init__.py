"""Fake ``nukescripts`` (only ``panels.registerWidgetAsPanel``/``restorePanel``) for gvfx_nuke tests."""
