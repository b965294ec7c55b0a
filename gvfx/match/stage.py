"""The match stage: integrate one rendered element into its plate, frame by frame, and rebuild the comp.

Per shot (once, so nothing flickers): grain profile, focus, haze and key light are measured on the
plate's middle frame, the colour match on the element's first visible frame; every one of them can be
given in the settings instead (:class:`MatchSettings`, the job's ``match:`` section).

Per element and frame (:func:`match_frame`), on the (overscan, undistorted) canvas:
colour match -> haze -> motion vectors -> vector blur (elements rendered without the plate's shutter)
-> defocus -> depth holdout (anti-aliased, combined with the engine's) -> shadow -> re-distortion ->
grain and light wrap (against the real plate). The result is a set of layers (:class:`MatchedFrame`).

Across elements (:func:`occlude`), each element's holdout also takes in the elements nearer than it at
each pixel, so the comp is rebuilt with plain merges in any order (:func:`rebuild_comp`)::

    vis_i   = 1 - holdout_i
    el_i    = (rgba_i + [lightwrap_i, 0] + [grain_i, 0]) * vis_i        (premultiplied, alpha included)
    plate'  = plate.rgb * prod_i (1 - shadow_i) + sum_i platelight_i     (alpha untouched)
    fg      = sum_i el_i
    comp    = fg + plate' * (1 - fg.a)                                   ("over")

docs/match.md gives the same recipe as Nuke and Blender nodes; ``gvfx match`` (a user's element sequence,
outside a render) is :mod:`gvfx.match.sequences`.

The stage is split by idea, every name re-exported here: :mod:`~gvfx.match.settings` (``MATCH_PARAMS``,
``MatchSettings``), :mod:`~gvfx.match.estimates` (``estimate``, ``MatchEstimates``, ``PlateSample``),
:mod:`~gvfx.match.frame` (``match_frame``, ``MatchedFrame``) and :mod:`~gvfx.match.combine` (``occlude``,
``rebuild_comp``, ``write_matched``).
"""

from __future__ import annotations

from gvfx.match.combine import as_stored, layer_dict, occlude, rebuild_comp, write_matched
from gvfx.match.estimates import (COLOUR_GAIN_RANGE, COLOUR_LIFT_MAX, MatchEstimates, PlateSample,
                                  colour_out_of_range, estimate)
from gvfx.match.frame import MatchedFrame, grain_seed, match_frame
from gvfx.match.settings import MATCH_PARAMS, NO_SHADOW_EFFECTS, MatchSettings

__all__ = ["MATCH_PARAMS", "MatchSettings", "PlateSample", "MatchEstimates", "MatchedFrame", "estimate",
           "match_frame", "occlude", "rebuild_comp", "layer_dict", "write_matched", "grain_seed",
           "NO_SHADOW_EFFECTS", "colour_out_of_range", "COLOUR_GAIN_RANGE", "COLOUR_LIFT_MAX", "as_stored"]
