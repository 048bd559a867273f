"""Untrusted text made safe to show: what reaches a terminal, a file or a page is escaped.

Packet names (SNI, HTTP Host, DNS) are made text by :func:`kscc_traffic.protocols.dns.text_from_bytes`
and escaped again on output (:func:`escape_terminal`). Capture file names and paths come from the
file system and can hold the same things (ESC, newline, bidi overrides, bytes that are not UTF-8):
:func:`name_text` makes the text a capture is named by (the ``capture`` column, warning lines),
:func:`path_text` the text of a path in a warning or error line. The real path is kept for
opening the file.

No heavy imports here: the capture reader uses it.
"""
from __future__ import annotations

import os
import re

__all__ = ["clean_utf8", "escape_terminal", "name_text", "path_text"]

#: C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_utf8(s: str) -> str:
    """Undecodable bytes (kept as surrogates by ``surrogateescape``) -> ``\\xNN`` text, any other
    lone surrogate -> ``\\uNNNN`` text, so the result always encodes as UTF-8."""
    if not isinstance(s, str):
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return "".join(f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF
                       else f"\\u{ord(ch):04x}" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in s)


def _sub(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def escape_terminal(s) -> str:
    """Control characters and terminal escape sequences -> visible ``\\xNN`` text."""
    s = clean_utf8("" if s is None else str(s))
    return CONTROL.sub(_sub, s)


def name_text(name) -> str:
    """A file name (or any untrusted text naming a capture) as safe, unambiguous text: a
    backslash becomes ``\\\\`` (as in packet names), then as :func:`escape_terminal` (controls,
    C1, bidi -> ``\\xNN``/``\\uNNNN``, undecodable bytes -> ``\\xNN``). Different names give
    different texts; a name of printable characters without a backslash is its own text."""
    if isinstance(name, (bytes, bytearray)):
        name = os.fsdecode(bytes(name))
    s = "" if name is None else str(name)
    if "\\" in s:
        s = s.replace("\\", "\\\\")
    return escape_terminal(s)


def path_text(path) -> str:
    """A path as given (``str``, ``bytes`` or ``os.PathLike``) for a warning or error line: each
    part between separators as :func:`name_text`."""
    if isinstance(path, (bytes, bytearray)):
        p = os.fsdecode(bytes(path))
    else:
        try:
            p = os.fspath(path)
        except TypeError:
            p = str(path)
        if isinstance(p, bytes):
            p = os.fsdecode(p)
    return os.sep.join(name_text(part) for part in p.split(os.sep))
