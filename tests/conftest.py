"""Shared test set-up: the tests folder is importable (pcapbuild), and the shared corpus path."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(TESTS))


def shared_corpus(sub: str) -> Path:
    """``../shared/corpus/<sub>`` or a pytest skip saying why (a user's fresh clone has no
    shared folder beside it)."""
    path = SHARED / "corpus" / sub
    if not path.is_dir():
        pytest.skip(f"{path} not present (the shared corpus lives beside the project checkout)")
    return path
