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

#: What is escaped: C0 controls, DEL, C1 controls, line/paragraph separators, and every
#: invisible or format character that could make a name read as another: Unicode's format
#: characters (category Cf: soft hyphen U+00AD, zero-width space/joiners U+200B-U+200D, bidi
#: marks, embeddings, overrides and isolates, word joiner and invisible operators
#: U+2060-U+2064, BOM U+FEFF, interlinear annotation U+FFF9-U+FFFB, tags U+E0001/U+E0020-E007F,
#: Arabic/Syriac/Kaithi/Egyptian/Brahmi/musical format signs, ... as of Unicode 15) and the rest
#: of the default-ignorable code points (combining grapheme joiner U+034F, Hangul fillers, Khmer
#: inherent vowels, Mongolian and other variation selectors U+FE00-U+FE0F/U+E0100-U+E01EF,
#: U+FFF0-U+FFF8, U+E0000-U+E0FFF), and the space separators other than the ASCII space
#: (category Zs: no-break space U+00A0, en/em/thin spaces U+2000-U+200A, U+202F, U+205F,
#: ideographic space U+3000, U+1680): 'eu1.ksc.kaspersky.com\u3000' must not read as the name
CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\xa0\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680"
    r"\u2000-\u200a\u202f\u205f\u3000"
    r"\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164"
    r"\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")


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
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def escape_terminal(s) -> str:
    """Control characters, terminal escape sequences and invisible/format characters
    (:data:`CONTROL`) -> visible ``\\xNN`` / ``\\uNNNN`` / ``\\UNNNNNNNN`` text."""
    s = "" if s is None else str(s)
    if s.isascii():                      # most cells: no regex scan when nothing is to escape
        return s if s.isprintable() else CONTROL.sub(_sub, s)
    return CONTROL.sub(_sub, clean_utf8(s))


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
