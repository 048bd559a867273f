"""Shared test set-up: the tests folder is importable (pcapbuild), and the shared corpus path."""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

# GNU readline (imported by pytest's pdb support) exports the terminal's width as COLUMNS to the
# processes started from here (80 without a terminal), though os.environ does not show it; the
# command line's tables take COLUMNS in a pipe: without it they are the pipe's 200 columns, as a
# user's run gets them. A test that wants a width gives COLUMNS itself.
os.unsetenv("COLUMNS")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: the shared folder (corpus, acceptance tool): beside the checkout, or where KSCC_SHARED says
#: (a checkout elsewhere: ``KSCC_SHARED=/work/shared python -m pytest``)
SHARED = Path(os.environ.get("KSCC_SHARED") or ROOT.parent / "shared")
sys.path.insert(0, str(TESTS))

#: the user documentation: the README (the short guide) and the reference pages it points to
DOCS = (ROOT / "README.md", ROOT / "docs" / "analyze.md", ROOT / "docs" / "flow-table.md", ROOT / "docs" / "live.md",
        ROOT / "docs" / "performance.md")


def documentation() -> str:
    """The text of the README and of the reference pages under docs/ (:data:`DOCS`), one after the
    other: what a test about the documented behaviour reads (the README holds the short version)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS)


def shared_corpus(sub: str) -> Path:
    """``../shared/corpus/<sub>`` or a pytest skip saying why (a user's fresh clone has no
    shared folder beside it)."""
    path = SHARED / "corpus" / sub
    if not path.is_dir():
        pytest.skip(f"{path} not present (the shared corpus lives beside the project checkout)")
    return path


def inet_checksum(b: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``b``, for headers built by hand in tests."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
