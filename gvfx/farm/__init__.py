"""Farm integration: job descriptions that a render farm's scheduler runs (``gvfx farm ...``)."""
