"""Put the Nuke adapter (hosts/nuke) and, when asked, the fake ``nuke`` module on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HOSTS_NUKE = REPO / "hosts" / "nuke"
FAKE = Path(__file__).resolve().parent


def add_adapter() -> None:
    if str(HOSTS_NUKE) not in sys.path:
        sys.path.insert(0, str(HOSTS_NUKE))


def add_fake_nuke() -> None:
    add_adapter()
    if str(FAKE) not in sys.path:
        sys.path.insert(0, str(FAKE))
