"""Fake ``nukescripts.panels``: records registrations; ``restorePanel`` instantiates the widget class."""

REGISTERED: dict = {}


def registerWidgetAsPanel(widget, name, id, create=False):
    REGISTERED[id] = (widget, name)


def restorePanel(id):
    import importlib

    path, _ = REGISTERED[id]
    module, _, cls = path.rpartition(".")
    return getattr(importlib.import_module(module), cls)()
