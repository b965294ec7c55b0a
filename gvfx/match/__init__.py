"""Plate matching: measure the plate (grain, colour, focus, haze) and apply it to generated elements."""
