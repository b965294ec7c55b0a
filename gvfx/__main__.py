"""`python -m gvfx` runs the command line."""

from gvfx.cli import main

raise SystemExit(main())
