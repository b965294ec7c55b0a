"""Settings every layer reads from the environment: where the model store is.

One rule, in one place, for the diffusion stacks, the depth estimator and ``gvfx doctor``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["models_dir_default"]


def models_dir_default() -> Path:
    """The model store: ``$GVFX_MODELS`` or ``~/.cache/gvfx/models``."""
    env = os.environ.get("GVFX_MODELS", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gvfx" / "models"
