"""Fake ``nukescripts.panels``, shaped like Foundry's own ``nukescripts/panels.py`` (shipped with Nuke;
https://learn.foundry.com/nuke/developers/latest/pythondevguide/_modules/nukescripts/panels.html):
``registerWidgetAsPanel`` registers a command that builds a **new** ``PythonPanel`` and returns
``panel.addToPane()``; ``restorePanel(id)`` calls it, so each call makes a new panel (and a new widget
when the panel is shown); ``addToPane`` returns the panel itself. Closing a panel destroys its widget."""

import importlib

REGISTERED: dict = {}
_panels: dict = {}
PANELS: list = []  # every panel made, for assertions


class WidgetKnob:
    def __init__(self, widget_class):
        self.widgetClass = widget_class

    def makeUI(self):
        self.widget = self.widgetClass()
        return self.widget


class PythonPanel:
    def __init__(self, title="", id="", scrollable=True):
        self.title, self.id = title, id
        self.widget = None
        self.pane = None
        self._valid = True
        PANELS.append(self)

    def create(self):
        return None

    def addToPane(self, pane=None):
        self.create()
        if pane is not None:
            pane.add(self)
        return self

    def isValid(self):
        return self._valid

    def close(self):
        """The artist closes the panel: Qt deletes the widget (its ``destroyed`` signal fires)."""
        self._valid = False
        if self.widget is not None:
            from gvfx.ui.qt import delete_widget

            delete_widget(self.widget)
            self.widget = None


def _widget_class(path):
    module, _, cls = path.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def registerWidgetAsPanel(widget, name, id, create=False):
    REGISTERED[id] = (widget, name)

    class Panel(PythonPanel):
        def __init__(self):
            super().__init__(name, id)
            self.knob = WidgetKnob(_widget_class(widget))

        def create(self):  # Nuke shows the panel: the PyCustom_Knob's makeUI builds the widget once
            if self.widget is None and self._valid:
                self.widget = self.knob.makeUI()

    def add_panel():
        return Panel().addToPane()

    _panels[id] = add_panel
    return Panel() if create else None


def restorePanel(id):
    try:
        return _panels[id]()
    except KeyError:
        print("Can't restore panel '", id, "' because it hasn't been registered.")
        return None


class Pane:
    """What ``nuke.getPaneFor`` returns: panes hold panels."""

    def __init__(self, name):
        self.name = name
        self.panels = []

    def add(self, panel):
        if panel not in self.panels:
            self.panels.append(panel)
        panel.pane = self
