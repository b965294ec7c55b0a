"""Diffusion tests keep the weight-hash cache (hashcache.py) in a temporary folder, never in ~/.cache."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _hash_cache_in_tmp(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GVFX_HASH_CACHE", str(tmp_path_factory.mktemp("hashes") / "weight_hashes.json"))
    yield
    mp.undo()
