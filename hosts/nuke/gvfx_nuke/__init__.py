"""gvfx in Nuke: GVFX Element / Insert / Match nodes and the gvfx panel (docs/nuke.md).

Nothing here imports torch, numpy or OpenImageIO: the work happens in ``gvfx worker``, reached through
the standard-library client ``gvfx.client`` (:mod:`gvfx_nuke.connect`). Pure logic (knob -> job, checks)
is in :mod:`gvfx_nuke.params` and :mod:`gvfx_nuke.jobs`; :mod:`gvfx_nuke.nodes` and
:mod:`gvfx_nuke.generate` are the thin layer of ``nuke`` calls.
"""

__all__ = ["menus", "nodes", "generate", "jobs", "params", "connect", "session", "panel"]
