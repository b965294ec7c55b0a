"""``python -m gvfx.cli``: the same as ``gvfx`` and ``python -m gvfx``."""

from gvfx.cli import main

raise SystemExit(main())
