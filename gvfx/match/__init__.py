"""Plate matching: measure the plate (grain, colour, focus, haze) and apply it to generated elements.

The stage (``gvfx.match.stage``) runs every element through holdout, shadow, lens/overscan, motion,
defocus, colour, haze, grain and light wrap, and rebuilds the comp from the written layers
(docs/match.md). Nothing is imported here, so ``import gvfx.match.X`` stays cheap.
"""
