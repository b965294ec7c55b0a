"""The built-in demo: a procedural plate with ground truth (camera, depth) and a reference image."""
