"""Flow table -> what people read: a rich table, JSON Lines, CSV, a readiness checklist.

Every string that comes from packets (SNI, HTTP Host, DNS names) is untrusted:

- terminal output: control characters and escape sequences are shown as ``\\x1b``-style text and
  cells are rich ``Text`` objects, so ``[bold]``-like markup in a name is printed, not obeyed;
- CSV: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'`` (the OWASP
  advice against formula injection);
- JSON Lines: always valid UTF-8; bytes that were not UTF-8 appear as ``\\xff`` text.
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import ipaddress
import re
from typing import IO, TYPE_CHECKING, Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:   # (rich is imported by the functions that print: JSON Lines and CSV need none of it)
    from rich.console import Console

from .addresses import endpoint_text
from .attempts import AttemptGroups, with_summary
from .classify import same_subnet
from .classify import proxy_login, AAAA_ONLY, REJ_DETAIL, ANSWERED_ELSEWHERE, DNS_NO_ERROR, DNS_TCP_RESET, DP_INBOUND, DP_PATH_REFUSED, PROXY_CREDENTIALS_REFUSED, DP_RESET, DP_RESET_ITSELF, FILTER_ANSWER, INBOUND, MISMATCH_FAILED, \
    IDLE_GOES_ON, NAT_LEFT, NAT_OUTSIDE_COPY, PATH_RESET, SESSION_GONE, STALLED, LOCAL_CLOUD, ONE_WAY_CERT, CERT_UNREAD, CERT_UNSEEN, ONPREM_PORT, STALE_ANSWER, ACK_ONLY_ANSWER, TLS13_HIDDEN, UNTRUSTED_PUBLIC, VENDOR_DOMAIN, \
    OTHER_SERVER, SUITES_REFUSED, OFFER_CURRENT_SAID, VERSION_REFUSED, CERT_DATED, REFUSED_AFTER_REQUEST, PRIVATE_CA_MEANS, SLOW_HELLO, SLOW_HELLO_S, WINDOW_HELD, WINDOW_HELD_S, \
    _under_domain, sinkhole_address, CERT_REQUIRED, CLIENT_CERT_ASKED, DNS_LOST_FRAGMENTS, FRAGS_LOST, TUNNEL_EMPTY, \
    SHARED_PORTS_BELOW, ksc_only
from .classify import _ABSOLUTE, _TEXT_COLUMNS, _str_codes
from .classify import MCAST_JOINS_RE, PORTAL_STATUS, SCAN_DOCUMENTED, SCAN_NOT_KSC
from .classify import AAAA_OVER_IPV6, DNS_NO_ADDRESS, DROPPED_FALLBACK, FALLBACK_CLEARED, FALLBACK_S, V6_ONLY_A, V6_ONLY_HEAD
from .scans import ADDRESS_SCAN, PORT_SCAN
from .natadvice import copies_text, nat64_fix, nat64_seen, nat_counts, nat_fix
from .outfile import write_all
from .flows import arrays_of, carried_data, history_core
from .names import is_ip_literal
from .protocols.tls import is_host_name
from .rules import RuleSet
from .classify import CLOUD_OPENER, CUT_SHORT_TAIL, LOST_RECORD, DIRECT_UNANSWERED, END_MARGIN_S, HANDSHAKE_CLOSE, HANDSHAKE_RESET, \
    REQUEST_RESET, \
    SYNACK_NOT_TAKEN
from .classify import ECH_MAY_BE, PAGE_SERVED, PINNED_OPENER, PINNED_REFUSED, PINNED_SILENT, QUOTED_COLUMNS, SYNACK_LOST, quoted_names, without_names
from .text import clean_utf8, escape_terminal  # noqa: F401 (escaping helpers, here for callers)
from .unreachable import (FROM_DESTINATION, OWN_TTL_RX, NOT_LISTENING, NOT_REFUSALS, REJECTS, TOO_BIG_IGNORED, answered_by,
                          delivery_error, icmp_kind, reassembly_note, too_big_note)
from .inspect import HELLO_COPIES, REFUSED_NEARER, REFUSED_OTHER, REFUSED_OWN, REFUSED_OWN_MEANS, UNMATCHED_ID, UNMATCHED_QUESTION

#: what makes a spreadsheet read a CSV cell as a formula (OWASP's list, and the full-width forms
#: some Excel locales also take), after any leading spaces (ASCII or ideographic)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CELL_SPACES = " \u3000"

#: readiness statuses, worst first; "port open": flows of the purpose were answered, but on a port
#: other programs share (below 1024: 80, 443) none named a server under its mask, so they may be
#: another program's traffic (a browser's HTTPS): not proof that the purpose works; or the ok
#: flows of a TLS purpose were all bare TCP handshakes (no byte: a port probe, TLS not shown); "seen one-way":
#: UDP datagrams of a purpose that expects no answer (UDP 15000 broadcasts, 15001 multicasts) were
#: sent, nothing answered them, so the capture cannot show that they were received (only that
#: they reached the capturing device's interface, when it is a receiver); or TCP connections
#: captured in one direction only (reason ``one_way``: the agent acknowledged the server's
#: packets, none of which is in the capture), nothing else seen of the purpose
STATUS_ORDER = ("blocked", "unexpected", "verified", "port open", "seen one-way", "not seen")

#: pandas timestamps end in 2262 and start in 1677; capture times beyond (damaged files, clamped
#: by the reader) are shown at those ends instead of raising
TS_LIMIT_S = 9.2e9


def clip_ts(seconds):
    """Epoch seconds (scalar or array) clipped to what pandas can turn into a timestamp."""
    return np.clip(seconds, -TS_LIMIT_S, TS_LIMIT_S)


def time_texts(ts_ns, fmt: str = "%H:%M:%S.%f") -> list[str]:
    """Exact capture times (``ts_ns``: int64 nanoseconds since the epoch, scalar or array-like)
    -> texts of ``fmt`` (UTC) cut to milliseconds (``fmt`` must end in ``%f``): the digits shown
    are those of the exact time, cut, never those of the float ``ts`` (``.050`` stays ``.050``,
    not ``.049``). Any int64 is shown (the smallest, pandas' NaT, as the next one)."""
    a = np.atleast_1d(np.asarray(ts_ns, dtype=np.int64))
    a = np.maximum(a, np.iinfo(np.int64).min + 1)
    return [t[:-3] for t in pd.to_datetime(a, unit="ns").strftime(fmt)]


def escape_csv(value):
    """Neutralise spreadsheet formulas in a CSV cell (strings only)."""
    if isinstance(value, str):
        value = clean_utf8(value)
        if value.lstrip(_CELL_SPACES).startswith(_FORMULA_START):
            return "'" + value
    return value


def _csv_float_texts(s: pd.Series) -> list[str]:
    """The CSV text of each value of a float column: the same number as in JSON Lines (pandas'
    JSON text, ``double_precision=6``: rounded to the microsecond, at most 6 decimals without
    trailing zeros: ``1772442002.55``, ``0.575887``, ``0.0``), empty for NaN and infinities (JSON
    ``null``), never the float's full ``repr`` (``1772442002.5500002``)."""
    if not len(s):
        return []
    texts = s.to_json(orient="values", **_JSON_ARGS)[1:-1].split(",")
    return ["" if t == "null" else t for t in texts]


def _is_float_column(s: pd.Series) -> bool:
    return isinstance(s.dtype, np.dtype) and s.dtype.kind == "f"


def _write_csv_rows(flows: pd.DataFrame, out: IO[str]) -> None:
    """Reference CSV writer: one :func:`escape_csv` per cell, ``csv.writer`` row by row; the cells
    of float columns are :func:`_csv_float_texts` (the numbers of JSON Lines)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(flows.columns))
    floats = [_csv_float_texts(flows.iloc[:, j]) if _is_float_column(flows.iloc[:, j]) else None
              for j in range(flows.shape[1])]
    for i, row in enumerate(flows.itertuples(index=False)):
        w.writerow([escape_csv(v) if f is None else f[i] for v, f in zip(row, floats)])


# --- fast writers --------------------------------------------------------------------------------
# They write the same text, byte for byte, as pandas' ``to_json(orient="records", lines=True, ...)``
# of the cleaned table (JSON Lines) and as :func:`_write_csv_rows` (CSV), only faster: the text of
# each cell is made column by column, then the cells of a row are joined.
# JSON Lines: every value text is pandas' own, made once per column or per distinct value:
# numbers by one ``Series.to_json`` per dtype cut at its commas, a text of printable ASCII other than
# '"', '\\' and '/' (what pandas escapes) put between quotes as it is, any other text one
# ``to_json`` of the distinct values, read string by string; keys are pandas' text of each name.
# Each cell's text starts with its ``,"key":`` (put in by one join over a column's texts, or
# once per distinct value). Adjacent columns of few distinct values (ports, protocol, verdict,
# names…) are one piece of the row, made once per distinct combination of their values, so a
# row of the flow table is the join of about 15 pieces, not 44.
# CSV: a text column that needs neither escaping nor quoting (one scan of the whole column says
# so) is taken as it is, the others are escaped once per distinct value; numbers are
# ``str``/``repr`` as csv writes them.
# What they are not sure about goes to the row by row writer (CSV: a table with other dtypes,
# missing values in a text column, a single column) or to pandas (JSON: a table with other dtypes
# or column names that are not unique text; a slice of rows with a text cell that is no str).
# Text columns may be object or pandas ``str`` columns (the stages before the final schema make
# the latter).

#: rows encoded (JSON) or joined (CSV) at a time: bounds the memory held by the text
_CHUNK_ROWS = 8192
#: characters that may make csv quote a cell (with a margin: space, DEL); checked by :func:`_csv_ok`
_CSV_SPECIAL = re.compile(r'[\x00-\x20",\x7f]')
_CSV_SPECIAL_BYTES = bytes([*range(0x21), ord('"'), ord(","), 0x7F])
#: pandas' JSON text. ``double_precision=6``: ``ts`` and ``duration`` (seconds, the table's only
#: floats) rounded to the microsecond, at most 6 decimals without trailing zeros (Zeek writes a
#: fixed 6; the same numbers) (``ts_ns`` keeps the exact time)
_JSON_ARGS = dict(force_ascii=False, double_precision=6, date_unit="ns")
#: ASCII that pandas writes escaped in a JSON string (the controls, '"', '\\', '/'), and DEL (with
#: a margin); a text of the other ASCII characters is written as it is between quotes (checked
#: by :func:`_json_ok`)
_JSON_SPECIAL_BYTES = bytes([*range(0x20), ord('"'), ord("\\"), ord("/"), 0x7F])
#: one JSON string: between its quotes no unescaped quote, no backslash without the character
#: it escapes (read from a string's opening quote, it ends at that string's closing quote)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _clean_frame(flows: pd.DataFrame) -> pd.DataFrame:
    """Text columns made encodable as UTF-8 (see :func:`clean_utf8`); a column is checked with one
    join of all its values (ASCII needs no more, else one encode) and only mapped cell by cell
    when that fails."""
    out = flows
    for j, (_, col) in enumerate(flows.items()):  # items(): one Series per column, cheaper than iloc
        if col.dtype != object:
            continue
        values = col.tolist()
        try:
            try:
                joined = "\x00".join(values)
            except TypeError:  # not only text
                joined = "\x00".join(v for v in values if isinstance(v, str))
            if not joined.isascii():
                joined.encode("utf-8")
        except UnicodeEncodeError:
            if out is flows:
                out = flows.copy()
            out.isetitem(j, [clean_utf8(v) for v in values])
    return out


def _epoch_ns(flows: pd.DataFrame) -> pd.DataFrame:
    """``flows`` with its datetime and timedelta columns (a user's, e.g. ``pd.to_datetime(ts_ns)``
    added in a notebook) as nullable ``Int64`` nanoseconds since the epoch (UTC) / nanoseconds, and
    a plain range index: the numbers pandas' ``date_format="epoch"`` writes with ``date_unit="ns"``
    (NaT as null), without its deprecation warning (pandas 3 warns that the default becomes ISO
    text; ``orient="records"`` writes no index, but a datetime index alone draws the warning)."""
    kinds = [j for j, dt in enumerate(flows.dtypes) if dt.kind in "mM"]
    if not kinds and flows.index.dtype.kind not in "mM" and flows.columns.dtype.kind not in "mM":
        return flows
    out = flows.reset_index(drop=True)
    if out.columns.dtype.kind in "mM":
        out.columns = [str(c) for c in out.columns]
    for j in kinds:
        col = out.iloc[:, j]
        if getattr(col.dt, "tz", None) is not None:
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        values = col.to_numpy().astype("datetime64[ns]" if col.dtype.kind == "M" else "timedelta64[ns]")
        missing = col.isna().to_numpy()
        out.isetitem(j, pd.arrays.IntegerArray(np.where(missing, 0, values.view(np.int64)), missing))
    return out


def _write_jsonl_pandas(flows: pd.DataFrame, out: IO[str]) -> None:
    """pandas' ``to_json(orient="records", lines=True)`` of ``flows`` (already cleaned), made
    ``_CHUNK_ROWS`` rows at a time: the ``orient="records"`` text of the slice with each ``},{``
    between records replaced by a newline when it occurs nowhere else (its count says so; else
    that slice is written by ``lines=True``, which finds the separators one character at a time)."""
    flows = _epoch_ns(flows)
    for lo in range(0, len(flows), _CHUNK_ROWS):
        part = flows.iloc[lo:lo + _CHUNK_ROWS]
        text = part.to_json(orient="records", **_JSON_ARGS)
        if text.count("},{") == len(part) - 1 and text.startswith("[{") and text.endswith("}]"):
            write_all(out, text[1:-1].replace("},{", "}\n{") + "\n")
        else:
            text = part.to_json(orient="records", lines=True, **_JSON_ARGS)
            write_all(out, text if text.endswith("\n") else text + "\n")


@functools.cache
def _json_ok() -> bool:
    """Does pandas write what :func:`_write_jsonl_columns` assumes: a text of printable ASCII
    other than '"', '\\' and '/' as itself between quotes (as a key and as a value), bools as
    ``true``/``false``, ``,`` and ``:`` without spaces?"""
    plain = "".join(c for c in map(chr, range(0x20, 0x7F)) if c not in '"\\/')
    probe = pd.DataFrame({plain: [plain, plain[::-1]], "b": [True, False]}, dtype=object).astype({"b": bool})
    return probe.to_json(orient="records", lines=True, **_JSON_ARGS).rstrip("\n") == \
        f'{{"{plain}":"{plain}","b":true}}\n{{"{plain}":"{plain[::-1]}","b":false}}'


def _json_strings(values: list[str]) -> list[str]:
    """pandas' JSON text of each string of ``values`` (quoted and escaped): its ``to_json`` of them
    as one column, read string by string (:data:`_JSON_STRING`; the strings joined back with
    commas must give that text again), or, should it not, one ``to_json`` per value."""
    text = pd.Series(values, dtype=object).to_json(orient="values", **_JSON_ARGS)
    parts = _JSON_STRING.findall(text)
    if len(parts) == len(values) and text == "[" + ",".join(parts) + "]":
        return parts
    return [pd.Series([v], dtype=object).to_json(orient="values", **_JSON_ARGS)[1:-1] for v in values]


@functools.lru_cache(maxsize=16)
def _json_keys(names: tuple[str, ...]) -> tuple[str, ...] | None:
    """pandas' text of each column name as a key (``"name"``; a frame of that one column, as pandas
    writes keys its own way: it cuts a name at its first NUL), with the ``{`` or ``,`` before it
    and the ``:`` after; None when that text is not found. A name of printable ASCII but '"',
    '\\', '/' is written as itself (when :func:`_json_ok`, which tries such a key): no frame."""
    keys = []
    plain = _json_ok()
    for j, name in enumerate(names):
        if plain and name and name.isascii() and \
                len(name.encode("ascii").translate(None, _JSON_SPECIAL_BYTES)) == len(name):
            keys.append(("{" if j == 0 else ",") + f'"{name}":')
            continue
        text = pd.DataFrame({name: [0]}).to_json(orient="records", **_JSON_ARGS)
        if not (text.startswith('[{"') and text.endswith('":0}]')):
            return None
        keys.append(("{" if j == 0 else ",") + text[2:-3])
    return tuple(keys)


def _json_column_kind(dtype) -> str | None:
    """How :func:`_write_jsonl_columns` writes a column of ``dtype``: ``text`` (object and pandas
    ``str`` columns: each slice checks that its cells are all ``str``), ``bool``, ``int`` (numpy
    integers), ``float`` (float32/64), or None (not handled)."""
    if dtype == object or isinstance(dtype, pd.StringDtype):
        return "text"
    kind = dtype.kind if isinstance(dtype, np.dtype) else ""
    if kind == "b":
        return "bool"
    if kind in ("i", "u"):
        return "int"
    if kind == "f" and dtype.itemsize in (4, 8):
        return "float"
    return None


def _json_numbers(arrays: list[np.ndarray]) -> list[list[str]] | None:
    """pandas' JSON text of each value of each number array (numbers, ``null`` for NaN/inf):
    one ``Series.to_json`` of the arrays of each dtype put end to end, cut at its commas (numbers
    have none); None if the cut does not give one text per value."""
    out: list[list[str]] = [[] for _ in arrays]
    by_dtype: dict[np.dtype, list[int]] = {}
    for i, a in enumerate(arrays):
        if len(a):
            by_dtype.setdefault(a.dtype, []).append(i)
    for idx in by_dtype.values():
        both = np.concatenate([arrays[i] for i in idx])
        texts = pd.Series(both, copy=False).to_json(orient="values", **_JSON_ARGS)[1:-1].split(",")
        if len(texts) != len(both):
            return None
        lo = 0
        for i in idx:
            out[i] = texts[lo:lo + len(arrays[i])]
            lo += len(arrays[i])
    return out


def _json_keyed(key: str, texts: list[str]) -> list[str]:
    """``key`` + each text (texts without NUL: one join and one split instead of a concatenation
    per text)."""
    return (key + ("\x00" + key).join(texts)).split("\x00") if texts else []


def _json_texts(values: list, key: str, clean: bool) -> list[str] | None:
    """``key`` + pandas' JSON text of each string of ``values`` (cells or distinct values of a
    text column), None when one is no ``str``. One join of them tells: printable ASCII but '"',
    '\\', '/' (nothing to escape) is put between quotes as it is; else, with ``clean`` (an
    object column: the table's text is :func:`clean_utf8`'s) and not all encodable as UTF-8,
    each is cleaned, and the texts are :func:`_json_strings`."""
    try:
        joined = "\x00".join(values)
    except TypeError:
        return None
    if joined.isascii() and len(joined) - len(joined.encode("ascii").translate(None, _JSON_SPECIAL_BYTES)) \
            == len(values) - 1:  # only the NULs put in
        return (f'{key}"' + joined.replace("\x00", f'"\x00{key}"') + '"').split("\x00")
    if clean:
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            values = [clean_utf8(v) for v in values]
    return _json_keyed(key, _json_strings(values))


class _JsonRun:
    """Adjacent columns that take few distinct values, made one text per row: each row's
    combination of values is a number (the columns' codes in mixed radix), the text is made once
    per distinct combination. :meth:`add` a column's codes and texts, :meth:`cells` the texts."""

    #: combinations beyond which the codes are numbered again from 0 (int64 holds 2**63 - 1)
    MAX = 2 ** 62

    def __init__(self) -> None:
        self.columns: list[tuple[np.ndarray, np.ndarray]] = []  # (codes, texts)
        self.combined: np.ndarray | None = None
        self.size = 1

    def add(self, codes: np.ndarray, texts: np.ndarray) -> None:
        """One more column: ``codes`` (int, per row, index into ``texts``) and ``texts`` (its
        distinct values' JSON texts)."""
        if self.columns and self.size * len(texts) > self.MAX:  # after _compact, size <= the rows
            self._compact()
        self.combined = codes.astype(np.int64) if self.combined is None else self.combined * len(texts) + codes
        self.size *= len(texts)
        self.columns.append((codes, texts))

    def _compact(self) -> None:
        """The combinations seen, numbered 0..k-1, with their texts: the run's one column."""
        codes, seen = pd.factorize(self.combined)
        parts = []
        for _, texts in reversed(self.columns):
            seen, digit = np.divmod(seen, len(texts))
            parts.append(texts[digit].tolist())
        texts = np.array(list(map("".join, zip(*parts[::-1]))), dtype=object)
        self.columns = [(codes, texts)]
        self.combined = codes.astype(np.int64)
        self.size = len(texts)

    def cells(self) -> list[str]:
        """The text of each row: its combination's."""
        if len(self.columns) > 1:
            self._compact()
        codes, texts = self.columns[0]
        return texts[codes].tolist()


#: the first rows of a column: when nearly all (3/4) differ, its texts are made cell by cell
_JSON_SAMPLE = 256


def _json_factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values)``: (codes, distinct values in order of first appearance; -1 for a
    missing value). For a text column starting with a ``str``, only the cells that differ from
    the first are hashed (most text columns hold one value in most rows, often all); one
    holding only ``str`` is coded by :func:`~kscc_traffic.classify._str_codes` (compiled)."""
    first = values[0] if len(values) and values.dtype == object else None
    if not isinstance(first, str):
        return pd.factorize(values)
    found = _str_codes(values)
    if found is not None:
        return found
    # (compared as a Python object: numpy would make ``first`` a numpy string, which drops
    # trailing NULs, so that "\x00" and "" compare equal)
    probe = np.empty((), dtype=object)
    probe[()] = first
    try:
        other = np.asarray(values != probe, dtype=bool)
    except (TypeError, ValueError):  # (a cell whose comparison is no bool: an array…)
        return pd.factorize(values)
    codes = np.zeros(len(values), np.int64)
    if not other.any():
        return codes, values[:1].copy()
    c, u = pd.factorize(values[other])
    codes[other] = np.where(c >= 0, c + 1, -1)
    distinct = np.empty(len(u) + 1, dtype=object)
    distinct[0] = first
    distinct[1:] = np.asarray(u, dtype=object)
    return codes, distinct


def _json_pieces(columns: list[tuple[np.ndarray, str, str, bool]]) -> list[list[str]] | None:
    """The texts each row is the join of, for the slices of the table's ``(values, kind, key,
    clean)`` columns (:func:`_json_texts` for ``clean``): one per run of adjacent columns of few
    distinct values (at most a quarter of the rows; :class:`_JsonRun`), one per other column
    (made once per distinct value, or cell by cell for floats and for columns whose first rows
    nearly all differ); the numbers of all columns encoded together (:func:`_json_numbers`).
    None when a cell of a text column is no ``str`` (a missing value…) or pandas' text of the
    numbers cannot be cut (:func:`_json_numbers`)."""
    n = len(columns[0][0])
    coded: list[tuple[np.ndarray | None, list | np.ndarray]] = []  # (codes or None, distinct or cells)
    for values, kind, _, _ in columns:
        if kind == "bool":
            coded.append((values.astype(np.intp), [False, True]))
            continue
        try:
            if kind == "float" or len(set(values[:_JSON_SAMPLE].tolist())) > _JSON_SAMPLE * 3 // 4:
                coded.append((None, values))
                continue
            codes, distinct = _json_factorize(values)
        except TypeError:  # unhashable cells (lists, dicts…) in a text column
            return None
        if len(codes) and codes.min() < 0:  # missing values (None, NaN…) in a text column
            return None
        coded.append((codes, distinct))
    encoded = _json_numbers([v for (_, v), (_, kind, _, _) in zip(coded, columns) if kind in ("int", "float")])
    if encoded is None:
        return None
    numbers = iter(encoded)
    pieces: list[list[str]] = []
    run = _JsonRun()
    for (codes, v), (_, kind, key, clean) in zip(coded, columns):
        if kind == "bool":
            texts = [key + "false", key + "true"]
        elif kind != "text":
            texts = _json_keyed(key, next(numbers))
        else:
            texts = _json_texts(v.tolist(), key, clean)
            if texts is None:
                return None
        if codes is not None and len(texts) <= max(n // 4, 2):
            run.add(codes, np.array(texts, dtype=object))
            continue
        if run.columns:
            pieces.append(run.cells())
            run = _JsonRun()
        pieces.append(texts if codes is None else np.array(texts, dtype=object)[codes].tolist())
    if run.columns:
        pieces.append(run.cells())
    return pieces


def _json_lines(pieces: list[list[str]]) -> str:
    """The JSON Lines text of rows made of ``pieces`` (lists of texts, one text per row each,
    all of one length): each row the join of its texts, then ``}\\n``. One join of one list
    holding the texts row by row (filled by a slice assignment per piece, in C), not a tuple and
    a join per row."""
    n, k = len(pieces[0]), len(pieces) + 1
    flat: list[str] = ["}\n"] * (n * k)
    for i, texts in enumerate(pieces):
        flat[i::k] = texts
    return "".join(flat)


def _write_jsonl_columns(flows: pd.DataFrame, out: IO[str]) -> bool:
    """pandas' JSON Lines text of ``flows`` with :func:`clean_utf8` text, made column by column
    (see above), ``_CHUNK_ROWS`` rows at a time (a slice with a text cell that is no ``str``
    written by pandas, the same text); False, nothing written, for a table with a column of
    another kind, no column, or column names that are not unique text."""
    names = flows.columns.tolist()
    if not names or not all(isinstance(c, str) for c in names) or len(set(names)) != len(names) \
            or not _json_ok():
        return False
    dtypes = flows.dtypes.tolist()
    kinds = [_json_column_kind(d) for d in dtypes]
    if None in kinds:
        return False
    keys = _json_keys(tuple(names))
    if keys is None:
        return False
    clean = [d == object for d in dtypes]
    # (the numpy columns as views of the frame's blocks, without a Series each: ~35 µs a column;
    # another dtype, pandas' ``str``, as its Series)
    arrays = arrays_of(flows, [c for c, d in zip(names, dtypes) if isinstance(d, np.dtype)])
    columns = [arrays[c] if c in arrays else flows[c] for c in names]
    for lo in range(0, len(flows), _CHUNK_ROWS):
        pieces = _json_pieces([(c[lo:lo + _CHUNK_ROWS] if isinstance(c, np.ndarray)
                                else c.iloc[lo:lo + _CHUNK_ROWS].to_numpy(dtype=object), kind, key, cl)
                               for c, kind, key, cl in zip(columns, kinds, keys, clean)])
        if pieces is None:
            _write_jsonl_pandas(_clean_frame(flows.iloc[lo:lo + _CHUNK_ROWS]), out)
        else:
            write_all(out, _json_lines(pieces))
    return True


@functools.cache
def _csv_ok() -> bool:
    """Does ``csv.writer`` leave cells without :data:`_CSV_SPECIAL` characters as they are?"""
    probe = _CSV_SPECIAL.sub("", "".join(map(chr, [*range(0xD800), *range(0xE000, 0x10000), 0x1F600])))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([probe, probe[::-1], "", "'=x", 1, -2, 0.5, True])
    return buf.getvalue() == f"{probe},{probe[::-1]},,'=x,1,-2,0.5,True\n"


def _text_values(s: pd.Series) -> np.ndarray | None:
    """The cells of an object or pandas text (``str``) column as an object array when they are all
    ``str`` (no missing value), else None."""
    if s.dtype == object:
        values = s.to_numpy()
    elif isinstance(s.dtype, pd.StringDtype):
        values = s.to_numpy(dtype=object)
    else:
        return None
    return values if pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty") else None


def _csv_cell(writer, buf: io.StringIO, value: str) -> str:
    """The text ``csv.writer`` writes for one cell (quoted when needed)."""
    buf.seek(0)
    buf.truncate()
    writer.writerow([value, "x"])
    return buf.getvalue()[:-3]


def _csv_text_column(values: list[str]) -> list[str]:
    """Each cell of a text column as :func:`_write_csv_rows` writes it: :func:`escape_csv`, then
    quoted when needed."""
    lines = "\n" + "\n".join(values)
    try:
        data = lines.encode("utf-8")
        # every byte < 0x80 of UTF-8 is that ASCII character: only the n newlines put in are special
        plain = len(data) - len(data.translate(None, _CSV_SPECIAL_BYTES)) == len(values) \
            and not any(c in lines and f"\n{c}" in lines for c in _FORMULA_START + tuple(_CELL_SPACES))
    except UnicodeEncodeError:
        plain = False
    if plain:
        return values
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    codes, uniques = pd.factorize(np.array(values, dtype=object))
    cells = np.empty(len(uniques), dtype=object)
    for i, u in enumerate(uniques.tolist()):
        u = escape_csv(u)
        cells[i] = _csv_cell(w, buf, u) if _CSV_SPECIAL.search(u) else u
    return cells[codes].tolist()


def _csv_number_column(s: pd.Series) -> list[str] | None:
    """Each cell of a bool, integer or float column as :func:`_write_csv_rows` writes it
    (``str``; a float as :func:`_csv_float_texts`); None for other dtypes."""
    kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else ""
    if kind == "b":
        return np.array(["False", "True"], dtype=object)[s.to_numpy().astype(np.intp)].tolist()
    if kind in ("i", "u"):  # pandas' JSON text of an integer is its decimal digits, as str()
        return s.to_json(orient="values")[1:-1].split(",") if len(s) else []
    if kind == "f":
        return _csv_float_texts(s)
    return None


def _write_csv_fast(flows: pd.DataFrame, out: IO[str]) -> bool:
    """:func:`_write_csv_rows`, faster (see above); False, nothing written, when the table has a
    column it does not handle or a single column (csv writes a row of one empty cell as ``""``)."""
    n, k = flows.shape
    if k < 2 or not _csv_ok():
        return False
    cells = []
    for j in range(k):
        s = flows.iloc[:, j]
        values = _text_values(s)
        c = _csv_text_column(values.tolist()) if values is not None else _csv_number_column(s)
        if c is None:
            return False
        cells.append(c)
    csv.writer(out, lineterminator="\n").writerow(list(flows.columns))
    for lo in range(0, n, _CHUNK_ROWS):
        rows = zip(*(c[lo:lo + _CHUNK_ROWS] for c in cells))
        write_all(out, "\n".join(map(",".join, rows)) + "\n")
    return True


def write_jsonl(flows: pd.DataFrame, out: IO[str]) -> None:
    """One JSON object per flow, all columns, UTF-8 (undecodable bytes as ``\\xNN`` text).

    The text is pandas' ``DataFrame.to_json(orient="records", lines=True, force_ascii=False,
    double_precision=6, date_unit="ns")`` of the table with :func:`clean_utf8` text: floats
    (``ts``, ``duration``, seconds) rounded to the microsecond, at most 6 decimals without
    trailing zeros (Zeek writes a fixed 6: the same numbers) (``ts_ns`` is the
    exact time). Made column by column (:func:`_write_jsonl_columns`) when the table allows it,
    else by pandas ``_CHUNK_ROWS`` rows at a time; the same text either way."""
    if len(flows) and not _write_jsonl_columns(flows, out):
        _write_jsonl_pandas(_clean_frame(flows), out)


def write_csv(flows: pd.DataFrame, out: IO[str]) -> None:
    """CSV with a header row; formula-looking cells neutralised (:func:`escape_csv`).

    The text is that of ``csv.writer`` (line terminator ``\\n``) given each row with
    :func:`escape_csv` applied to every cell, except that the floats (``ts``, ``duration``,
    seconds) are written as in JSON Lines (:func:`_csv_float_texts`: to the microsecond, at most 6
    decimals), so both exports hold the same values."""
    if not _write_csv_fast(flows, out):
        _write_csv_rows(flows, out)


#: reasons of ``unexpected`` flows that are not the purpose's own traffic: a name outside the
#: rule's mask (another service on a shared port such as 443), the documented port on the side
#: that opened the connection (a source port the OS or a NAT picked in the range, or a server
#: connecting back). They do not undo a verified purpose, and the firewall is not the fix
NOT_THIS_PURPOSE = ("host_mismatch", "wrong_direction")
#: ``app_protocol`` of the rules whose traffic is TLS: their ok flows verify them only when one
#: carried a byte (a bare TCP handshake shows the port open, not the TLS: "port open")
TLS_PROTOCOLS = ("tls", "https")
#: servers of the closed flows (:func:`_readiness_row`'s ``closed_at``) kept per purpose
MAX_CLOSED_AT = 8
#: how the text outputs (the per-purpose table, "What to change", the flagged flows) name a flow no
#: purpose applies to (an empty ``purpose``; the CSV/JSON cell stays empty): one label, as the
#: README's guide says (newcomer 33 F5)
NO_PURPOSE = "(none)"
#: what a blocked flow's detail holds when its lost bytes look like a path-MTU black hole
#: (:data:`kscc_traffic.inspect.MTU_HINT`: full-size segments never acknowledged, later ones were)
MTU_HOLE = "full-size segments lost, a path-MTU black hole?"
#: the advice for flows whose TLS failed on such lost segments, or whose detail tells of a path-MTU
#: error (ICMP 3/4, ICMPv6 packet too big) that reached the capture point while the sender still sent
#: packets as large (:data:`kscc_traffic.unreachable.TOO_BIG_IGNORED`, newcomer 33 F2): not an
#: inspecting proxy (:func:`mtu_holed`). RFC 4890 is ICMPv6's filtering; IPv4's is RFC 1191
MTU_FIX = ("full-size packets were lost on the way (a path-MTU black hole: smaller ones arrived, or the "
           "path's ICMP 'fragmentation needed'/'packet too big' was ignored, or the IP fragments of larger ones "
           "never all arrived; see each flow's detail): let "
           "ICMPv6 packet too big (type 2) and ICMP fragmentation needed (type 3 code 4) through every "
           "firewall on the path and the client's own (IPv6: RFC 4890 §4.3.1, RFC 8201; IPv4: RFC 1191), "
           "and IP fragments where the path fragments, "
           "or lower the MTU / clamp the TCP MSS on the tunnel or link that is smaller")


#: how the detail of a TLS session whose ClientHello the server left unanswered starts
#: (:func:`kscc_traffic.classify._judge_flow`'s silence texts)
HELLO_UNANSWERED = "ClientHello not answered: no byte from the server"

#: what the advice says of TLS sessions whose ClientHello the server acknowledged, then sent nothing
#: (:func:`hello_acked`; newcomer s63 #5: an MTU black hole was advised as TLS inspection alone)
HELLO_ACKED_FIX = ("the server acknowledged the ClientHello, then none of its answer arrived (see each flow's "
                   "detail): its first full-size packets (the ServerHello and certificate) lost on the way, a "
                   "path-MTU black hole (let ICMP fragmentation needed, type 3 code 4, and ICMPv6 packet too big "
                   "through, or lower the MTU / clamp the TCP MSS on a smaller tunnel or link: a VPN, PPPoE), or a "
                   "proxy, TLS inspection or an application-aware firewall dropping the answer")


def hello_acked(detail: str, reason: str, history: str) -> bool:
    """Whether a blocked flow (its ``detail``, ``reason``, Zeek ``history`` texts) is a TLS session
    whose ClientHello got no byte back (:data:`HELLO_UNANSWERED`) though the server acknowledged
    data (the responder's ``a`` in ``history``: the ClientHello arrived, the answer did not):
    advised :data:`HELLO_ACKED_FIX` when every blocked flow of the purpose is one."""
    return (str(reason).split(",")[0] == "tls_failed" and str(detail).startswith(HELLO_UNANSWERED)
            and "a" in history_core(str(history)))


def mtu_holed(detail: str, reason: str, icmp: str = "") -> bool:
    """Whether a blocked flow's ``detail`` (str) and ``reason`` (str, the first of a comma list
    counts) tell of a path-MTU black hole its TLS failed on: reason ``tls_failed`` with the hint
    :data:`MTU_HOLE`, data that came only as IP fragments never captured whole
    (:data:`~kscc_traffic.classify.FRAGS_LOST`, a fragment reassembly timeout of the
    destination's: :data:`~kscc_traffic.unreachable.REASSEMBLY_NOTE`) or a path-MTU error ignored
    (:data:`TOO_BIG_IGNORED`): the latter two read from
    its ``icmp_unreachable`` text ``icmp`` (:func:`kscc_traffic.unreachable.too_big_note` of it, as
    the detail says it; not the words alone, which a name quoted in the detail could hold);
    advised :data:`MTU_FIX`."""
    detail = str(detail)
    if str(reason).split(",")[0] != "tls_failed":
        return False
    icmp = icmp if isinstance(icmp, str) else ""
    return MTU_HOLE in detail or FRAGS_LOST in detail or any(
        note and note in detail for note in (too_big_note(icmp), reassembly_note(icmp)))


#: how many kinds :func:`cert_counts` counts (the length of its tuple, ``bl_cert``)
CERT_KINDS = 9
#: ``bl_cert`` counting none
NO_CERTS: tuple[int, ...] = (0,) * CERT_KINDS


def other_server(detail: str) -> bool:
    """Whether a ``tls_failed`` flow's ``detail`` (str) is that of a handshake aborted on a
    certificate for another name than the one asked, from no TLS-inspection product's CA
    (:func:`kscc_traffic.classify.other_server_text`: it starts ``certificate for`` and says
    :data:`~kscc_traffic.classify.OTHER_SERVER`)."""
    return detail.startswith("certificate for ") and OTHER_SERVER in detail


def cert_counts(details, reasons) -> tuple[int, ...]:
    """Of blocked flows (their ``detail`` and ``reason`` texts, two equal-length sequences), how
    many ``tls_failed`` ones the client ended on the server's own certificate from a public CA
    (detail :data:`~kscc_traffic.classify.UNTRUSTED_PUBLIC`), how many on a certificate TLS 1.3
    hid (detail holding :data:`~kscc_traffic.classify.TLS13_HIDDEN`), the capture did not keep
    (:data:`~kscc_traffic.classify.CERT_UNSEEN`; past what is inspected:
    :data:`~kscc_traffic.classify.CERT_UNREAD`) or the capture of the client's
    side only did not show (:data:`~kscc_traffic.classify.ONE_WAY_CERT`), how many the server ended
    after asking for a client certificate in cleartext (TLS <= 1.2: detail holding
    :data:`~kscc_traffic.classify.CLIENT_CERT_ASKED`) and how many it ended as one requiring a
    client certificate does where the request is not seen (TLS 1.3: detail holding
    :data:`~kscc_traffic.classify.CERT_REQUIRED`), and how many the client ended on a distribution
    point's certificate that is not the one it keeps (detail holding
    :data:`~kscc_traffic.classify.PINNED_REFUSED` or :data:`~kscc_traffic.classify.PINNED_SILENT`):
    how many the client ended on a certificate for another name than the one asked from no
    TLS-inspection product's CA (:func:`other_server`: another server answered) and how many the
    server's side ended accepting none of the TLS versions offered (detail holding ``": "`` and
    :data:`~kscc_traffic.classify.VERSION_REFUSED`), how many none of the cipher suites,
    groups or signature algorithms offered (``": "`` and :data:`~kscc_traffic.classify.SUITES_REFUSED`)
    where the offer was not seen to be a current one, and how many such though it was (also
    :data:`~kscc_traffic.classify.OFFER_CURRENT_SAID`):
    ``(public, hidden, client, client_hidden, pinned, other, versions, suites, suites_current)``
    (:data:`CERT_KINDS` of them), for :func:`cert_fix` (break-it net 33 F6, newcomer 36 F3, s55 dp
    #3, real s57 #4 and #7, newcomer s58 #2: such flows were advised as a proxy's TLS inspection;
    newcomer s59 #3: a current offer advised as the agent's TLS policy first)."""
    public = hidden = client = client_hidden = pinned = other = versions = suites = suites_current = 0
    for d, r in zip(details, reasons):
        if str(r).split(",")[0] != "tls_failed":
            continue
        d = str(d)
        if CLIENT_CERT_ASKED in d:
            client += 1
        elif CERT_REQUIRED in d:
            client_hidden += 1
        elif d.startswith(UNTRUSTED_PUBLIC):
            public += 1
        elif PINNED_REFUSED in d or PINNED_SILENT in d:
            pinned += 1
        elif TLS13_HIDDEN in d or ONE_WAY_CERT in d or CERT_UNSEEN in d or CERT_UNREAD in d:
            hidden += 1
        elif other_server(d):
            other += 1
        elif f": {VERSION_REFUSED}" in d:
            versions += 1
        elif f": {SUITES_REFUSED}, {OFFER_CURRENT_SAID} (" in d:
            suites_current += 1
        elif f": {SUITES_REFUSED}" in d:
            suites += 1
    return public, hidden, client, client_hidden, pinned, other, versions, suites, suites_current


#: what the advice says to check of a server that requires a client certificate and refused the
#: agent's (none sent, or one it does not trust): :func:`cert_fix`
CLIENT_CERT_FIX = ("check the agent's own certificate (have it re-issued, or reinstall the agent so that it gets "
                   "a new one) and the server's client-certificate requirement (the CA it trusts for its clients)")


def cert_fix(r, bl_cert: tuple[int, ...], alone: bool = False) -> str:
    """The advice for blocked ``tls_failed`` flows ended on a certificate (``bl_cert``,
    :func:`cert_counts`; rule ``r`` for its host mask): the agent's root certificates and clock
    for a public CA's certificate the client refused, both those and TLS inspection for one TLS
    1.3 hid; the agent's own certificate (:data:`CLIENT_CERT_FIX`) when the server asked for a
    client certificate and refused the client's answer, not TLS inspection where the request was
    seen (TLS <= 1.2), and TLS inspection as well where TLS 1.3 hid it (a TLS-inspecting proxy
    cannot present the agent's certificate). Each kind's part starts with how many flows it is
    about ("2 of them: ") unless ``alone`` (they are all the blocked flows, of one kind); '' when
    ``bl_cert`` counts none. A certificate for another name from no inspection product's CA: where
    the name leads and which server answered (:data:`OTHER_SERVER_FIX`); the server's side
    accepting none of the TLS versions offered: the agent's TLS settings or an old device answering
    in the server's place (:data:`VERSION_FIX`); none of the cipher suites, groups or signature
    algorithms offered: the agent's TLS policy (a cipher-suite GPO, FIPS mode) or such a device
    (:data:`SUITES_FIX`), such a device first where the agent's offer was a current one
    (:data:`SUITES_CURRENT_FIX`)."""
    public, hidden, client, client_hidden, pinned, other, versions, suites, suites_current = \
        (tuple(bl_cert) + NO_CERTS)[:CERT_KINDS]
    alone = alone and sum(1 for x in (public, hidden, client, client_hidden, pinned, other, versions, suites,
                                      suites_current) if x) == 1
    mask = r.host_mask or "the documented servers"
    roots = ("check the agent's root certificates (DigiCert Global Root G2 among them, for the cloud's DigiCert "
             "certificates) and its system time; the page documents TCP 80 to *.digicert.com for checking the "
             "certificates' validity (CRL, OCSP): allow it too")
    parts = []
    if public:
        parts.append(("" if alone else f"{public} of them: ") + "the client refused the server's own certificate, "
                     f"from a public CA (see each flow's detail): {roots}")
    if hidden:
        parts.append(("" if alone else f"{hidden} of them: ") + "the client refused the server's certificate, "
                     "which TLS 1.3 hides or the capture lacks (see each flow's detail): if a TLS-inspecting proxy "
                     "is in the path, "
                     f"exclude {mask} from inspection; else {roots}")
    if pinned:
        parts.append(("" if alone else f"{pinned} of them: ") + "the client refused the server's certificate as "
                     "not the one it keeps for its Administration Server (see each flow's detail): give the agent "
                     "this server's certificate (reinstall it from this Administration Server's installation "
                     "package, or klmover -address <server> -cert <its certificate>): the distribution point's or "
                     "the server's certificate was reissued or replaced since, or the agent was set up for another "
                     "Administration Server; if a TLS-inspecting device sits between the agent and the distribution "
                     "point, exclude their connections from inspection; not the firewall")
    if client:
        parts.append(("" if alone else f"{client} of them: ") + "the server requires a client certificate and "
                     "refused the agent's (none sent, or one it does not trust; its CertificateRequest seen, see "
                     f"each flow's detail): {CLIENT_CERT_FIX}; not the firewall, nor TLS inspection")
    if client_hidden:
        parts.append(("" if alone else f"{client_hidden} of them: ") + "the server refused the client as one that "
                     "requires a client certificate does (certificate_required; see each flow's detail): "
                     f"{CLIENT_CERT_FIX}; TLS 1.3 hides the request and the agent's answer: if a TLS-inspecting "
                     f"proxy is in the path, it cannot present the agent's certificate: exclude {mask} from inspection")
    if other:
        parts.append(("" if alone else f"{other} of them: ") + OTHER_SERVER_FIX.format(mask=mask))
    if versions:
        parts.append(("" if alone else f"{versions} of them: ")
                     + (VERSION_FIX_DP if r.opener == PINNED_OPENER else VERSION_FIX.format(mask=mask)))
    if suites:
        parts.append(("" if alone else f"{suites} of them: ")
                     + (SUITES_FIX_DP if r.opener == PINNED_OPENER else SUITES_FIX.format(mask=mask)))
    if suites_current:
        parts.append(("" if alone else f"{suites_current} of them: ")
                     + (SUITES_CURRENT_FIX_DP if r.opener == PINNED_OPENER else SUITES_CURRENT_FIX.format(mask=mask)))
    return "; ".join(parts)


#: the advice for a TLS handshake the client aborted on a certificate for another name, from no
#: TLS-inspection product's CA (:func:`other_server`): another server answered ({mask}: the rule's
#: host mask); break-it real s57 #4
OTHER_SERVER_FIX = ("the server that answered presented a certificate for another name (see each flow's detail): "
                    "most likely the agent reached another server than the one it asked for ({mask}), not a "
                    "TLS-inspecting proxy (which presents a certificate for the name asked): check what the name "
                    "resolves to on the agent (its DNS server's answer, the hosts file) and which server answers at "
                    "that address (a NAT or port forward to another host, a load balancer's default certificate, a "
                    "captive portal or block page)")
#: the advice for a TLS handshake the server's side ended accepting none of the TLS versions the
#: agent offered (detail :data:`~kscc_traffic.classify.VERSION_REFUSED`); break-it real s57 #7
VERSION_FIX = ("the server's side accepted none of the TLS versions the agent offered (see each flow's detail): "
               "check the agent's TLS settings (TLS 1.2 and 1.3 enabled: a policy or registry setting may disable "
               "them, an old operating system may lack them), then any proxy or firewall answering in the server's "
               "place with other TLS versions (an old one: update it, or let the agent's TLS to {mask} through "
               "it uninspected)")
#: the advice for a TLS handshake the server's side ended accepting none of the cipher suites, groups
#: or signature algorithms the agent offered (detail :data:`~kscc_traffic.classify.SUITES_REFUSED`):
#: the agent's TLS policy first, as the detail says (newcomer s58 #2: the advice was a proxy's TLS
#: inspection alone)
SUITES_FIX = ("the server's side accepted none of the cipher suites, key-exchange groups or signature algorithms "
              "the agent offered (see each flow's detail): check the agent's TLS settings (a cipher-suite policy "
              "(GPO) or FIPS mode restricting them, an old operating system lacking current ones), then any proxy "
              "or firewall answering in the server's place (an old one: update it, or let the agent's TLS to "
              "{mask} through it uninspected)")
#: ... on a distribution point's port (the server is the network's own Network Agent)
SUITES_FIX_DP = ("the distribution point accepted none of the cipher suites, key-exchange groups or signature "
                 "algorithms the agent offered (see each flow's detail): check both devices' TLS settings (a "
                 "cipher-suite policy (GPO) or FIPS mode on one of them), update the older of the two Network Agents, "
                 "and check any device between that answers in the distribution point's place")
#: ... where the agent's ClientHello was a current, unrestricted offer (detail
#: :data:`~kscc_traffic.classify.OFFER_CURRENT_SAID`, :func:`kscc_traffic.protocols.tls.offer_text`):
#: what answered in the server's place first, the agent's policy the unlikely cause (newcomer s59 #3)
SUITES_CURRENT_FIX = ("the server's side accepted none of the cipher suites, key-exchange groups or signature "
                      "algorithms the agent offered, though its offer was a current one, which any current server "
                      "accepts (see each flow's detail): look first at what answered in the server's place, an old "
                      "proxy, firewall or TLS-inspecting device (update it, or let the agent's TLS to {mask} through "
                      "it uninspected) or another server at that address; the agent's TLS settings are the unlikely "
                      "cause")
#: ... on a distribution point's port: the distribution point's side (its TLS policy, an old Network
#: Agent there) or a device between, not this agent's settings
SUITES_CURRENT_FIX_DP = ("the distribution point accepted none of the cipher suites, key-exchange groups or "
                         "signature algorithms the agent offered, though its offer was a current one (see each "
                         "flow's detail): check the distribution point's side (a cipher-suite policy (GPO) or FIPS "
                         "mode there, an old Network Agent: update it) and any device between that answers in its "
                         "place; the agent's own TLS settings are the unlikely cause")
#: ... on a distribution point's port (:data:`~kscc_traffic.classify.PINNED_OPENER`: the server is the
#: network's own, an old Network Agent there refusing a newer agent's versions, or the other way round)
VERSION_FIX_DP = ("the distribution point accepted none of the TLS versions the agent offered (see each flow's "
                  "detail): update the older of the two Network Agents (the distribution point's or this one), and "
                  "check the agent's TLS settings (TLS 1.2 and 1.3 enabled) and any device between that answers in "
                  "the distribution point's place")


#: how the ``icmp_unreachable`` detail of a router that cannot deliver reads (ICMP network/host
#: unreachable or unknown, also for TOS: 3/0, 3/1, 3/6, 3/7, 3/11, 3/12; ICMPv6 no route 1/0 and
#: address unreachable 1/3): routing, an ARP/neighbour failure, an upstream outage (newcomer 23 F13)
ROUTE_ICMP = re.compile(r"by ICMP (?:(?:network|host) unreachable(?: for TOS)?|destination (?:network|host) "
                        r"unknown) \(3/\d+\)|by ICMP (?:no route to destination \(1/0\)|address unreachable "
                        r"\(1/3\))")
#: the sender of such an error in a detail (``… (1/3) from 2001:db8::10``)
_ROUTE_FROM = re.compile(f"(?:{ROUTE_ICMP.pattern}) from ([^\\s,;()]+)")
#: what the advice says of such an error sent from the flow's server's own address: no router
#: speaks for a destination it cannot reach in that destination's name; a reject rule does
#: (``ip6tables -j REJECT --reject-with icmp6-addr-unreachable``, ``nft reject with icmpv6 type
#: no-route``: the server's host firewall, or one on the path answering in its name)
ROUTE_OWN = ("from the server's own address: not a router that cannot deliver (a router answers from its own "
             "address) but a reject rule answering in the server's name (its host firewall, or a firewall on "
             "the path)")


def icmp_said(detail, icmp) -> str:
    """What a flow's ``detail`` (str) says of the flow's own ICMP error, read from its
    ``icmp_unreachable`` column (``icmp``, str; anything else is none): ``by ICMP <error>`` (the
    error that says the datagram did not arrive, :func:`kscc_traffic.unreachable.delivery_error`)
    when the detail says exactly that (as classify writes it: ``answered by ICMP …``, ``its data was
    answered by ICMP …``), else ''. The report's ICMP advice reads this, never the whole detail,
    which quotes names from the packets (an SNI, a DNS name) that could hold such words."""
    text = delivery_error(icmp) if isinstance(icmp, str) and icmp else ""
    said = f"by ICMP {text}" if text else ""
    return said if said and said in str(detail) else ""


def icmp_column(flows: pd.DataFrame) -> list:
    """The ``icmp_unreachable`` values of ``flows`` (a list; '' each without the column)."""
    return flows["icmp_unreachable"].tolist() if "icmp_unreachable" in flows else [""] * len(flows)


def port_unreachable(details, icmp) -> tuple[np.ndarray, np.ndarray]:
    """Of flows (``detail`` texts and ``icmp_unreachable`` texts, two equal-length sequences):
    which were judged on a port unreachable from the destination itself (bool array: the detail
    begins as :func:`kscc_traffic.unreachable.answered_by` writes it, with
    :data:`~kscc_traffic.unreachable.NOT_LISTENING`, also after ``DNS query ``), and which on one
    carrying a cloud server's own address (bool array: the detail begins with its
    :data:`~kscc_traffic.unreachable.CLOUD_FORGED` form): ``(closed, forged)``. Decided by the
    ``icmp_unreachable`` column, the detail only compared with what classify writes from it at its
    start: a name from the packets quoted in a detail, holding those words, counts for neither."""
    details, icmp = list(details), list(icmp)
    closed, forged = np.zeros(len(details), bool), np.zeros(len(details), bool)
    for i, (d, x) in enumerate(zip(details, icmp)):
        text = delivery_error(x) if isinstance(x, str) and x else ""
        if not text.endswith(FROM_DESTINATION):
            continue
        d = str(d)
        own = answered_by(text)
        closed[i] = d.startswith(own) or d.startswith("DNS query " + own)
        forged[i] = d.startswith(answered_by(text, True)) and not OWN_TTL_RX.search(text)
    return closed, forged


def cloud_refusals(details, icmp) -> np.ndarray:
    """Of flows (``detail`` texts and ``icmp_unreachable`` texts, two equal-length sequences): which
    were judged on a port unreachable carrying a cloud server's own address that came with that
    server's own TTL (hop limit) (bool array: the ``icmp_unreachable`` text has
    :data:`~kscc_traffic.unreachable.OWN_TTL_RX`, the detail begins with its
    :data:`~kscc_traffic.unreachable.CLOUD_OWN` form): the cloud server's own refusal, not one
    :func:`port_unreachable` counts as forged."""
    details, icmp = list(details), list(icmp)
    out = np.zeros(len(details), bool)
    for i, (d, x) in enumerate(zip(details, icmp)):
        text = delivery_error(x) if isinstance(x, str) and x else ""
        if text.endswith(FROM_DESTINATION) and OWN_TTL_RX.search(text):
            out[i] = str(d).startswith(answered_by(text, True))
    return out


def route_counts(details, servers, icmp=None) -> tuple[int, int]:
    """Of blocked flows' ``details`` (their servers, ``resp_h``, in ``servers``, their
    ``icmp_unreachable`` texts in ``icmp``, same order; None: no such column, nothing counted):
    how many tell of an ICMP network/host/address unreachable or no route (:data:`ROUTE_ICMP`)
    from another address than the server's (a router: routing), and how many from the server's
    own address (:data:`ROUTE_OWN`: a reject rule). Read from what the detail says of the flow's
    own ICMP error (:func:`icmp_said`), not from names quoted in it. (An address told in another
    spelling counts as another's.)"""
    details = list(details)
    icmp = [""] * len(details) if icmp is None else list(icmp)
    other = own = 0
    for d, h, x in zip(details, servers, icmp):
        m = _ROUTE_FROM.search(icmp_said(d, x))
        if m:
            if m.group(1) == str(h):
                own += 1
            else:
                other += 1
    return other, own



def icmp_kinds(details, icmp=None) -> dict[str, int]:
    """Of blocked flows' ``details`` (and their ``icmp_unreachable`` texts ``icmp``, same order;
    None: no such column, none counted): how many tell of an ICMP error that refuses nothing, or
    that is most likely a reject rule's in other words (protocol unreachable), per kind
    (:func:`kscc_traffic.unreachable.icmp_kind` of :func:`icmp_said`: the flow's own error as its
    detail says it, not names quoted there; kinds with none left out)."""
    details = list(details)
    icmp = [""] * len(details) if icmp is None else list(icmp)
    out: dict[str, int] = {}
    for x, e in zip(details, icmp):
        k = icmp_kind(icmp_said(x, e))
        if k:
            out[k] = out.get(k, 0) + 1
    return out


def _icmp_fix(bl: int, kinds: dict[str, int], fix: str) -> str:
    """The advice of a blocked purpose ``bl`` of whose flows were answered by ICMP errors that
    refuse nothing (``kinds``: :func:`icmp_kinds`): when they all were, those errors' advice
    (:data:`~kscc_traffic.unreachable.NOT_REFUSALS`), no port to open; else ``fix`` and theirs.
    Those most likely a reject rule's (:data:`~kscc_traffic.unreachable.REJECTS`: protocol
    unreachable) keep ``fix``, their advice said with it."""
    rejects = {k: n for k, n in kinds.items() if n and k in REJECTS}
    if rejects:
        fix = _icmp_fix(bl, {k: n for k, n in kinds.items() if k not in REJECTS}, fix)
        if len(rejects) == 1 and sum(rejects.values()) >= bl:
            return (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP "
                    f"{REJECTS[next(iter(rejects))][1]}: {REJECTS[next(iter(rejects))][3]}: {fix}")
        return fix + "".join(f"; {n} of them {'was' if n == 1 else 'were'} answered by ICMP {REJECTS[k][1]}: "
                             f"{REJECTS[k][3]}" for k, n in rejects.items())
    kinds = {k: n for k, n in kinds.items() if n and k in NOT_REFUSALS}
    total = sum(kinds.values())
    if not total:
        return fix
    if total >= bl:
        if len(kinds) == 1:
            (k, n), = kinds.items()
            return (f"{'this flow was' if n == 1 else f'these {n} flows were'} answered by ICMP "
                    f"{NOT_REFUSALS[k][1]}, not a firewall's refusal: {NOT_REFUSALS[k][3]}; no port is to be opened")
        return (f"these {bl} flows were answered by ICMP errors that are not a firewall's refusal: "
                + "; ".join(f"{n} by {NOT_REFUSALS[k][1]}: {NOT_REFUSALS[k][3]}" for k, n in kinds.items())
                + "; no port is to be opened")
    return fix + "".join(f"; {n} of them {'was' if n == 1 else 'were'} answered by ICMP {NOT_REFUSALS[k][1]} "
                         f"(not a firewall's refusal): {NOT_REFUSALS[k][3]}" for k, n in kinds.items())


#: how the detail of a plain HTTP request sent straight to the server (no proxy: port 80) and
#: refused by an HTTP answer reads (a transparent web filter's 403, a captive portal's 511, a
#: gateway's 502…; :func:`kscc_traffic.classify._proxy_refusal` with ``direct``): group 1 the status
HTTP_REFUSAL = re.compile(r"^the server \S+ answered (\d{3})\b.* to the request for \S+ \(a transparent web filter")
#: how the detail of a ClientHello answered by an HTTP redirect reads (a captive portal or web
#: filter sending the client to its page: :data:`~kscc_traffic.classify.REDIRECT_STATUSES`,
#: ``blocked``/``rejected``; directly or inside a CONNECT tunnel): group 1 the status
REDIRECT_ANSWER = re.compile(r"^the server answered HTTP (\d{3}) to (?:the ClientHello|the client's TLS-looking bytes)"
                             r"(?: inside the CONNECT tunnel)? "
                             r"where TLS is documented: (?:a redirect\b|a captive portal's answer \()")
#: how the detail of a request an explicit HTTP proxy refused or failed starts
PROXY_REFUSAL = re.compile(r"^the proxy \S+ (?:answered|closed|reset|did not answer)")

#: why a reason matters, in one sentence (the HTML report's "Why flagged"; the "what to change" of
#: a purpose whose flows were answered but are unexpected)
REASON_TEXT: dict[str, str] = {
    "no_answer": "the connection attempt met silence: a firewall drops it, or the server is unreachable",
    "rejected": "a TCP reset answered the connection attempt: a firewall rejects it, or nothing listens on the port",
    "icmp_unreachable": "a router or firewall answered with an ICMP error: destination unreachable (a refusal, "
                        "no route), time exceeded (a routing loop) or parameter problem (extension headers dropped)",
    "tls_failed": "the TLS handshake was aborted before it completed: often a proxy or TLS inspection in the way",
    "tls_intercepted": "the server certificate is not for the name asked, was issued by a TLS-inspection product's "
                       "CA, or the client rejected it as from an untrusted CA: a TLS-inspecting proxy sits in the "
                       "path; exclude these names from inspection",
    "not_tls": ("cleartext where the documentation says TLS: a proxy, another service or a filter answered "
                "instead of the documented server, or the client itself sent cleartext (not an agent's TLS: "
                "another program, or something rewriting its connection); each flow's detail says which side "
                "spoke cleartext and what it sent (a filter refusing by policy must let the agent's TLS through)"),
    "host_mismatch": "the server name is outside the documented host mask: a DNS override, or not Kaspersky's service",
    "wrong_direction": "the documented port was on the side that opened the connection",
    "undocumented_port": "a Kaspersky name contacted on a port no rule documents",
    "not_unicast": ("a TCP connection attempted to a broadcast or multicast address, which no TCP connection can be "
                    "made to (RFC 1122 §4.2.3.10): the sender uses a wrong server address; no firewall rule is the fix"),
    "partial": "the start of the connection was not captured; judged on what was seen",
    "one_way": ("only one direction of the connection was captured: the agent's packets acknowledge the server's, "
                "which are not in the capture (a mirror port or tap that sees one direction, or asymmetric routing); "
                "not judged"),
    "port_scan": ("a probe of a port scan (one originator's short attempts to 15 or more ports of one host within "
                  "5 minutes): a scanner's, not KSC traffic; not judged"),
    "wrong_source": ("the answer (a DNS answer, a SYN-ACK) came from another address than the one asked: clients "
                     "drop it (a multihomed resolver or server answering from its other address, or a redirect/NAT "
                     "rule that does not rewrite the answer's source)"),
    "dns_truncated": ("the DNS answer was truncated (too large for UDP) and no retry over TCP got an address: "
                      "DNS over TCP (port 53/TCP) to the resolver is blocked, or the client did not retry"),
    "address_scan": ("a probe of an address scan (one originator's short attempts to 25 or more hosts on one port "
                     "within 5 minutes): a scanner's, not KSC traffic; not judged"),
}

#: why a ``rejected`` flow matters, by how its detail reads (see :func:`rejected_reason_text`)
REJECTED_TEXT: dict[str, str] = {
    "http": ("an HTTP answer refused the request (403, 451, 511: a web filter, transparent proxy or captive "
             "portal refusing it by policy; 502-504: a gateway that could not reach the server); the TCP port "
             "is open"),
    "redirect": ("a redirect (301, 302, 303, 307, 308) sent the ClientHello to a captive portal's or web filter's "
                 "page, or a captive portal answered it 511 (Network Authentication Required), instead of a TLS "
                 "handshake: the agent cannot connect; authenticate this network in the portal, or exempt the "
                 "agent's traffic from the portal or filter (the TCP port is open)"),
    "proxy": "the HTTP proxy refused or failed the request (407: it wants authentication, 403: its policy denies "
             "the target)",
    "stale": ("the SYN was answered by an old connection's packets, which the agent reset: a firewall, NAT or "
              "the server holds a stale connection on that address and port"),
    "reset": REASON_TEXT["rejected"],
    "ack_only": ("the SYN was answered only by a bare ACK, never by a SYN-ACK: a firewall, IPS, DDoS filter or SYN "
                 "proxy on the way answered in the server's place and did not let the connection through"),
    "handshake": ("the TCP handshake completed (the port is open), then the server's side reset or closed the "
                  "connection before any data, or reset it after the client's request answering none of it: a SYN "
                  "proxy, load balancer or proxy with no server behind it, an application-aware firewall refusing "
                  "the traffic by its content, or a service refusing the client"),
    "path_reset": ("the connection worked, then a device on the path (a firewall or IPS) ended it with a reset in "
                   "the server's name (its TTL, IPv6 hop limit, not the server's): its policy cuts the agent's sessions"),
}


def _phrase_like(text: str) -> bool:
    """Whether a quoted name could hold a phrase the report's detail checks look for: a space in
    it (each phrase they look for has one), or ``certificate_required``
    (:data:`~kscc_traffic.classify.CERT_REQUIRED`); no host name has either."""
    return " " in text or CERT_REQUIRED in text


#: "the agent" as the flow details say it (any case of its first letter), a whole word: what
#: :func:`client_details` words as "the client" under the "No KSC agent traffic" headline
_THE_AGENT = re.compile(r"\b([Tt])he agent\b")
#: a text the details quote from the packets, in double quotes (an HTTP request's first bytes…)
_QUOTED_TEXT = re.compile(r'"(?:[^"\\]|\\.)*"')


def client_details(flows: pd.DataFrame) -> list[str]:
    """The ``detail`` texts of ``flows`` (a list, one per row, in order; '' each without the
    column) with "the agent" said "the client" ("The agent" "The client", "the agent's" "the
    client's"): what the table and HTML reports show under the "No KSC agent traffic" headline
    (:func:`no_ksc_traffic`), where the flows are other programs' (newcomer s60 #12: "the agent
    reached another server … the agent cannot connect this way" of a browser on another host).
    Names from the packets are left as they are: the flow's values of
    :data:`~kscc_traffic.classify.QUOTED_COLUMNS` that the detail quotes, and any text it quotes in
    double quotes. The flow table itself (JSON Lines, CSV) keeps its details: they carry no
    headline, and their readers may match the texts."""
    details = flows["detail"].astype(str).tolist() if "detail" in flows else [""] * len(flows)
    cols = [c for c in QUOTED_COLUMNS if c in flows]
    for i, d in enumerate(details):
        if "he agent" not in d:
            continue
        row = {c: flows[c].iat[i] for c in cols}
        kept = [m.span() for m in _QUOTED_TEXT.finditer(d)]
        for name in quoted_names(row, lambda v: "agent" in v.lower()):
            at = d.find(name)
            while at >= 0:
                kept.append((at, at + len(name)))
                at = d.find(name, at + 1)
        details[i] = _THE_AGENT.sub(
            lambda m: m.group(0) if any(a < m.end() and m.start() < b for a, b in kept)
            else f"{m.group(1)}he client", d)
    return details


def unquoted_details(flows: pd.DataFrame) -> list[str]:
    """The ``detail`` texts of ``flows`` (a list, one per row, in order; '' each without the
    column) with each value of :data:`~kscc_traffic.classify.QUOTED_COLUMNS` that could hold a phrase of the report's
    checks (a space in it, or ``certificate_required``: no host name has either) taken out where
    the detail quotes it: what the report's detail checks read (the verdict kinds the details
    tell: a failed attempt of a ``host_mismatch`` flow, a certificate request, a reset nearer
    than the server…), so that a name from the packets holding such words (an SNI, a DNS name,
    a certificate's names) changes no advice. Details quoting only host names come back as they
    are."""
    details = flows["detail"].astype(str).tolist() if "detail" in flows else [""] * len(flows)
    if not details:
        return details
    cols = [c for c in QUOTED_COLUMNS if c in flows]
    odd = np.zeros(len(details), bool)
    for c in cols:
        v = flows[c].astype(str)
        odd |= (v.str.contains(" ", regex=False) | v.str.contains(CERT_REQUIRED, regex=False)).to_numpy()
    for i in np.flatnonzero(odd).tolist():
        row = {c: flows[c].iat[i] for c in cols}
        details[i] = without_names(details[i], quoted_names(row, _phrase_like))
    return details


def refused_counts(details) -> tuple[int, int]:
    """Of blocked flows' ``details``, (those whose SYN a device nearer than the server reset,
    those the server's own reset refused): by :data:`~kscc_traffic.inspect.REFUSED_NEARER` (or
    :data:`~kscc_traffic.inspect.REFUSED_OTHER`: another initial TTL at the same distance) and
    :data:`~kscc_traffic.inspect.REFUSED_OWN` in the detail, not a distribution point's reset
    (:data:`~kscc_traffic.classify.DP_RESET`: advised as such) nor a connection going on after an
    idle time (:data:`~kscc_traffic.classify.IDLE_GOES_ON`: :func:`idle_drop_fix`) nor one begun
    before the capture whose data got only resets (:data:`~kscc_traffic.classify.SESSION_GONE`:
    :func:`stalled_fix`)."""
    details = [str(x) for x in details if not _other_reset(str(x))]
    return (sum(1 for x in details if REFUSED_NEARER in x or REFUSED_OTHER in x),
            sum(1 for x in details if REFUSED_OWN in x))


def _other_reset(detail: str) -> bool:
    """Whether a blocked flow's ``detail`` tells of a reset that refused no connection attempt the
    way :func:`refused_counts` and :class:`RefusedAccepted` count one: a distribution point's
    (:data:`~kscc_traffic.classify.DP_RESET`: advised as such), one to a connection going on after
    an idle time (:data:`~kscc_traffic.classify.IDLE_GOES_ON`: :func:`idle_drop_fix`) or to the data
    of one begun before the capture (:data:`~kscc_traffic.classify.SESSION_GONE`: :func:`stalled_fix`)."""
    return detail.startswith((DP_RESET, IDLE_GOES_ON)) or SESSION_GONE in detail


#: server endpoints (address, TCP port) a :class:`RefusedAccepted` remembers at most, accepted ones
#: and refused ones each (bounded memory: a capture's servers are few; beyond, a new endpoint is
#: not remembered and its refusals keep the port advice)
MAX_ENDPOINTS = 4096
#: what a server's own refusals of a port mean when the port accepted connections only before
#: them or only after them in the capture (the advice of :func:`_readiness_row`, after when)
RESTARTED = "the service was down or restarting"
#: ... and when it refused again and again only clients it never accepted, while it accepted others
#: between the refusals (break-it s51 scenario #5: a gateway capture of two agents)
CLIENTS_REFUSED = ("the server, or a firewall in front of it that copies its TTL, rejects these clients' address (a "
                   "source address allow list without them, or without the NAT address they leave by)")
#: the advice after :data:`CLIENTS_REFUSED`
CLIENTS_REFUSED_FIX = ("check which source addresses the server's host firewall and the firewalls or load balancer "
                       "in front of it let through to this port, and the address these clients leave by")
#: the shortest time (ns) from a client's first refusal to its last for :data:`CLIENTS_REFUSED` (a
#: burst of refusals within it, other clients accepted around it, may be a restart: review s52 #4)
CLIENTS_REFUSED_SPAN_NS = 30 * 10**9
#: clients remembered per server endpoint (accepted) and per purpose and endpoint (refused); past it
#: the endpoint's clients are not known (its refusals keep the intermittent advice)
MAX_CLIENTS = 256
#: ... and when it accepted connections between them too (the port is right: not a restart alone)
INTERMITTENT = ("the service refused some connections while it accepted others: overloaded or restarting, a "
                "load balancer in front of it with a backend that refuses, or a host firewall that rejects some "
                "clients")


#: what the detail of a distribution point's reset from another subnet says when its TTL is the
#: distribution point's own (:data:`~kscc_traffic.classify.DP_OWN_TTL`, its field left out)
DP_OWN_TTL_MARK = "is that of the distribution point's packets on other connections"


class RefusedAccepted:
    """Of the blocked flows whose SYN the server's own reset refused (detail
    :data:`~kscc_traffic.inspect.REFUSED_OWN`, as :func:`refused_counts` counts them; not a
    connection going on after an idle silence, :data:`~kscc_traffic.classify.IDLE_GOES_ON`: it
    worked before the silence, no refusal of the port), those to a
    server address and TCP port that accepted a connection in the capture (any client, any time:
    before or after the refusal, too long after it to clear it:
    :data:`~kscc_traffic.classify.REFUSED_RETRY_S`): the port is right, the service was down or
    restarting when refused (or refused some clients while accepting others). Gathered batch by
    batch in bounded memory, the same for a whole table and for the batches of a chunked reading
    (added in any order): per endpoint ``(resp_h, resp_p)`` the first and last ``ts_ns`` and the
    count of the TCP flows to it that connected (``conn_state`` of an established connection:
    ``SF``, ``S1``…; :attr:`accepted`), and per purpose and endpoint the same of such refused
    flows (:attr:`refused`); at most :data:`MAX_ENDPOINTS` endpoints each. Each also keeps the
    set of its clients (``orig_h``; ``None`` past :data:`MAX_CLIENTS` or in a table without the
    column): refusals only of clients the endpoint never accepted, while it accepted others
    between them, are said as such (:data:`CLIENTS_REFUSED`)."""

    __slots__ = ("accepted", "refused", "_n_refused")

    def __init__(self) -> None:
        #: (resp_h, resp_p) -> [first ts_ns, last ts_ns, flows, clients] of the TCP flows to it that
        #: connected (clients: set of orig_h, None when not known)
        self.accepted: dict[tuple[str, int], list] = {}
        #: purpose -> (resp_h, resp_p) -> [first ts_ns, last ts_ns, flows, clients] of its blocked
        #: flows the server's own reset refused
        self.refused: dict[str, dict[tuple[str, int], list]] = {}
        self._n_refused = 0

    @staticmethod
    def _merge(into: dict, key: tuple, lo: int, hi: int, n: int, room: bool, clients) -> bool:
        """Add ``n`` flows from ``lo`` to ``hi`` (ns) of ``clients`` (a set of orig_h, None: not
        known) to ``into[key]`` (a new key only when ``room``); whether the key is new."""
        got = into.get(key)
        if got is None:
            if not room:
                return False
            into[key] = [lo, hi, n, None if clients is None or len(clients) > MAX_CLIENTS else set(clients)]
            return True
        got[0], got[1], got[2] = min(got[0], lo), max(got[1], hi), got[2] + n
        if got[3] is not None:
            if clients is None:
                got[3] = None
            else:
                got[3] |= clients
                if len(got[3]) > MAX_CLIENTS:
                    got[3] = None
        return False

    def add(self, flows: pd.DataFrame) -> None:
        """Remember what ``flows`` (a flow table or one batch of it) shows; a table without
        ``proto``, ``conn_state``, ``resp_h``, ``resp_p`` or ``ts_ns`` shows nothing."""
        if not len(flows) or any(c not in flows for c in ("proto", "conn_state", "resp_h", "resp_p", "ts_ns")):
            return
        from .classify import _CONNECTED_STATES
        tcp = flows["proto"].to_numpy(dtype=object) == "tcp"
        up = np.flatnonzero(tcp & flows["conn_state"].isin(_CONNECTED_STATES).to_numpy())
        hosts, ports, ts = flows["resp_h"].to_numpy(dtype=object), flows["resp_p"].to_numpy(np.int64), \
            flows["ts_ns"].to_numpy(np.int64)
        origs = flows["orig_h"].to_numpy(dtype=object) if "orig_h" in flows else None
        if len(up):
            # (per distinct endpoint of the batch, in numpy: its first and last connection, how many)
            codes, names = pd.factorize(hosts[up])
            key = codes.astype(np.int64) * 65536 + (ports[up] & 0xFFFF)
            uk, inv = np.unique(key, return_inverse=True)
            lo = np.full(len(uk), np.iinfo(np.int64).max, np.int64)
            hi = np.full(len(uk), np.iinfo(np.int64).min, np.int64)
            np.minimum.at(lo, inv, ts[up])
            np.maximum.at(hi, inv, ts[up])
            clients: list = [None] * len(uk)
            if origs is not None:
                # (each endpoint's distinct clients: one pass over the distinct (endpoint, client) pairs)
                o_codes, o_names = pd.factorize(origs[up])
                pairs = np.unique(inv.astype(np.int64) * (len(o_names) + 1) + o_codes)
                clients = [set() for _ in range(len(uk))]
                for pr in pairs.tolist():
                    clients[pr // (len(o_names) + 1)].add(str(o_names[pr % (len(o_names) + 1)]))
            for k, a, b, n, cl in zip(uk.tolist(), lo.tolist(), hi.tolist(), np.bincount(inv).tolist(), clients):
                self._merge(self.accepted, (names[k >> 16], k & 0xFFFF), a, b, n, len(self.accepted) < MAX_ENDPOINTS,
                            cl)
        if not all(c in flows for c in ("verdict", "detail", "purpose")):
            return
        blocked = np.flatnonzero(tcp & (flows["verdict"].to_numpy(dtype=object) == "blocked"))
        if not len(blocked):
            return
        detail = flows["detail"].to_numpy(dtype=object)[blocked]
        # (a connection going on after an idle silence, reset with the server's TTL, was no refusal
        # of the port: it worked before the silence; s51 leftover)
        # (a distribution point's own reset: on the client's subnet, or with its own TTL from
        # another one: break-it s53 DP pass #2)
        own = [j for j, d in enumerate(detail.tolist())
               if (REFUSED_OWN in str(d) and not _other_reset(str(d)))
               or str(d).startswith(DP_RESET_ITSELF) or (str(d).startswith(DP_RESET) and DP_OWN_TTL_MARK in str(d))]
        purpose = flows["purpose"].to_numpy(dtype=object)
        for i in blocked[own].tolist():
            mine = self.refused.setdefault(str(purpose[i]), {})
            t = int(ts[i])
            self._n_refused += self._merge(mine, (hosts[i], int(ports[i])), t, t, 1, self._n_refused < MAX_ENDPOINTS,
                                           None if origs is None else {str(origs[i])})

    def said(self, purpose: str) -> tuple[int, str]:
        """(how many of ``purpose``'s refused flows went to a server and port that accepted a
        connection, what the advice says of them), of the endpoint with the most such refusals
        (then the first refused; how many more endpoints there were): ``the port was refused at
        08:38:53.777 UTC and accepted at 08:41:02.100 UTC (203.0.113.10 TCP 23100):``
        :data:`RESTARTED` when every connection came after the refusals (the first named), ``the
        port was accepted at … and refused at …`` when every one came before them (the last named),
        else ``the port was refused 12 times from … to … UTC while it accepted 3,000 other
        connections from … to … UTC (…):`` :data:`INTERMITTENT`, or, when two refusals or more
        over :data:`CLIENTS_REFUSED_SPAN_NS` or longer were all of clients the endpoint never
        accepted, ``the port was refused 12 times from … to
        … UTC, each time to 192.0.2.10, while it accepted 3,000 connections of other clients
        (192.0.2.11) from … to … UTC (…):`` :data:`CLIENTS_REFUSED`; (0, '') for none."""
        from .classify import _clock_text
        found = sorted((-v[2], v[0], k) for k, v in self.refused.get(purpose, {}).items() if k in self.accepted)
        if not found:
            return 0, ""
        host, port = found[0][2]
        r_lo, r_hi, r_n, r_cl = self.refused[purpose][(host, port)]
        a_lo, a_hi, a_n, a_cl = self.accepted[(host, port)]
        when = (f"at {_clock_text(r_lo)} UTC" if r_n == 1
                else f"{r_n:,} times from {_clock_text(r_lo)} to {_clock_text(r_hi)} UTC")
        # (the counts are this endpoint's; the others said as such, not as its: newcomer s55 #3)
        where = f"({host} TCP {port}{f', the most refused of {len(found)} servers and ports' if len(found) > 1 else ''})"
        if a_lo > r_hi:
            text = f"the port was refused {when} and accepted at {_clock_text(a_lo)} UTC {where}: {RESTARTED}"
        elif a_hi < r_lo:
            text = f"the port was accepted at {_clock_text(a_hi)} UTC and refused {when} {where}: {RESTARTED}"
        elif r_n > 1 and r_cl and a_cl and not r_cl & a_cl and r_hi - r_lo >= CLIENTS_REFUSED_SPAN_NS:
            text = (f"the port was refused {when}, each time to {_clients_text(r_cl)}, while it accepted {a_n:,} "
                    f"connection{'s' if a_n != 1 else ''} of other clients ({_clients_text(a_cl)}) from "
                    f"{_clock_text(a_lo)} to {_clock_text(a_hi)} UTC {where}: {CLIENTS_REFUSED}")
        else:
            text = (f"the port was refused {when} while it accepted {a_n:,} other connection{'s' if a_n != 1 else ''} "
                    f"from {_clock_text(a_lo)} to {_clock_text(a_hi)} UTC {where}: {INTERMITTENT}")
        return -sum(n for n, _, _ in found), text


def _clients_text(clients: set) -> str:
    """Clients' addresses as the refusal notes name them: ``192.0.2.10``, ``192.0.2.10 and
    192.0.2.11``, ``192.0.2.10, 192.0.2.11, 192.0.2.12 and 4 more`` (sorted as addresses)."""
    import ipaddress

    def key(a: str):
        try:
            ip = ipaddress.ip_address(a)
            return (ip.version, int(ip), a)
        except ValueError:
            return (9, 0, a)
    return _list_text(sorted(clients, key=key), "")


def rejected_kind(detail: str) -> str:
    """Which :data:`REJECTED_TEXT` a ``rejected`` flow's detail calls for: ``http`` (an HTTP
    refusal of a request sent straight to the server, :data:`HTTP_REFUSAL`, or of a ClientHello,
    :data:`~kscc_traffic.classify.FILTER_ANSWER`), ``redirect`` (a ClientHello answered by an HTTP
    redirect: :data:`REDIRECT_ANSWER`), ``proxy`` (:data:`PROXY_REFUSAL`), ``stale``
    (:data:`~kscc_traffic.classify.STALE_ANSWER`), ``ack_only`` (a SYN answered only by bare ACKs:
    :data:`~kscc_traffic.classify.ACK_ONLY_ANSWER`), ``handshake`` (the server's side reset or closed
    the connection right after the handshake: :data:`~kscc_traffic.classify.HANDSHAKE_RESET`,
    :data:`~kscc_traffic.classify.HANDSHAKE_CLOSE`, or reset it after the client's request answering
    nothing: :data:`~kscc_traffic.classify.REQUEST_RESET`, a plain HTTP request's:
    :data:`~kscc_traffic.classify.DIRECT_UNANSWERED`), else ``reset`` (a TCP reset)."""
    detail = str(detail)
    if REDIRECT_ANSWER.match(detail):
        return "redirect"
    if detail.startswith(FILTER_ANSWER) or HTTP_REFUSAL.match(detail):
        return "http"
    if PROXY_REFUSAL.match(detail):
        return "proxy"
    if detail.startswith(STALE_ANSWER):
        return "stale"
    if detail.startswith(ACK_ONLY_ANSWER):
        return "ack_only"
    if detail.startswith((HANDSHAKE_RESET, HANDSHAKE_CLOSE, REQUEST_RESET)) or DIRECT_UNANSWERED.match(detail):
        return "handshake"
    if detail.startswith(PATH_RESET):
        return "path_reset"
    return "reset"


def rejected_reason_text(details) -> str:
    """Why ``rejected`` flows matter (the HTML report's "Why flagged"), from their details: the
    text of their one kind (:func:`rejected_kind`), or each kind's with its count (``1 of them:
    …; 2 of them: …``); :data:`REASON_TEXT`'s when there is none."""
    counts: dict[str, int] = {}
    for d in details:
        k = rejected_kind(d)
        counts[k] = counts.get(k, 0) + 1
    if len(counts) <= 1:
        return REJECTED_TEXT[next(iter(counts), "reset")]
    return "; ".join(f"{n} of them: {REJECTED_TEXT[k]}" for k, n in
                     sorted(counts.items(), key=lambda kv: list(REJECTED_TEXT).index(kv[0])))


def host_mismatch_reason_text(n: int, vendor: int, console: int = 0) -> str:
    """Why ``n`` ``host_mismatch`` flows matter, ``vendor`` of them to a name under kaspersky.com
    (:data:`VENDOR_OTHER`): :data:`REASON_TEXT`'s when none is, else that too; ``console`` of the
    ``vendor`` ones to the Cloud Console server's own names (:func:`console_names`: said as
    :data:`CONSOLE_ELSEWHERE`, not as Kaspersky's other services)."""
    if console and console >= vendor:
        head = f"the server name is outside the documented host mask: {CONSOLE_ELSEWHERE}"
        return head if console >= n else f"{REASON_TEXT['host_mismatch']}; {console} of them: {CONSOLE_ELSEWHERE}"
    if console:
        return (f"{REASON_TEXT['host_mismatch']}; {vendor} of them: {VENDOR_OTHER} ({console} of those: "
                f"{CONSOLE_ELSEWHERE})")
    if not vendor:
        return REASON_TEXT["host_mismatch"]
    if vendor >= n:
        return f"the server name is outside the documented host mask: {VENDOR_OTHER}"
    return f"{REASON_TEXT['host_mismatch']}; {vendor} of them: {VENDOR_OTHER}"


#: why a ``wrong_direction`` flow opened from outside to a local address on a cloud server's port
#: matters (detail :data:`~kscc_traffic.classify.INBOUND`), and what to do about it
INBOUND_TEXT = ("opened from outside towards an agent's address on a cloud server's port (an inbound connection: the "
                "cloud server is never at a local address and never connects to agents): a port forwarding to that "
                "host, or another program listening there")


#: the same for a distribution point's port opened by a distribution point towards its own agent
#: (detail :data:`~kscc_traffic.classify.DP_INBOUND`)
DP_INBOUND_TEXT = ("opened by a distribution point towards its own agent, on a port of the distribution point (agents "
                   "open these ports towards their distribution point, never the other way): a distribution point "
                   "that takes that device for one (check which devices are distribution points in the Cloud Console), "
                   "or another program")
#: how the details :data:`INBOUND_TEXT` and :data:`DP_INBOUND_TEXT` are about start
INBOUND_STARTS = (INBOUND, DP_INBOUND)


def inbound_text(rule) -> str:
    """:data:`DP_INBOUND_TEXT` for a distribution point's purpose (``opener`` agent_to_dp),
    :data:`INBOUND_TEXT` for the others (``rule`` a :class:`~kscc_traffic.rules.Rule` or None)."""
    return DP_INBOUND_TEXT if rule is not None and rule.opener == "agent_to_dp" else INBOUND_TEXT


def wrong_direction_reason_text(n: int, inbound: int, rule=None) -> str:
    """Why ``n`` ``wrong_direction`` flows matter, ``inbound`` of them opened from outside towards a
    local address or by a distribution point towards its agent (details starting with one of
    :data:`INBOUND_STARTS`): :data:`REASON_TEXT`'s when none was, :func:`inbound_text` of
    ``rule`` (the purpose's rule, None: not known) when all were, else both, counted."""
    if not inbound:
        return REASON_TEXT["wrong_direction"]
    if inbound >= n:
        return f"the connection was {inbound_text(rule)}"
    return f"{REASON_TEXT['wrong_direction']}; {inbound} of them: {inbound_text(rule)}"


def icmp_reason_text(n: int, closed: int, forged: int = 0, cloud_own: int = 0) -> str:
    """Why ``n`` flows ``icmp_unreachable`` matter, ``closed`` of them answered by a port
    unreachable from the destination itself (detail :data:`~kscc_traffic.unreachable.NOT_LISTENING`),
    ``forged`` of them by one carrying a cloud server's own address (detail
    :data:`~kscc_traffic.unreachable.CLOUD_FORGED`: most likely a firewall's on the path, in the
    server's name), ``cloud_own`` of them by one carrying a cloud server's own address with that
    server's own TTL (:func:`cloud_refusals`: the server refused the port): :data:`REASON_TEXT`'s
    when none was, else by what happened (each kind counted when the flows are not all of one kind)."""
    own = ("the destination host itself answered with ICMP port unreachable: " + NOT_LISTENING)
    cloud = ("an ICMP port unreachable carrying the cloud server's own address answered: most likely forged "
             "by a firewall on the path (a reject rule answers in the name of the address it blocks); if no "
             "firewall rejects it, the cloud refused the port: report the server and port to Kaspersky support")
    server = ("an ICMP port unreachable from the cloud server itself (with its own TTL or hop limit, as its "
              "earlier packets) answered: the server refused the port (nothing listens there, or its host "
              "firewall): report the server and port to Kaspersky support")
    kinds = [(k, text) for k, text in ((closed, own), (forged, cloud), (cloud_own, server)) if k]
    if not kinds:
        return REASON_TEXT["icmp_unreachable"]
    if len(kinds) == 1 and kinds[0][0] >= n:
        return kinds[0][1]
    rest = n - closed - forged - cloud_own
    return "; ".join(([REASON_TEXT["icmp_unreachable"]] if rest > 0 else [])
                     + [f"{k} of them: {text}" for k, text in kinds])


#: the note :func:`kscc_traffic.classify.classify` adds to the detail of a ``no_answer`` attempt that
#: began less than :data:`~kscc_traffic.classify.END_MARGIN_S` before the capture's last packet
#: (``_note_capture_end``): the capture's end may have cut it short, before an answer could come
CUT_SHORT = re.compile(r"\bthe capture ended ([0-9.]+) s after its first packet, " + re.escape(CUT_SHORT_TAIL)
                       + "(" + re.escape(LOST_RECORD) + ")?")
#: the same, anchored at the end of the detail, where ``_note_capture_end`` puts it: a name quoted
#: earlier in the detail cannot make a flow look cut short
_CUT_SHORT_END = re.compile("(?:; )(?:" + CUT_SHORT.pattern + r")\Z")

#: why a ``no_answer`` flow was flagged when the capture's end cut it short (the HTML report's
#: "Why flagged", instead of :data:`REASON_TEXT`'s "a firewall drops it")
CUT_SHORT_REASON = (f"the attempt began less than {END_MARGIN_S:g} s before the capture ended and got no answer in it: maybe "
                    "before an answer could come (nothing shows a block: capture longer)")

#: the ``status_note`` of a purpose whose blocked flows are all attempts the capture's end cut short
CUT_SHORT_NOTE = "the capture ended before an answer could come"

#: the ``status_note`` of a purpose on a shared port (443, 80) whose blocked flows name no server:
#: another program's traffic as likely as the agent's
NAMELESS_NOTE = "no name seen on the blocked flows: maybe another program's"

#: the ``status_note`` of a purpose "not seen" whose port carried flows when no flow of the capture is
#: KSC agent traffic (:func:`no_ksc_traffic`): they are other programs' (a browser's HTTPS on 443), no
#: evidence about the agent's purpose (newcomer 28 F4)
NOT_KSC_NOTE = "no KSC flow: its port's flows are other programs'"
#: what to change for flagged flows when no flow is KSC agent traffic (the HTML report's findings)
NOT_KSC_FIX = ("nothing for KSC: these are other programs' flows, not KSC agent traffic (see the headline: "
               "capture on a device with the agent, while it connects)")


#: the end of the detail of a datagram to a broadcast or multicast purpose's port sent as the other
#: kind (:mod:`kscc_traffic.classify`: "sent as a broadcast (to 192.0.2.255), where the page
#: documents UDP 15001 as a multicast: another application's datagram on this port?")
OTHER_CAST = "another application's datagram on this port?"


def other_cast_kind(details) -> str:
    """What :data:`OTHER_CAST` datagrams (their ``detail`` texts, "sent as a broadcast (to …") were
    sent as: ``broadcast``, ``multicast``, ``unicast``, or two of them joined by " or " ('' when no
    detail says)."""
    kinds = sorted({m.group(1) for d in details for m in [_SENT_AS.match(str(d))] if m})
    return " or ".join(kinds)


#: how the detail of such a datagram starts
_SENT_AS = re.compile(r"(?:.*; )?sent as an? (broadcast|multicast|unicast) \(to ")


def other_cast_note(r, k: int, kind: str = "") -> str:
    """The ``status_note`` of a broadcast or multicast purpose (rule ``r``) "not seen" whose port
    carried only ``k`` datagrams of another delivery (:data:`OTHER_CAST`; ``kind``, from
    :func:`other_cast_kind`, '': the other group kind): ``8 broadcasts to the port, not the
    documented multicast``."""
    other = kind or ("broadcast" if r.cast == "multicast" else "multicast")
    return f"{k} {_plural(other) if k != 1 else other} to the port, not the documented {r.cast}"


def _plural(kinds: str) -> str:
    """``broadcast or unicast`` -> ``broadcasts or unicasts``."""
    return " or ".join(f"{w}s" for w in kinds.split(" or "))


def _other_cast_text(r, k: int, kind: str = "") -> str:
    """What a ``seen one-way`` row's advice says of the ``k`` ok datagrams of another delivery
    (:data:`OTHER_CAST`; ``kind`` as :func:`other_cast_note`'s) it does not count: '' when there are
    none."""
    if not k:
        return ""
    other = kind or ("broadcast" if r.cast == "multicast" else "multicast")
    return (f"; {k} other flow{'s' if k != 1 else ''} on the port {'were' if k != 1 else 'was'} sent as "
            f"{_plural(other) if k != 1 else f'a {other}'}, not the {r.cast} the page documents: another "
            "application's datagram"
            f"{'s' if k != 1 else ''}?, not counted here")


#: the ``status_note`` of a verified purpose some of whose TLS sessions the server reset right
#: after the agent's first request (detail :data:`~kscc_traffic.classify.REFUSED_AFTER_REQUEST`;
#: its ``fix`` is then what to check, :func:`refused_fix`, said under "To verify": newcomer s60 #3)
REFUSED_NOTE = "sessions reset at the agent's first request"


def refused_fix(r, k: int, ok: int) -> str:
    """What to check for rule ``r`` whose ``ok`` flows worked on the network and ``k`` of which
    (> 0) the server reset right after the agent's first request, having sent nothing after the
    TLS handshake (:data:`REFUSED_NOTE`): the path works, the server refused the agent at the
    application level, so the Administration Server address and the installation package the
    agent uses are what to check; a firewall that inspects the traffic may also do it."""
    return (f"the server reset {_sessions_which(k, ok)} on {r.transport.upper()} {r.port_text} right after the agent's first request "
            "(within 1 s, no server data after the TLS handshake; see each flow's detail): the network path works "
            "(nothing to open in the firewall); the server refused the agent at the application level (an agent set "
            "up for another workspace or region, or its certificate): check the Administration Server address and "
            "the installation package the agent uses. A firewall that inspects the traffic can reset sessions in "
            "the server's name the same way: if the address is right, check its logs")


def _sessions_which(k: int, ok: int) -> str:
    """``k`` sessions of ``ok`` as the "To verify" lines name them: "the session", "each of the 3
    sessions", "1 of the 2 sessions"."""
    return (f"each of the {k} sessions" if k == ok and k > 1 else "the session" if k == ok
            else f"{k} of the {ok} sessions")


#: the ``status_note`` of a verified purpose some of whose TLS sessions the server answered only
#: after :data:`~kscc_traffic.classify.SLOW_HELLO_S` or more (detail
#: :data:`~kscc_traffic.classify.SLOW_HELLO`; its ``fix`` :func:`slow_fix`, said under "To
#: verify": newcomer s61 #5)
SLOW_NOTE = "a server slow to answer the TLS handshake"


def slow_fix(r, k: int, ok: int) -> str:
    """What to check for rule ``r`` whose ``ok`` flows worked on the network and ``k`` of which
    (> 0) the server answered the ClientHello only after
    :data:`~kscc_traffic.classify.SLOW_HELLO_S` or more (:data:`SLOW_NOTE`): the path works, a
    slow server or a proxy in the path delays the handshake, and an agent that gives up sooner
    fails to connect."""
    return (f"the server answered the ClientHello of {_sessions_which(k, ok)} on {r.transport.upper()} {r.port_text} "
            f"only after {SLOW_HELLO_S:g} s or more (see each flow's detail): the network path works (nothing to "
            "open in the firewall), but a slow or overloaded server, or a proxy in the path, delays the handshake, "
            "and an agent whose timeout is shorter gives up (a later attempt can fail so): check the proxy or "
            "TLS-inspecting device in the path, if any, and how long the agent waits; a cloud server slow on its "
            "own is a matter for Kaspersky's support")


#: the ``status_note`` of a verified purpose some of whose connections the server stopped reading,
#: its receive window held closed for :data:`~kscc_traffic.classify.WINDOW_HELD_S` or more until
#: the client reset the connection or the capture ended (detail
#: :data:`~kscc_traffic.classify.WINDOW_HELD`; its ``fix`` :func:`held_fix`: newcomer s61 #5)
HELD_NOTE = "a server that stopped reading (zero window)"


def held_fix(r, k: int, ok: int) -> str:
    """What to check for rule ``r`` whose ``ok`` flows worked on the network and ``k`` of which
    (> 0) the server stopped reading, its receive window held closed (zero) for
    :data:`~kscc_traffic.classify.WINDOW_HELD_S` or more until the client reset the connection or
    the capture ended (:data:`HELD_NOTE`)."""
    which = _sessions_which(k, ok).replace("session", "connection")
    return (f"the server held its receive window closed (zero) for {WINDOW_HELD_S:g} s or more in {which} on "
            f"{r.transport.upper()} {r.port_text}, taking none of the agent's bytes, until the agent reset the "
            "connection or the capture ended (see each flow's detail): the connection opened (nothing to open in "
            "the firewall), then the server, or a proxy in the path, stopped reading: check the proxy or "
            "TLS-inspecting device in the path, if any (its load, its connection to the server); a cloud server "
            "stalling on its own is a matter for Kaspersky's support")


#: how the detail of a blocked flow whose ClientHello the server left unanswered starts (classify's
#: tls_failed details: "ClientHello not answered for 30.0 s", "… : no byte from the server for …")
HELLO_UNANSWERED = "ClientHello not answered"
#: at most this many server addresses kept per purpose by :class:`TableSummary` for
#: :func:`slow_servers` (a capture of many servers: the first ones)
MAX_SLOW_SERVERS = 64


def slow_servers(details, verdicts, servers) -> tuple[set, set]:
    """Of flows' ``details`` (unquoted), ``verdicts`` and ``servers`` (``resp_h``; iterables of
    the same length): the addresses of the servers that answered an ok flow's ClientHello only
    after :data:`~kscc_traffic.classify.SLOW_HELLO_S` or more (detail
    :data:`~kscc_traffic.classify.SLOW_HELLO`), and of those that left a blocked flow's ClientHello
    unanswered (:data:`HELLO_UNANSWERED`): two sets of text; their intersection is said by
    :func:`slow_server_text` in the blocked purpose's advice."""
    slow, silent = set(), set()
    for d, v, a in zip(details, verdicts, servers):
        d = str(d)
        if v == "ok" and SLOW_HELLO in d:
            slow.add(str(a))
        elif v == "blocked" and d.startswith(HELLO_UNANSWERED):
            silent.add(str(a))
    return slow, silent


def slow_server_text(addr: str) -> str:
    """What a blocked purpose's advice adds when the server ``addr`` that left a ClientHello
    unanswered answered another one, of an ok flow, slowly (:func:`slow_servers`; '' for none):
    a slow server, not only a device in the path, may explain the failed attempt (newcomer s61 #5)."""
    if not addr:
        return ""
    return (f"; the same server ({addr}) answered the ClientHello of another connection only after "
            f"{SLOW_HELLO_S:g} s or more (see that flow's detail): it may be slow rather than blocked, the agent "
            "giving up before its answer (its timeout)")


#: the ``status_note`` of a verified purpose some of whose TLS sessions had a certificate for the
#: Kaspersky name asked from a private CA, accepted (detail
#: :data:`~kscc_traffic.classify.PRIVATE_CA_MEANS`; its ``fix`` :func:`private_fix`: break-it s62 #1)
PRIVATE_NOTE = "a server certificate from a private CA (TLS inspection?)"


def private_fix(r, k: int, ok: int) -> str:
    """What to check for rule ``r`` whose ``ok`` flows worked and ``k`` of which (> 0) had a
    certificate for the Kaspersky name asked from a private CA (:data:`PRIVATE_NOTE`): the
    connection works, re-signed on the way (a TLS-inspecting proxy whose CA the device trusts)."""
    return (f"the server's certificate in {_sessions_which(k, ok)} on {r.transport.upper()} {r.port_text} was "
            "issued by a private CA, not a public one (see each flow's detail): the connection works, but most "
            "likely a TLS-inspecting proxy or firewall re-signs it; check the issuer is one you expect, and exclude "
            "the Kaspersky names from TLS inspection (an agent that checks the server's certificate refuses a "
            "re-signed one)")


#: the ``status_note`` values of a verified purpose that the reports say under "To verify" (with
#: the row's ``fix``); a row may hold several, "; "-joined
VERIFY_NOTES = (REFUSED_NOTE, SLOW_NOTE, HELD_NOTE, PRIVATE_NOTE)


def to_verify(note: str) -> bool:
    """Whether a checklist row's ``status_note`` holds one of :data:`VERIFY_NOTES` (its ``fix``
    is then said under "To verify")."""
    return any(x in VERIFY_NOTES for x in str(note).split("; "))


#: the ``status_note`` of a multicast purpose not seen while the device joined multicast groups
#: (:func:`group_joins`: IGMP/MLD membership reports) — the datagrams did not reach it (newcomer 28 F3)
JOINED_NOTE = "joined a multicast group by IGMP/MLD, no datagram received"
#: at most this many groups named by :func:`joined_row`
MAX_JOIN_GROUPS = 5
#: destinations of IGMP flows that are no group joined: the all-hosts and all-routers groups
#: (queries, leaves) and the IGMPv3 reports' address (the groups are inside)
_NOT_GROUPS = ("224.0.0.1", "224.0.0.2", "224.0.0.22")
#: groups every operating system joins for its own services, never a distribution point's: SSDP
#: (239.255.255.250, Windows and UPnP devices) and SLP (239.255.255.253); the Local Network
#: Control Block 224.0.0.0/24 (mDNS 224.0.0.251, LLMNR 224.0.0.252…) is never routed, so
#: no distribution point on another subnet sends there either (:func:`os_group`)
_OS_GROUPS = frozenset({"239.255.255.250", "239.255.255.253", "224.0.1.1"})
#: IPv6 group IDs (the low 112 bits) IANA assigns in every scope that an operating system joins
#: for its own services: SSDP (ff0X::c: Windows joins ff02::c and ff05::c) and mDNS (ff0X::fb)
_OS_GROUP_IDS6 = frozenset({0xC, 0xFB})
#: ... and those of the groups a router, a DHCP server or an NTP client joins, in a scope wider
#: than the link too: NTP (ff0X::101), all nodes and all routers (ff0X::1, ff0X::2: a Linux
#: router's MLD reports name ff05::2), DHCPv6 agents and servers (ff0X::1:2, ff05::1:3, the
#: deprecated ff05::1:4), as IANA assigns them: permanent groups only (flags 0, ``ff0X::``; a
#: transient or prefix-based group with the same low bits, ``ff15::2``, ``ff3e::101``, is anyone's;
#: break-it s50 #6)
_OS_PERMANENT_IDS6 = frozenset({0x1, 0x2, 0x101, 0x1_0002, 0x1_0003, 0x1_0004})


def os_group(group) -> bool:
    """Whether a multicast group (address text: a report's group, or an IGMPv2 report's
    ``resp_h``) is one the operating system joins for its own services, so a report for it says
    nothing of a distribution point's multicast (:func:`group_joins`). IPv4: :data:`_OS_GROUPS`
    (SSDP, SLP, NTP),
    or in 224.0.0.0/24 but for 224.0.0.22, where IGMPv3 reports go with their groups inside.
    IPv6: a scope of at most link-local (ffX0::, ffX1::, ffX2::/16: mDNS ff02::fb, LLMNR ff02::1:3,
    SSDP ff02::c, the solicited-node groups ff02::1:ffXX:XXXX; never routed, while a
    distribution point on another subnet reaches a device only by a routed group), or a
    service's group of any scope (:data:`_OS_GROUP_IDS6`: SSDP, mDNS; :data:`_OS_PERMANENT_IDS6`,
    as permanent groups only: NTP, all nodes, all routers, DHCPv6).
    Text that is no multicast address is not an OS group."""
    g = str(group)
    if ":" not in g:
        return g in _OS_GROUPS or (g.startswith("224.0.0.") and g != "224.0.0.22")
    try:
        n = int(ipaddress.IPv6Address(g.split("%")[0]))
    except ValueError:
        return False
    if n >> 120 != 0xFF:
        return False
    gid = n & ((1 << 112) - 1)
    return (n >> 112) & 0xF <= 2 or gid in _OS_GROUP_IDS6 or ((n >> 116) & 0xF == 0 and gid in _OS_PERMANENT_IDS6)


def group_joins(flows: pd.DataFrame) -> tuple[int, tuple[str, ...]]:
    """IGMP/MLD membership reports among ``flows`` that join a group not the operating system's
    own (a device joining a distribution point's multicast, maybe): (such flows, the groups they
    name, sorted, at most :data:`MAX_JOIN_GROUPS`). A flow's groups are those its ``detail`` names
    (:data:`~kscc_traffic.classify.MCAST_JOINS`: classify says there what its reports join,
    :func:`kscc_traffic.inspect._mcast_groups`: IGMPv1/v2 and MLDv1 reports, the joining records
    of IGMPv3 and MLDv2 reports; a leave names none); those the operating system joins for its
    own services (:func:`os_group`: SSDP, mDNS, LLMNR, solicited-node…) do not count: every
    Windows or Linux host's IGMPv3/MLDv2 reports name them, no sign of a distribution point's
    multicast. A table without ``detail``: an IGMP flow's ``resp_h`` where it is a group (an
    IGMPv1/v2 report goes to its group; queries, leaves and IGMPv3 reports to
    :data:`_NOT_GROUPS`). (0, ()) when the table lacks ``proto`` or ``resp_h``."""
    if not len(flows) or "proto" not in flows or "resp_h" not in flows:
        return 0, ()
    proto = flows["proto"].to_numpy(dtype=object)
    at = np.flatnonzero((proto == "igmp") | (proto == "icmp"))
    if not len(at):
        return 0, ()
    if "detail" in flows:
        named = []
        for d in flows["detail"].to_numpy(dtype=object)[at].tolist():
            m = MCAST_JOINS_RE.search(d) if isinstance(d, str) and d else None
            if m:
                named.append(m.group(1).split(", "))
    else:
        dst = flows["resp_h"].to_numpy(dtype=object)[at[proto[at] == "igmp"]]
        named = [[str(x)] for x in dst.tolist() if str(x) not in _NOT_GROUPS]
    joins, groups = 0, set()
    for gs in named:
        mine = [g for g in gs if g and not os_group(g)]
        if mine:
            joins += 1
            groups.update(mine)
    return joins, tuple(sorted(groups))[:MAX_JOIN_GROUPS]


def _only_membership(flows: pd.DataFrame) -> bool:
    """Whether every flow of ``flows`` is IGMP or ICMP (ICMPv6: MLD): a capture of membership
    reports alone, whose joins say something under the No-KSC headline."""
    if "proto" not in flows:
        return False
    proto = flows["proto"].to_numpy(dtype=object)
    return bool(((proto == "igmp") | (proto == "icmp")).all())


def snooping_text(groups) -> str:
    """What the switches' multicast filtering is called for ``groups`` (address texts): IPv4
    groups are joined by IGMP, IPv6 ones (``ff05::…``, any ``ff0X::`` scope) by MLD (RFC 3810),
    and a switch filters each by snooping its own protocol, asking the VLAN's querier of it:
    ``IGMP snooping (an IGMP querier on the VLAN)``, ``MLD snooping (an MLD querier on the
    VLAN)``, both named for groups of both families (none: IGMP's, as before)."""
    six = [":" in str(g) for g in groups]
    if six and all(six):
        return "MLD snooping (an MLD querier on the VLAN)"
    if any(six):
        return "IGMP/MLD snooping (an IGMP and an MLD querier on the VLAN)"
    return "IGMP snooping (an IGMP querier on the VLAN)"


def joined_row(row: dict, r, joins: int, groups: tuple[str, ...]) -> dict:
    """A checklist row of a multicast purpose (``r.cast`` multicast) "not seen" while the capture
    holds ``joins`` > 0 IGMP/MLD membership reports joining a group not the operating system's own
    (:func:`group_joins`): :data:`JOINED_NOTE`
    and the advice to check the multicast path (routing, IGMP snooping; MLD snooping for IPv6
    groups: :func:`snooping_text`) between the sender and this device; other rows as they are."""
    if not joins or row["status"] != "not seen" or row["flows"] or getattr(r, "cast", "") != "multicast":
        return row
    named = f": {', '.join(groups)}" if groups else ""
    fix = (f"the capture holds IGMP/MLD membership reports ({joins} flow{'s' if joins != 1 else ''}: this device "
           f"joined multicast groups{named}) but no "
           f"{r.transport.upper()} {r.port_text} multicast datagram: if this is a device with the agent of a "
           "distribution point that sends by multicast, the datagrams did not reach it: check the multicast "
           f"routing and {snooping_text(groups)} between the distribution point and this "
           f"device, and that the distribution point sends them (a capture there); what it needs: "
           f"{family_fix(r.fix, groups)}")
    return {**row, "status_note": JOINED_NOTE, "fix": fix}


def family_fix(fix: str, groups) -> str:
    """A rule's fix text (``rules/kscc-cloud.toml``, the UDP 15001 multicast's "… (IGMP snooping)")
    for the multicast ``groups`` (address texts) seen joined: "IGMP snooping" named as
    :func:`snooping_text`'s protocol, "MLD snooping" for IPv6 groups only, "IGMP/MLD snooping" for
    both; the text unchanged for IPv4 or no groups, or when it names no IGMP snooping."""
    six = [":" in str(g) for g in groups]
    if not six or not any(six):
        return fix
    return fix.replace("IGMP snooping", "MLD snooping" if all(six) else "IGMP/MLD snooping")


def _cast_fix(r, ok: int, v6: tuple[int, int] | None) -> str:
    """Rule ``r``'s fix text for its ``ok`` flows, ``v6`` = (ok, blocked) of them over IPv6 (None:
    not counted): the multicast's "IGMP snooping" named "MLD snooping" when they all went to IPv6
    groups, "IGMP/MLD snooping" when some did (:func:`family_fix`; break-it s54 v6 #7: an IPv6
    distribution point's multicast seen one-way was advised IGMP snooping)."""
    if v6 is None or not v6[0]:
        return r.fix
    return family_fix(r.fix, ["::"] + (["0.0.0.0"] if ok > v6[0] else []))


def not_ksc_row(row: dict) -> dict:
    """A checklist row (:func:`_readiness_row`) when no flow is KSC agent traffic
    (:func:`no_ksc_traffic`'s headline): a purpose with flows becomes "not seen" with
    :data:`NOT_KSC_NOTE`, no reasons and no advice (the flows, counted in ``flows``, ``ok``,
    ``blocked``, ``unexpected``, are other programs': nothing to change for KSC); other rows as
    they are."""
    if not row["flows"] or row["status"] == "not seen":
        return row
    return {**row, "status": "not seen", "status_note": NOT_KSC_NOTE, "reasons": "", "fix": ""}


def cut_short(reasons, details) -> np.ndarray:
    """bool per flow (``reason`` and ``detail`` texts, one each per flow): a ``no_answer`` attempt
    that began less than :data:`~kscc_traffic.classify.END_MARGIN_S` before the capture's last
    packet: it may have had no time to get its answer. Its detail ends with :data:`CUT_SHORT`'s
    note, where classify puts it last (``_note_capture_end``), saying at most
    :data:`~kscc_traffic.classify.END_MARGIN_S`: the note anywhere else (a name from the packets
    quoted in the detail, holding those words) does not count."""
    reasons, details = list(reasons), list(details)
    return np.fromiter((str(r).split(",")[0] == "no_answer" and _noted_cut(str(d))
                        for r, d in zip(reasons, details)), bool, len(reasons))


def cut_lost(reasons, details) -> int:
    """Of flows (``reason`` and ``detail`` texts), the :func:`cut_short` ones whose note says the
    capture file was cut mid-record after their last packet
    (:data:`~kscc_traffic.classify.LOST_RECORD`: the lost last record may have held the answer)."""
    return sum(1 for r, d in zip(reasons, details) if str(r).split(",")[0] == "no_answer"
               and _noted_cut(str(d)) and _CUT_SHORT_END.search(str(d)).group(2))


def _noted_cut(detail: str) -> bool:
    m = _CUT_SHORT_END.search(detail)
    if m is None:
        return False
    try:
        return float(m.group(1)) <= END_MARGIN_S
    except ValueError:
        return False


#: the start of an unanswered attempt's detail (a SYN, a UDP request) :func:`routed_unanswered` counts
UNANSWERED_STARTS = ("SYN sent ", "UDP request without a reply")
#: how the advice says a distribution point's subnet is judged (:func:`~kscc_traffic.classify.same_subnet`)
SUBNET_JUDGED = "another /24, or IPv6 /64, than the agent's: judged from the two addresses"


def routed_unanswered(reasons, details, orig_h, resp_h) -> int:
    """Of blocked flows (``reasons``, ``details``, ``orig_h``, ``resp_h``: sequences of one length),
    the unanswered attempts (reason ``no_answer``, a detail of :data:`UNANSWERED_STARTS`: no answer
    at all) whose client and server are not on one subnet
    (:func:`~kscc_traffic.classify.same_subnet`: one /24, IPv6 /64, the usual LAN subnet, judged
    from the addresses alone: the capture holds no netmask, and a MAC address is no column of the
    flow table): a router, and any firewall on it, is between them (newcomer s61 #1)."""
    pairs: dict[tuple, bool] = {}
    n = 0
    for reason, detail, a, b in zip(reasons, details, orig_h, resp_h):
        if str(reason).split(",")[0] != "no_answer" or not str(detail).startswith(UNANSWERED_STARTS):
            continue
        key = (str(a), str(b))
        if key not in pairs:
            pairs[key] = not same_subnet(*key)
        n += pairs[key]
    return n


def routed_fix(r, bl: int, routed: int, fix: str) -> str:
    """The advice ``fix`` for ``bl`` blocked flows of a distribution point's rule ``r``, ``routed``
    of them unanswered attempts to a distribution point on another subnet than the agent
    (:func:`routed_unanswered`): a firewall or router between the subnets may drop them as well
    as the distribution point's own firewall (said by :func:`_readiness_row` only when none of the
    purpose's flows was ok)."""
    if routed >= bl:
        return (f"{fix}, or on a firewall or router between the subnets (the distribution point is on {SUBNET_JUDGED}): "
                "allow it there too, and check the route to the distribution point and back")
    return (f"{fix}; {routed} of these {bl} blocked flows went to a distribution point on another subnet "
            f"({SUBNET_JUDGED}): for "
            f"{'it' if routed == 1 else 'them'}, also on a firewall or router between the subnets")


def cut_short_fix(r, k: int, lost: int = 0) -> str:
    """The advice for ``k`` blocked flows of rule ``r`` that are all ``no_answer`` attempts the
    capture's end cut short (:func:`cut_short`): no port to open (nothing shows a block), capture
    longer; ``lost`` of them (:func:`cut_lost`) ended right before the file was cut mid-record:
    its last record, skipped, may have held the answer (said too)."""
    lost_text = ""
    if lost:
        which = ("it" if k == 1 else "them") if lost >= k else f"{lost} of them"
        lost_text = (f"; the file was cut mid-record right after {which} (its last record skipped, as the warning "
                     "says): that lost record may have held the answer")
    return (f"{'this attempt on' if k == 1 else f'these {k} attempts on'} {r.transport.upper()} {r.port_text} "
            f"{'was' if k == 1 else 'were'} unanswered when the capture ended, less than "
            f"{END_MARGIN_S:g} s after {'it' if k == 1 else 'they'} began (see the flow's detail): "
            f"nothing shows a block, the answer may simply not be in the capture{lost_text}. "
            + ("Copy the capture file whole, or capture longer" if lost else "Capture longer")
            + " (go on a few seconds after the agent connects) and analyse again")


def status_text(status: str, note: str = "") -> str:
    """A checklist row's status as people read it: ``blocked``, or with its ``status_note``
    ``blocked (the capture ended before an answer could come)``."""
    return f"{status} ({note})" if note else status


def dropped_fallback_text(bl: int, k: int) -> str:
    """``; …``: of ``bl`` blocked flows, ``k`` IPv6 attempts nothing answered that their client
    followed over IPv4 at once, which worked (:data:`~kscc_traffic.classify.DROPPED_FALLBACK`):
    IPv6 is dropped silently on the way, which capturing longer would not change."""
    which = ("after it" if bl == 1 else "after each of them") if k >= bl else f"after {k} of them"
    return (f"; {which} the client fell back to IPv4 at once, which worked: IPv6 to the server is dropped "
            "silently on the way (no reset, no ICMP error), and the client does not wait for it: capturing longer "
            "shows nothing more")


def _cut_short_more(k: int, bl: int) -> str:
    """``; of the 3 blocked, 1 was …``: the ``k`` blocked attempts the capture's end cut short, of
    the purpose's ``bl`` blocked flows (they are among them, not more: real-stack s59 #3, "1 more"
    read as a flow besides them), beside the others whose advice is given (the cut ones are not
    counted in it)."""
    return (f"; of the {bl} blocked, {k} {'was' if k == 1 else 'were'} unanswered when the capture ended less than "
            f"{END_MARGIN_S:g} s after {'it' if k == 1 else 'they'} began (maybe before an answer could come: "
            "not counted in this advice)")


#: reasons of ``unexpected`` flows that were answered on the documented port (the firewall let
#: them through; something else answered or looked into them): their "what to change" is
#: :data:`REASON_TEXT`'s, not the rule's firewall advice
ANSWERED_UNEXPECTED = ("tls_intercepted", "not_tls")


def _name_sources(r, dns_first: bool = False) -> str:
    """Where a name of rule ``r``'s server would have been seen, for "none named a server (…)":
    for plain HTTP (``app_protocol`` http: cert_check on TCP 80, which has no TLS) ``no host name in
    an HTTP Host header or DNS answer`` (audit s25), else ``no SNI, DNS answer or certificate``
    (``dns_first``: ``no DNS answer, SNI or certificate``)."""
    if r.app_protocol == "http":
        return "no DNS answer or host name in an HTTP Host header" if dns_first else \
            "no host name in an HTTP Host header or DNS answer"
    return "no DNS answer, SNI or certificate" if dns_first else "no SNI, DNS answer or certificate"


def _first_exchange(r) -> str:
    """What an agent sends its server of rule ``r`` first, for "capture … its DNS lookup and …":
    ``HTTP request`` for plain HTTP (``app_protocol`` http), else ``TLS handshake``."""
    return "HTTP request" if r.app_protocol == "http" else "TLS handshake"


def ok_of_text(ok: int, n: int, partial: int = 0) -> str:
    """How the advice counts a purpose's ok flows among its ``n``: ``395 of 436 flows ok``, and
    when ``partial`` of the ok ones began before the capture (no SYN seen: reason ``partial``)
    ``395 of 436 flows ok (12 of them started before the capture)``."""
    started = f" ({partial} of them started before the capture)" if partial else ""
    return f"{ok} of {n} flows ok{started}"


#: what the checklist says of connection attempts answered from another address or port
#: (:data:`~kscc_traffic.classify.ANSWERED_ELSEWHERE`), after "these N connection attempts were"
ELSEWHERE_FIX = ("answered from another address or port than the one contacted (see each flow's detail), an answer "
                 "the agent does not take: the port is open there, no firewall rule is the fix; fix the address "
                 "translation: NAT loopback (hairpin NAT) on the router for a server on the agents' own network "
                 "reached by its public or forwarded address (or give the agents its own address), the server's "
                 "answers routed back through the NAT of a port forward, a load balancer's source NAT")


def _readiness_row(r, n: int, ok: int, bl: int, un: int, other: int, reasons, proxied: int = 0,
                   ok_named: int | None = None, ok_answered: int | None = None,
                   v6: tuple[int, int] | None = None, bl_tls: int = 0, bl_named: int | None = None,
                   bl_stale: int = 0, un_reasons: dict[str, int] | None = None, bl_closed: int = 0,
                   one_way: int = 0, bl_reset: tuple[int, int] = (0, 0),
                   closed_at: tuple[tuple[str, ...], tuple[int, ...]] = ((), ()), bl_route: int = 0,
                   bl_http: int = 0, http_statuses: tuple[str, ...] = (), un_vendor: int = 0,
                   ok_data: int | None = None, bl_icpt: int = 0,
                   un_onprem: int = 0, bl_forged: int = 0, un_failed: tuple[int, int] = (0, 0),
                   un_inbound: int = 0, bl_handshake: int = 0, bl_icmp: dict[str, int] | None = None,
                   proxy_paths: ProxyPaths | None = None, bl_cut: int = 0,
                   caps: tuple[tuple[str, ...], tuple[str, ...], bool] | None = None, bl_mtu: int = 0,
                   bl_acked: int = 0,
                   bl_route_own: int = 0, bl_dp_way: int = 0, bl_elsewhere: int = 0,
                   bl_refused: tuple[int, int] = (0, 0),
                   un_elsewhere: tuple[int, tuple[str, ...]] = (0, ()),
                   bl_redirect: dict[str, int] | None = None, un_console: int = 0, ok_other_cast: int = 0,
                   ok_other_kind: str = "",
                   bl_cert: tuple[int, ...] = NO_CERTS, ok_partial: int = 0,
                   bl_restarted: tuple[int, str] = (0, ""), bl_host: int = 0, bl_local: int = 0,
                   bl_idle: int = 0, bl_path: int = 0, bl_lost: int = 0, bl_stalled: tuple[int, int, int] = (0, 0, 0),
                   bl_dated: int = 0,
                   fam_same: tuple[bool | None, bool | None] = (None, None), bl_plain_reset: int = 0,
                   bl_after_ok: int = 0, bl_intermittent: int = 0, ok_fell: int = 0, bl_dropped: int = 0, v4_seen: bool = True,
                   ok_refused: int = 0, icpt_cause: str = "", ok_slow: int = 0, ok_held: int = 0,
                   bl_slow_server: str = "", bl_nat: tuple[int, int] = (0, 0),
                   bl_nat64: tuple[int, tuple[str, ...], tuple[str, ...]] = (0, (), ()),
                   ok_private: int = 0, bl_portal: tuple[int, str, bool] = (0, "", False), bl_routed: int = 0,
                   bl_cloud_own: int = 0, bl_cut_lost: int = 0) -> dict:
    """One row of :func:`readiness` for rule ``r``: ``n`` flows, of which ``ok``/``bl``/``un``
    ok, blocked and unexpected, ``other`` of the unexpected ones with a reason of
    :data:`NOT_THIS_PURPOSE`, ``proxied`` of the blocked ones through an HTTP proxy
    (``proxy_target``; not those ``tls_intercepted``: a certificate refused inside the tunnel the
    proxy opened), ``ok_named`` of the ok ones with a ``server_name`` that is no IP literal, ``ok_answered`` of
    the ok ones with a packet from the responder (``resp_pkts`` > 0) (None: all), ``v6`` the ok and
    the blocked ones over IPv6 (None: not counted), ``bl_tls`` of the blocked ones ``tls_failed``
    or refused in HTTP by a filter (detail :data:`~kscc_traffic.classify.FILTER_ANSWER`),
    ``bl_named`` of the blocked ones with such a ``server_name`` (None: all), ``bl_stale`` of the
    blocked ones whose SYN was answered by an old connection's packet (detail
    :data:`~kscc_traffic.classify.STALE_ANSWER`), ``un_reasons`` the unexpected ones per reason
    (the first of each flow's ``reason``; None: not counted), ``bl_closed`` of the blocked ones
    answered by an ICMP port unreachable from the destination itself (detail
    :data:`~kscc_traffic.unreachable.NOT_LISTENING`: nothing listens there), ``bl_forged`` of the
    blocked ones answered by one carrying a cloud server's own address (detail
    :data:`~kscc_traffic.unreachable.CLOUD_FORGED`: most likely a firewall's on the path; nobody
    here can check a service on Kaspersky's cloud: newcomer 23 F3), ``one_way`` the
    unclassified ones seen in one direction only (reason ``one_way``: the agent's packets
    acknowledge the server's, none of which was captured), ``bl_reset`` of the blocked ones (all,
    on the client's subnet) whose SYN a distribution point answered with a TCP reset (detail
    :data:`~kscc_traffic.classify.DP_RESET`: on a LAN, the service is not running more often than
    a firewall resets), ``closed_at`` the servers and the ports (sorted, distinct; at most
    :data:`MAX_CLOSED_AT` servers) of the ``bl_forged`` ones (the advice names them, to report
    to Kaspersky support if no firewall rejects them), ``bl_route`` of the blocked ones
    answered by an ICMP network/host unreachable or no route (:data:`ROUTE_ICMP`: a router with
    no route, an ARP/neighbour failure, an upstream outage), ``bl_http`` of the blocked ones
    whose plain HTTP request, sent straight to the server, an HTTP answer refused
    (:data:`HTTP_REFUSAL`: a web filter's 403…; the TCP port is open), ``http_statuses`` their
    statuses (sorted, distinct), ``un_vendor`` of the unexpected ones ``host_mismatch`` to a name
    under kaspersky.com (:func:`vendor_names`: Kaspersky's other services, :data:`VENDOR_OTHER`),
    ``ok_data`` of the ok ones that carried a payload byte (``orig_bytes`` or ``resp_bytes`` > 0;
    None: all): a TLS purpose whose ok flows are all bare TCP handshakes (a port probe) is
    "port open", not verified (newcomer 23 F12), ``bl_icpt`` of the blocked ones ``tls_intercepted``
    (a TLS-inspecting proxy's certificate the client refused: the handshake aborted; counted in
    ``bl_tls`` too), ``un_onprem`` of the unexpected ones to a distribution point's port whose
    server has a cloud name (detail :data:`~kscc_traffic.classify.ONPREM_PORT`; counted in
    ``other`` too), ``un_failed`` (all, to a name under kaspersky.com) of the unexpected
    ``host_mismatch`` ones whose connection itself failed (detail
    :data:`~kscc_traffic.classify.MISMATCH_FAILED`: no answer, a reset, an ICMP error: their advice
    says so, never "nothing to change"; not the ``un_onprem`` ones, whose advice is the agent's
    settings), ``un_inbound`` of the unexpected ones ``wrong_direction``
    opened from outside towards a local address (detail :data:`~kscc_traffic.classify.INBOUND`),
    ``bl_handshake`` of the blocked ones whose server's side reset or closed the
    connection right after the handshake (detail :data:`~kscc_traffic.classify.HANDSHAKE_RESET` or
    :data:`~kscc_traffic.classify.HANDSHAKE_CLOSE`: the port is open, :func:`_handshake_fix`), ``bl_icmp``
    the blocked ones answered by an ICMP error that refuses nothing, per kind
    (:func:`icmp_kinds`: a routing loop, extension headers dropped, the source address refused…;
    their advice replaces opening the port: :func:`_icmp_fix`); the
    ``not_unicast`` ones among ``un_reasons`` (TCP to a broadcast or multicast address) get
    :func:`_group_address_fix`, not the rule's firewall advice; ``proxy_paths`` the flows through
    explicit proxies (:class:`ProxyPaths`; None: not known): the TLS advice of flows inside a
    proxy's tunnel names the proxy (:func:`_tunnel_fix`), and blocked flows all direct while the
    ok ones went through a proxy get :func:`_path_split`. ``bl_cut``: of the blocked ones,
    ``no_answer`` attempts the capture's end cut short (:func:`cut_short`): when they are all the
    blocked ones the advice is to capture longer (:func:`cut_short_fix`, ``status_note``
    :data:`CUT_SHORT_NOTE`), never to open a port; else the advice is the other blocked flows'
    (counted without them) and says how many more were cut short. ``caps``: when the flows come
    from several captures, (the captures of the flagged ones: the blocked ones, else the
    unexpected ones; of the ok ones, in order seen; whether some ok one is in a capture of the
    flagged ones), else None: the advice then names the captures of the flagged flows, and "the
    others worked" says when they were in other captures (:func:`_captures_text`).
    ``bl_refused``: of the blocked ones whose SYN was answered by a reset (not a distribution
    point's, ``bl_reset``), those whose reset came from a device nearer than the server and those
    with the server's own TTL (detail :data:`~kscc_traffic.inspect.REFUSED_NEARER`,
    :data:`~kscc_traffic.inspect.REFUSED_OWN`: the TTL of the address's packets on other
    connections): the first are a firewall's refusal, the second most likely the server's own
    (nothing listens on the port there, or its host firewall: the advice checks the agent's port first).
    ``bl_restarted``: of those the server's own reset refused, how many went to a server address and
    port that accepted a connection in the capture, and what the advice says of them instead of
    checking the port (:meth:`RefusedAccepted.said`: when the port was refused and accepted, the
    service down or restarting).
    ``un_elsewhere``: (of the unexpected ``host_mismatch`` ones, those on a KSC-only port to a name
    not under kaspersky.com, their first names: :func:`elsewhere_rows`): the agent pointed at
    another Administration Server — they make the purpose ``unexpected`` (not another program's
    traffic: counted out of ``other`` for the status) and their advice comes first.
    ``bl_redirect``: of the blocked ones whose ClientHello an HTTP redirect answered (detail
    :data:`REDIRECT_ANSWER`: a captive portal or web filter; counted in ``bl_tls`` too), how many per
    status (None: none): their advice is the portal's (:func:`_redirect_fix`), not TLS inspection's.
    ``un_console``: of the ``un_vendor`` ones, those to the Cloud Console server's own names
    (:func:`console_names`; :func:`_unexpected_fix`'s ``console``).
    ``ok_other_cast``: of the ok ones, datagrams to a broadcast or multicast purpose's port sent as
    the other kind (detail :data:`OTHER_CAST`: a broadcast to the distribution point's multicast
    port 15001): not the documented delivery, so they verify nothing and feed no advice (the
    multicast's IGMP snooping); the row counts them apart (:func:`_other_cast_text`), and when
    they are all the purpose's flows it is "not seen" with the note :func:`other_cast_note`
    (newcomer 30 F6); a unicast to the multicast port is such a datagram too (break-it s56 v6 #7);
    ``ok_other_kind`` what they were sent as (:func:`other_cast_kind`; '': the other group kind).

    ``bl_dated``: of the blocked ``tls_intercepted`` ones, those the client refused as out of date
    (:func:`dated_count`): the advice adds the agent's clock (:func:`dated_note`).

    ``bl_acked``: of the blocked ones, TLS sessions whose ClientHello the server acknowledged, then
    sent nothing (:func:`hello_acked`): all of them, advised :data:`HELLO_ACKED_FIX`.
    ``bl_mtu``: of the blocked ``tls_failed`` ones, those whose detail tells of a path-MTU black
    hole (:data:`MTU_HOLE`): advised :data:`MTU_FIX`, not a proxy or TLS inspection.
    ``bl_cert``: of the blocked ``tls_failed`` ones, ``(public, hidden, client, client_hidden, pinned, other,
    versions, suites)`` ended by the client on the server's certificate, or by the server on the client's
    or on what the client offered (:func:`cert_counts`):
    advised :func:`cert_fix`, the agent's own certificate for the latter; for the former the agent's root
    certificates and clock (and, TLS 1.3 hiding the certificate, TLS inspection too).
    ``bl_dp_way``: of the blocked ones (a distribution point's purpose), those refused by an ICMP
    error from a router or firewall on the way (detail :data:`~kscc_traffic.classify.DP_PATH_REFUSED`):
    its rules are to change, not the distribution point's (s55 DP pass #12).
    ``bl_route_own``: of the blocked ones, those answered by such a network/host/address
    unreachable from the server's own address (:data:`ROUTE_OWN`; not counted in ``bl_route``).
    ``bl_elsewhere``: of the blocked ones, unanswered SYNs a SYN-ACK from another address or port
    acknowledged (detail :data:`~kscc_traffic.classify.ANSWERED_ELSEWHERE`, reason ``wrong_source``):
    the address translation is to fix, no port to open (:data:`ELSEWHERE_FIX`).

    ``ok_partial``: of the ok ones, those whose start the capture missed (reason ``partial``: begun
    before it, no SYN seen, judged on what was seen): still counted among the ok and the flows, as
    Zeek's conn.log and Wireshark's conversations count such connections, but the advice's figure
    says how many (:func:`ok_of_text`): they show a connection that worked, not a new one opened.
    ``bl_dropped``: of the blocked ones, IPv6 attempts nothing answered that their client followed
    over IPv4 at once (detail :data:`~kscc_traffic.classify.DROPPED_FALLBACK`): not cut short by the
    capture's end (the client stopped waiting), their IPv6 path drops the port silently: the advice
    says so (:func:`dropped_fallback_text`), not to capture longer (newcomer s59 #4).
    ``v4_seen``: the run holds a unicast flow over IPv4 (:func:`_v4_unicast`): then a purpose whose
    flows all went over IPv6 is not advised "over IPv6" alone (a dual-stack host that had not tried
    IPv4 yet: the IPv4 rule is untested, review s60 #3).
    ``ok_fell``: of the ok ones, IPv6 attempts refused that their client followed over IPv4
    (:func:`_fell_back`): ok, but no connection of theirs worked, so when they are all the ok ones
    the advice does not say "the others worked".

    ``bl_host``: of the blocked ones, TCP attempts whose correct SYN-ACKs were captured on the
    originator's own host (or network segment) while it kept sending its SYN (detail
    :data:`~kscc_traffic.classify.SYNACK_NOT_TAKEN`): the answers reached that host, whose own
    firewall, security software or filter driver dropped them; advised :func:`host_drop_fix`, not
    to allow outbound ports (newcomer 36 F2).

    ``bl_lost``: of the blocked ones, TCP attempts whose SYN-ACKs were captured where the server
    is (or between) and never reached the originator, which kept sending its SYN (detail
    :data:`~kscc_traffic.classify.SYNACK_LOST`): the SYN got through, the way back did not;
    advised :func:`return_path_fix`, not to allow the inbound port (break-it s55 dp #2).

    ``bl_local``: of the blocked ones, connections to a local address a cloud server's name led to
    (detail :data:`~kscc_traffic.classify.LOCAL_CLOUD`: the cloud server is never there): the agent's
    DNS or hosts file sends it there; advised :func:`local_cloud_fix`, not to allow outbound ports
    (break-it s50 #1).

    ``bl_idle``: of the blocked ones, connections that went on after an idle time longer than the
    idle timeout (detail starting :data:`~kscc_traffic.classify.IDLE_GOES_ON`) and got no answer
    any more: a firewall or NAT dropped the idle connection; advised :func:`idle_drop_fix`, not to
    allow outbound ports (the port worked before; break-it s50 #2).

    ``fam_same``: :func:`same_destinations` of the purpose (the blocked flows over one address
    family and the ok ones over the other went to a same server name: True, to other servers
    only: False, not known: None): the split of the families is said only when not False
    (:func:`_family_split`; break-it s57 #10). ``bl_plain_reset``: of the blocked ones, connection
    attempts refused by a TCP reset from no device nearer than the server (:func:`plain_resets`):
    when they are all the blocked ones, over IPv6, and IPv4 to the same servers worked, the advice
    is :func:`fallback_fix` (the server's host does not take the port over IPv6, the client fell
    back: nothing to open; break-it s57 #9). ``bl_after_ok``: of the blocked ones, unanswered
    attempts that followed a worked connection of the same client to the same server address and
    port by at most :data:`RATE_WINDOW_S` (:class:`RateWatch`): advised :func:`rate_limit_fix`, a
    limit on new connections (all of them: no port to open; break-it s57 #12). ``bl_intermittent``:
    of the others, unanswered attempts of a client to a server address and port it connected to
    at other times of the capture (:meth:`RateWatch.intermittent`): advised
    :func:`intermittent_fix` (newcomer s63 #4: "compare clients, addresses and ports" where all
    three were the same).

    ``ok_refused``: of the ok ones, TLS sessions the server reset right after the agent's first
    request (detail :data:`~kscc_traffic.classify.REFUSED_AFTER_REQUEST`): a verified purpose gets
    :data:`REFUSED_NOTE` and :func:`refused_fix` (newcomer s60 #3). ``icpt_cause``: the one cause its
    ``tls_intercepted`` flows' details show (:func:`intercepted_cause`, '' several or none), which
    their advice names (:func:`intercepted_text`; newcomer s60 #10). An unexpected purpose whose flows
    all went to Kaspersky's other services, answered, gets :data:`VENDOR_NOTE` (newcomer s60 #11).
    ``bl_nat``: ``(copies, left)`` (:func:`kscc_traffic.natadvice.nat_counts`): the blocked flows
    that are a NAT's translated copies of others (not counted in ``n`` nor ``bl``, nor in any other
    count: each connection is counted once, by its inside copy, :func:`nat_copy_mask`), and of the
    blocked ones the inside copies whose SYNs left the device unanswered;
    ``bl_nat64``: those to NAT64 addresses, with their prefixes and IPv4 servers
    (:func:`kscc_traffic.natadvice.nat64_seen`): both said by :func:`kscc_traffic.natadvice.nat_fix`
    and :func:`~kscc_traffic.natadvice.nat64_fix` (newcomer s61 A, B).

    ``bl_cloud_own``: of the blocked ones, those answered by a port unreachable carrying a cloud
    server's own address with that server's own TTL (hop limit) (:func:`cloud_refusals`: not counted
    in ``bl_forged``; their servers in ``closed_at`` too): the server's own refusal, advised
    :func:`cloud_own_fix`, and no address family's path is said to be blocked for them.
    ``bl_cut_lost``: of the ``bl_cut`` ones, those right before the file was cut mid-record
    (:func:`cut_lost`): :func:`cut_short_fix` says the lost record may have held the answer.

    :returns: the row as a dict, the keys of :func:`readiness`'s columns."""
    bl_all = bl
    note = ""
    if bl_cut and bl_cut >= bl:
        # every blocked flow an attempt the capture's end cut short: nothing shows a block
        v6, note = None, CUT_SHORT_NOTE
    elif bl_cut:
        # advised from the other blocked flows; the cut ones said apart (the address families
        # still told when every blocked flow, cut or not, was of one: newcomer 35 F5, a dual-stack
        # agent's IPv6 attempts unanswered, the last one cut by the capture's end)
        v6 = (v6[0], v6[1] - bl_cut if v6[1] else 0) if v6 is not None and v6[1] in (0, bl) else None
        bl = bl - bl_cut
    mine = other - un_elsewhere[0]     # (not this purpose's: not the agent's own flows elsewhere)
    doc_ok = ok - ok_other_cast        # (the ok ones the documented delivery: newcomer 30 F6)
    status = ("blocked" if bl else "unexpected" if un > mine or (mine and not ok)
              else "verified" if doc_ok else "seen one-way" if one_way else "not seen")
    if status == "not seen" and ok_other_cast:
        note = other_cast_note(r, ok_other_cast, ok_other_kind)
    fix = cut_short_fix(r, bl, bl_cut_lost) if note == CUT_SHORT_NOTE else r.fix
    if status == "blocked" and bl_routed and not ok and r.opener == PINNED_OPENER and note != CUT_SHORT_NOTE:
        # unanswered SYNs to a distribution point on another subnet: its firewall, or one between
        # the subnets (newcomer s61 #1); said before the other cases, which build on ``fix``; not
        # when some of the purpose's connections worked (they crossed the devices between: a busy
        # distribution point's few drops are advised otherwise)
        fix = routed_fix(r, bl, min(bl_routed, bl), fix)
    if status == "seen one-way":
        # TCP connections whose server's packets are all missing, though the agent acknowledged them
        fix = (f"{one_way} connection{'s' if one_way != 1 else ''} on {r.transport.upper()} {r.port_text} seen in "
               "one direction only: the agent's packets acknowledge the server's answers (its SYN-ACK, and data), "
               "but the capture holds none of the server's packets (a mirror port or tap that sees one direction, "
               "or asymmetric routing), so it shows that the server answered, not what it said. To verify, "
               f"capture both directions (on the agent itself); what it needs: {r.fix}")
    if status == "verified" and ok_named == 0 and r.host_mask and r.port_hi < SHARED_PORTS_BELOW:
        # answered, but nothing names a server under the mask on a port every browser uses
        status = "port open"
        fix = (f"{ok} flow{'s' if ok != 1 else ''} on {r.transport.upper()} {r.port_text} answered, but "
               f"none named a server ({_name_sources(r)} seen): they may be another "
               f"program's traffic. To verify the purpose, capture from the agent's start (its DNS lookup "
               f"and {_first_exchange(r)} to {r.host_mask})")
    if status == "verified" and ok_data == 0 and r.app_protocol in TLS_PROTOCOLS:
        # a TCP handshake with no byte after it (Test-NetConnection -Port 23101, a SYN scan's
        # connect): the port is open; whether the agent's TLS gets through is not shown
        status = "port open"
        fix = (f"{ok} flow{'s' if ok != 1 else ''} on {r.transport.upper()} {r.port_text} answered, but none carried "
               "a byte (a bare TCP handshake: a port probe such as Test-NetConnection, or a connection closed before "
               "its TLS began): the port is open, the TLS connection itself is not shown. To verify the purpose, "
               f"capture the agent connecting (its TLS handshake to {r.host_mask or 'the documented servers'})")
    if status == "verified" and ok_answered == 0 and r.transport == "udp":
        # datagrams that expect no answer (broadcasts, multicasts): sent, but received?
        status = "seen one-way"
        fix = (f"{doc_ok} flow{'s' if doc_ok != 1 else ''} on UDP {r.port_text}"
               f"{f' {r.cast}' if ok_other_cast else ''} seen, none answered (no answer is "
               f"expected{_other_cast_text(r, ok_other_cast, ok_other_kind)}): this capture shows that they were sent, not that they were received (one taken on a "
               "receiving device shows that they reached its interface; its host firewall may still drop them). "
               "To verify, check on a receiving device (a capture there, if this is not one, and its firewall "
               f"log); what it needs: {_cast_fix(r, ok, v6)}")
    if status == "verified" and ok_refused:
        # the TLS sessions worked on the network, and the server reset them at the agent's first
        # request: what to check is the agent's server address, no port (newcomer s60 #3)
        note, fix = REFUSED_NOTE, refused_fix(r, ok_refused, ok)
    if status == "verified" and (ok_slow or ok_held or ok_private):
        # the connections worked, slowly: a server slow to answer the handshake, or one that
        # stopped reading until the agent gave up (newcomer s61 #5); re-signed by a private CA
        # (break-it s62 #1)
        said = [(n_, f_) for n_, f_ in ((REFUSED_NOTE, fix) if ok_refused else ("", ""),
                                        (PRIVATE_NOTE, private_fix(r, ok_private, ok)) if ok_private else ("", ""),
                                        (SLOW_NOTE, slow_fix(r, ok_slow, ok)) if ok_slow else ("", ""),
                                        (HELD_NOTE, held_fix(r, ok_held, ok)) if ok_held else ("", "")) if n_]
        note, fix = "; ".join(n_ for n_, _ in said), ". ".join(f_ if not i else f_[:1].upper() + f_[1:]
                                                               for i, (_, f_) in enumerate(said))
    if status == "blocked" and bl == bl_tls and bl != proxied and bl == bl_icpt and 0 < bl_dated == bl:
        # every one refused as out of date: the agent's clock first, then the certificate (a
        # private CA's: an inspecting device's?); newcomer s63 #6 had the inspection first
        fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
               f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open, nothing to "
               "open in the firewall), then the TLS handshake was aborted: the client refused the server's "
               "certificate as out of date (see each flow's detail): check the agent's system time and time "
               "synchronisation first (a wrong clock makes every certificate out of date); else the certificate, "
               "from a CA that is no public one, is a TLS-inspecting proxy's: renew the inspecting device's CA or "
               f"certificate, or {EXCLUDE_TEXT}" + (f" ({r.host_mask})" if r.host_mask else ""))
    elif status == "blocked" and bl == bl_tls and bl != proxied and bl == bl_icpt:
        # the client refused a TLS-inspecting proxy's certificate: the port is open, the
        # inspection is what has to change
        fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
               f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open, nothing to "
               "open in the firewall), then the TLS handshake was aborted on a TLS-inspecting proxy's certificate "
               f"(see each flow's detail): tls_intercepted: {intercepted_text(icpt_cause)}"
               + (f" ({r.host_mask})" if r.host_mask else "") + dated_note(bl_dated, bl_icpt))
    elif status == "blocked" and bl == bl_tls and bl != proxied:
        # the TCP handshakes completed: the port is open, something in the path ended the TLS
        fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
               f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open), then the "
               f"TLS handshake failed: {_tls_failed_text(r)}" + _intercepted_note(bl_icpt, bl_dated))
        if bl_mtu and bl_mtu == bl and not bl_icpt:
            # the TLS failed because the server's large segments never arrived (break-it v6 32)
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open), then the "
                   f"TLS handshake failed: {MTU_FIX}")
        elif bl_mtu:
            fix += f"; {bl_mtu} of them: {MTU_FIX}"
        elif bl_acked == bl and not bl_icpt and r.opener != PINNED_OPENER:
            # the ClientHello arrived, the answer did not: a lost full-size packet as much as a device
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open), then the "
                   f"TLS handshake failed: {HELLO_ACKED_FIX}"
                   + (f": let the agent's TLS to {r.host_mask} through uninspected" if r.host_mask else ""))
        if sum(bl_cert) and sum(bl_cert) == bl and not bl_icpt and not bl_mtu:
            # the client refused the server's certificate: the agent's trust store or clock, or an
            # inspecting proxy TLS 1.3 hides (break-it net 33 F6)
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open, nothing "
                   f"to open in the firewall), then {cert_fix(r, bl_cert, alone=True)}")
        elif sum(bl_cert):
            fix += f"; {cert_fix(r, bl_cert)}"
    # (redirects inside a proxy's tunnel: advised with the tunnel's TLS)
    redirects = 0 if proxy_paths and proxy_paths.tunnel else sum((bl_redirect or {}).values())
    if status == "blocked" and redirects and bl == redirects and not proxied:
        # a captive portal or web filter answered the ClientHello with its page (newcomer 29 F4)
        fix = _redirect_fix(r, bl, bl_redirect, fix, alone=True)
    if status == "blocked" and bl == bl_tls and bl != proxied and proxy_paths and proxy_paths.tunnel:
        fix = _tunnel_fix(r, bl, bl_icpt, proxy_paths, "this connection" if bl == 1 else f"these {bl} connections")
    if status == "blocked" and bl == bl_stale:
        # the SYNs reached something that still holds an old connection: the port is not closed
        fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} on {r.transport.upper()} "
               f"{r.port_text}: the SYN was answered by an old connection's packets (a challenge ACK, a "
               "SYN-ACK for another sequence number), which the agent reset: a firewall, NAT or the server "
               "still holds a stale connection on that address and port. Clear it there (or shorten the "
               "device's TCP timeouts); no port is to be opened")
    if status == "blocked" and bl_handshake:
        fix = _handshake_fix(r, bl, bl_handshake, fix)
    if status == "blocked" and bl_host and bl_lost and bl_host + bl_lost == bl:
        # (all answered, some SYN-ACKs dropped by the agent's host, the others lost on the way back)
        fix = f"these {bl} connection attempts were answered: nothing is to be opened for the SYNs"
        fix = return_path_fix(r, bl, bl_lost, host_drop_fix(r, bl, bl_host, fix))
    elif status == "blocked" and bl_host:
        fix = host_drop_fix(r, bl, bl_host, fix)
    elif status == "blocked" and bl_lost:
        fix = return_path_fix(r, bl, bl_lost, fix)
    if status == "blocked" and bl_local:
        fix = local_cloud_fix(r, bl, bl_local, fix)
    if status == "blocked" and proxied and bl - proxied == bl_tls:
        fix = _proxy_fix(r, bl, proxied, bl_tls, bl_icpt, proxy_paths)
    elif status == "blocked" and proxied:
        # refused by the proxy (the agent's configured path), and others blocked otherwise (the
        # agent trying direct next): the proxy's advice first, then theirs (newcomer 28 F1)
        k = bl - proxied - bl_tls
        # (not ``other``: that is the count of unexpected flows of other purposes, used below)
        rest = (f"{k} of them" if bl_tls else "the other one" if k == 1 else f"the {k} others")
        direct = bool(proxy_paths and proxy_paths.bl_direct >= k)
        fix = (f"{_proxy_fix(r, bl, proxied, 0, 0, proxy_paths)}; {rest} "
               + (f"{'was' if k == 1 else 'were'} blocked going direct (through no proxy)" if direct
                  else f"{'was' if k == 1 else 'were'} blocked") + f": {fix}")
    if status == "blocked" and bl_forged:
        # a port unreachable carrying a cloud server's own address: nobody here can check a
        # service on Kaspersky's cloud; a firewall's reject rule answers in the blocked address's
        # name, so that is the likely sender (or the cloud refused the port: Kaspersky's to know)
        hosts, ports = closed_at
        where = (f"{r.transport.upper()} {_list_text(ports, 'port')} on "
                 f"{_list_text(hosts, 'server')}")
        report_it = f"if none does, report the server and port ({where}) to Kaspersky support"
        if bl == bl_forged:
            fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP port "
                   f"unreachable carrying the cloud server's own address, refusing {where}: most likely "
                   "forged by a firewall on the path (a reject rule answers in the name of the address it "
                   "blocks). Check the firewalls and proxies between the agent and the Internet for a rule "
                   f"that rejects it: {fix}; {report_it}")
        else:
            fix += (f"; {bl_forged} of them {'was' if bl_forged == 1 else 'were'} answered by ICMP port "
                    f"unreachable carrying the cloud server's own address ({where}): most likely forged by a "
                    f"firewall on the path; {report_it}")
    if status == "blocked" and bl_cloud_own:
        # a port unreachable carrying a cloud server's address with that server's own TTL: its own
        # stack refused the port (the path works), not a firewall answering in its name
        hosts, ports = closed_at
        fix = cloud_own_fix(r, bl, bl_cloud_own, f"{r.transport.upper()} {_list_text(ports, 'port')} on "
                            f"{_list_text(hosts, 'server')}", fix, ttl_word(v6, bl))
    if status == "blocked" and bl_closed:
        # the destination host itself said nothing listens on the port: the datagram (or SYN) got
        # there; the service may simply not run (a firewall in the path is not the cause)
        service = _service_check(r)
        if bl == bl_closed:
            fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by the destination "
                   f"host itself with ICMP port unreachable: {r.transport.upper()} {r.port_text} reached it, "
                   f"but nothing listens there: {service}; if it is, the host's own firewall rejects it: {fix}")
        else:
            fix += (f"; {bl_closed} of them {'was' if bl_closed == 1 else 'were'} answered by the destination "
                    f"host itself with ICMP port unreachable (nothing listens there): {service}")
    resets, own = bl_reset
    # every blocked flow a reset from the DP itself, over one address family, the ok ones over the
    # other: the service runs (it answered), it listens on that family only or its firewall lacks
    # that family's rule; no route to check (no router between them: newcomer 23 F11)
    bad_family = _bad_family(ok, bl, v6) if status == "blocked" and ok and bl == resets == own else ""
    # every blocked flow an IPv6 attempt refused by a reset from no device nearer than the server,
    # IPv4 to the same servers worked: the client's fallback after a host that does not take the
    # port over IPv6 (not a DP's on the client's subnet: bad_family, advised above)
    fallback = (status == "blocked" and not un and not proxied and not bad_family and fam_same[0] is True
                and bl_plain_reset >= bl > 0 and _bad_family(ok, bl, v6) == "IPv6" and r.transport == "tcp")
    if status == "blocked" and resets:
        # the distribution point's address answered the SYN with a reset: a service not running
        # (not enabled) there, or its own firewall; on another subnet a firewall between may be it
        service = _service_check(r)
        if bad_family:
            good = "IPv4" if bad_family == "IPv6" else "IPv6"
            fix = (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} "
                   f"answered by a TCP reset from the distribution point itself over {bad_family} (on the client's "
                   f"subnet: no router between them), while {good} worked: the service may listen on {good} only, "
                   f"or the distribution point's host firewall lacks the {bad_family} rule: let the service listen "
                   f"on {bad_family} too, or add the {bad_family} rule ({fix})")
        elif bl == resets and bl_restarted[0] >= resets:
            # (the distribution point accepted the port in the capture: it listens; it refused these
            # clients, or was restarting: break-it s53 DP pass #2, was "nothing listens there")
            restart_text = bl_restarted[1]
            then = (CLIENTS_REFUSED_FIX if restart_text.endswith(CLIENTS_REFUSED) else
                    "if it recurs, check the service on the distribution point (its log, restarts and load)")
            fix = (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} "
                   f"answered by a TCP reset from the distribution point{' itself' if own == resets else ''}, but "
                   f"{restart_text} (the port is right): {then}")
        elif bl == resets == own:
            fix = (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} "
                   f"answered by a TCP reset from the distribution point itself (on the client's subnet: no router "
                   f"between them): {r.transport.upper()} {r.port_text} reached it, but nothing listens there: "
                   f"{service}; if it is, its own firewall rejects it: {fix}")
        elif bl == resets:
            fix = (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} "
                   f"answered by a TCP reset from the distribution point's address: nothing listens there, or a "
                   f"firewall rejects it (its own, or one between the subnets): {service}; if it is: {fix}")
        elif bl_restarted[0] >= resets:
            fix += (f"; {resets} of them {'was' if resets == 1 else 'were'} answered by a TCP reset from the "
                    f"distribution point{' itself' if own == resets else ''}, but {bl_restarted[1]}")
        else:
            fix += (f"; {resets} of them {'was' if resets == 1 else 'were'} answered by a TCP reset from the "
                    f"distribution point{' itself' if own == resets else ''} (nothing listens there?): {service}")
    nearer, own_rst = bl_refused
    # (the attempts among the blocked flows: connections going on after an idle time are advised
    # apart, idle_drop_fix, and their resets counted in neither; break-it s51 pass 4 #4)
    attempts = bl - bl_idle - bl_path - bl_stalled[0] - bl_stalled[2]
    these = "this connection attempt was" if attempts == 1 else f"these {attempts} connection attempts were"
    restarted, restart_text = bl_restarted
    restarted = min(restarted, own_rst)
    # (the IP header field the resets' sender is told by: IPv6 calls it the hop limit)
    field = ttl_word(v6, bl)
    restart_text = restart_text.replace("copies its TTL", f"copies its {field}")
    if status == "blocked" and own_rst and restarted == own_rst:
        # the same server and port accepted a connection in the capture: the port is right, the
        # service was not running when refused (a restart), nothing to check in the agent's settings
        if attempts == own_rst:
            then = (CLIENTS_REFUSED_FIX if restart_text.endswith(CLIENTS_REFUSED) else
                    "if it recurs, check the service on that server and what is in front of it (its log, restarts "
                    "and load; a load balancer's backends)")
            fix = (f"{these} "
                   f"answered by a TCP reset with the server's own {field} (as its packets on other connections), but "
                   f"{restart_text} (the port is right): {then}")
        else:
            fix += (f"; {own_rst} of them {'was' if own_rst == 1 else 'were'} answered by a TCP reset with the "
                    f"server's own {field}, but {restart_text}")
    elif status == "blocked" and own_rst:
        # the reset came with the server's own TTL: it got there, nothing listens (not a firewall)
        where = f"{r.transport.upper()} {r.port_text}"
        # (a port the agent is set to use only where the page documents a range: the Administration
        # Server's; one fixed port, 443, is nothing to check in its settings: newcomer s55 #4)
        ranged = r.port_hi > r.port_lo
        if attempts == own_rst:
            check = (" Check first the port the agent is set to use (the Administration "
                     "Server's address and port in the agent's settings or installation package: the documented "
                     f"ones are {where}, the server's own port within them); if it is right, the service is not "
                     "running there or a firewall rejects the port (the server's own, or one on the path)" if ranged
                     else f" The service on {where} is not running there, or a firewall rejects the port (the "
                          "server's own, or one on the path)")
            means = REFUSED_OWN_MEANS.replace("server's TTL", f"server's {field}")
            fix = (f"{these} "
                   f"answered by a TCP reset with the server's own {field} (as its packets on other connections): "
                   f"{means}.{check}")
        else:
            fix += (f"; {own_rst} of them {'was' if own_rst == 1 else 'were'} answered by a TCP reset with the "
                    f"server's own {field}: most likely the server's own answer (nothing listens on that port there, "
                    "or its host firewall rejects it)" + (": check the port in the agent's settings" if ranged else ""))
        if restarted:
            fix += f"; {restarted} of them: {restart_text}"
    if status == "blocked" and nearer:
        # the reset came from fewer hops away than the server's own packets: a firewall's
        if attempts == nearer:
            fix = (f"{these} "
                   "answered by a TCP reset from a device nearer than the server (fewer hops than the server's own "
                   f"packets on other connections): a firewall refuses the port: {fix}")
        else:
            fix += (f"; {nearer} of them {'was' if nearer == 1 else 'were'} answered by a TCP reset from a device "
                    "nearer than the server: a firewall refuses the port")
    if status == "blocked" and bl_idle:
        # (after the refusals' advice, which may replace the whole text: break-it s51 pass 4 #4)
        fix = idle_drop_fix(r, bl, bl_idle, fix)
    if status == "blocked" and bl_path:
        fix = path_reset_fix(r, bl, bl_path, fix, field)
    if status == "blocked" and (bl_stalled[0] or bl_stalled[2]):
        fix = stalled_fix(r, bl, bl_stalled, fix)
    if status == "blocked" and bl_route:
        # a router said it cannot deliver: routing, not (only) a firewall's refusal
        route = ("no route to the destination, an ARP/neighbour failure at the last hop, or an upstream "
                 "outage: check the routes (default gateway, VPN split tunnel) and that the router reaches "
                 "the server")
        if bl == bl_route:
            fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP network or "
                   f"host unreachable (or no route) from a router: {route}; a firewall rejecting it may answer "
                   f"the same: {fix}")
        else:
            fix += (f"; {bl_route} of them {'was' if bl_route == 1 else 'were'} answered by ICMP network or host "
                    f"unreachable (or no route) from a router: {route}")
    if status == "blocked" and bl_route_own:
        if bl == bl_route_own:
            fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP network, host or "
                   f"address unreachable (or no route) {ROUTE_OWN}: {fix}")
        else:
            fix += (f"; {bl_route_own} of them {'was' if bl_route_own == 1 else 'were'} answered by ICMP network, "
                    f"host or address unreachable (or no route) {ROUTE_OWN}")
    if status == "blocked" and bl_icmp:
        fix = _icmp_fix(bl, bl_icmp, fix)
    if status == "blocked" and bl_elsewhere:
        fix = (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} "
               f"{ELSEWHERE_FIX}" if bl_elsewhere >= bl else
               f"{fix}; {bl_elsewhere} of them {'was' if bl_elsewhere == 1 else 'were'} {ELSEWHERE_FIX}")
    if status == "blocked" and bl_dp_way and r.opener == "agent_to_dp":
        way = (f"refused by ICMP administratively prohibited from a router or firewall on the way, not by the "
               f"distribution point (see each flow's detail): allow {r.transport.upper()} {r.port_text} from the "
               "managed devices to the distribution point in that device's rules")
        fix = (f"{'this connection was' if bl == 1 else f'these {bl} connections were'} {way}; the distribution "
               "point was not reached" if bl_dp_way >= bl else
               f"{fix}; {bl_dp_way} of them {'was' if bl_dp_way == 1 else 'were'} {way}")
    if status == "blocked" and bl_http:
        # an HTTP answer refused the request on an open port: a URL filter's policy, not the firewall
        said = f"HTTP {'/'.join(http_statuses) or '4xx/5xx'}"
        where = r.host_mask or "the documented servers"
        # (3xx: a captive portal's or filter's redirect to its own page, classify._foreign_redirect;
        # 2xx: a page served where a CRL or OCSP response was asked for, classify._page_answer;
        # 511: RFC 6585 §6, a captive portal wants this network logged in, break-it s52 v6 #9)
        kinds = [text for code, text in (
            ("5", "511 (Network Authentication Required) is a captive portal's answer: the network wants a login "
                  "or its terms accepted first"),
            ("2", "a 2xx answer that is an HTML page where a CRL, an OCSP response or a CA certificate was asked for "
                  "is a filter's block page or a captive portal's login page served in the server's place"),
            ("3", "a redirect (3xx) to another site is a captive portal or filter sending the request to its own page"))
            if (PORTAL_STATUS in http_statuses if code == "5" else any(x[:1] == code for x in http_statuses))]
        portal = ""
        if kinds:
            # (a redirect after another kind: said shorter, as it always was after a 511)
            later = [k.replace("is a captive portal or filter sending the request to its own page",
                               "sends the request to its page") for k in kinds[1:]]
            portal = ("; " + kinds[0] + "".join(f", and {k}" for k in later)
                      + ": authenticate this network in the portal, or"
                      + (" exempt the agent's traffic from it, or" if PORTAL_STATUS in http_statuses else ""))
        # (all of them, or all but those an explicit proxy refused, whose advice comes first, below:
        # no port to open for the others either; break-it s56 v6 #4)
        only_http = bl == bl_http or (proxied and bl - proxied == bl_http)
        if only_http and set(http_statuses) == {PORTAL_STATUS}:
            fix = (f"{'this request was' if bl_http == 1 else f'these {bl_http} requests were'} answered {said} on "
                   f"{r.transport.upper()} {r.port_text}, which is open: a captive portal in the path (RFC 6585 §6: "
                   "the network wants a login or its terms accepted first): authenticate this network in the "
                   f"portal, or exempt the agent's traffic ({where}) from it; no port is to be opened")
        elif only_http:
            fix = (f"{'this request was' if bl_http == 1 else f'these {bl_http} requests were'} answered {said} on "
                   f"{r.transport.upper()} {r.port_text}, which is open: a web filter or transparent proxy refused "
                   f"{'it' if bl_http == 1 else 'them'} by policy"
                   + (" (502-504: or it could not reach the server)" if {"502", "503", "504"} & set(http_statuses)
                      else "")
                   + (portal or ":") + " allow "
                   f"{where} in its URL filter (the agent's plain HTTP requests there); no port is to be opened")
        if only_http and bl != bl_http:
            # (the proxy's refusals first, as for the others blocked besides them, below)
            direct = bool(proxy_paths and proxy_paths.bl_direct >= bl_http)
            fix = (f"{_proxy_fix(r, bl, proxied, 0, 0, proxy_paths)}; "
                   f"{'the other one' if bl_http == 1 else f'the {bl_http} others'}"
                   f"{' went direct (through no proxy)' if direct else ''}: {fix}")
        elif not only_http:
            fix += (f"; {bl_http} of them {'was' if bl_http == 1 else 'were'} answered {said} by a web filter or "
                    f"transparent proxy (the port is open for {'it' if bl_http == 1 else 'them'}){portal or ':'} "
                    f"allow {where} in its URL filter")
    if status == "blocked" and 0 < bl_tls < bl and bl not in (proxied, bl_stale, proxied + bl_tls) \
            and bl_tls > redirects:
        # some of the blocked flows reached the server (or a proxy's tunnel), then their TLS failed
        if bl_tls - redirects > bl_mtu + sum(bl_cert):
            fix += _tls_part(r, bl_tls - redirects - bl_mtu - sum(bl_cert), bl_icpt, proxy_paths)
        if sum(bl_cert):
            fix += f"; {cert_fix(r, bl_cert)}"
        if bl_mtu:
            fix += (f"; {bl_mtu} of them reached the server (the TCP handshake completed), then the TLS handshake "
                    f"failed: {MTU_FIX}")
    if status == "blocked" and bl_portal[0] and not proxied:
        # (the DNS gave a captive portal's address for the server's name: break-it s62 #2)
        fix = portal_fix(bl, bl_portal, fix)
    if status == "blocked" and redirects and (bl != redirects or proxied):
        fix = _redirect_fix(r, bl, bl_redirect, fix, alone=False)
    if status == "unexpected" and (un_reasons or {}).get("not_unicast"):
        fix = _group_address_fix(r, un, un_reasons["not_unicast"], fix)
    if status == "unexpected":
        fix = _unexpected_fix(r, un, other, reasons, blocked_too=False, vendor=un_vendor, onprem=un_onprem,
                              console=un_console,
                              failed=un_failed, inbound=(un_inbound, (un_reasons or {}).get("wrong_direction", 0)),
                              elsewhere=un_elsewhere, icpt_cause=icpt_cause) \
            or fix
        if not bl and un == other and un_vendor >= un and not un_failed[1] and not un_onprem \
                and not un_elsewhere[0] and not (un_console and un_console >= un) \
                and not (un_reasons or {}).get("wrong_direction"):
            # (all of them Kaspersky's other services, answered: nothing to change, said as such,
            # not under "What to change"; the flows stay unexpected: newcomer s60 #11)
            note = VENDOR_NOTE
    # every blocked flow was answered (a reset with the server's own TTL, a TLS failure or
    # interception, an old connection's answer, a handshake ended by the server's side)
    answered_all = status == "blocked" and 0 < bl - bl_idle <= (own_rst + bl_tls + bl_stale + bl_handshake + bl_elsewhere
                                                                + bl_cloud_own)
    if answered_all and not proxied and fix.startswith(f"{r.fix}; "):
        # (no drop nor ICMP refusal, so the firewall rule does not lead; the causes seen do:
        # newcomer 33 F6)
        fix = (f"{'the blocked connection was' if bl == 1 else f'the {bl} blocked connections were'} answered, "
               f"none dropped (no firewall drop or ICMP refusal seen): {fix[len(r.fix) + 2:]}")
    # failed, but nothing names a server under the mask on a port every browser uses: said first
    # (before the counts of the other flows too) and in the status note
    nameless = status == "blocked" and bl_named == 0 and bool(r.host_mask) and r.port_hi < SHARED_PORTS_BELOW
    if status == "blocked" and bl_cut and not note:
        fix += _cut_short_more(bl_cut, bl_all)
    if status == "blocked" and bl_dropped:
        fix += dropped_fallback_text(bl, bl_dropped)
    if fallback:
        fix = fallback_fix(r, bl)
    # (unanswered attempts right after the same client's connection to the same server and port
    # worked: a limit on new connections; not with a proxy's refusals, advised as the proxy's)
    limited = status == "blocked" and not proxied and not un and bl_after_ok > 0
    rate_all = limited and 0 < bl <= bl_after_ok
    if limited:
        fix = rate_limit_fix(r, bl, min(bl_after_ok, bl), fix)
    # (unanswered attempts to a server address and port the same client reached at other times:
    # an intermittent block, not a port to open)
    rest = bl - min(bl_after_ok, bl) if limited else bl
    inter = min(bl_intermittent, rest) if status == "blocked" and not proxied and not un else 0
    if inter:
        fix = intermittent_fix(r, bl, inter, fix)
    if status == "blocked" and un:
        # blocked and unexpected flows: each kind counted, each with its own advice (an intercepted
        # flow's is not to open a port); the others did not all work
        kinds = un_reasons if un_reasons is not None else {}
        split = _family_split(ok, bl, v6, others_ok=False, path=not bad_family and not answered_all, same=fam_same) if ok else ""
        fix = _path_family_fix(r, split, fix)
        split = "; ".join(x for x in (_captures_text(caps, ok), split) if x)
        fix = (f"{ok_of_text(ok, n, ok_partial)}, {bl_all} blocked, {un} unexpected"
               + (f" ({', '.join(f'{c} {x}' for x, c in sorted(kinds.items()))})" if kinds else "")
               + f". For the blocked one{'s' if bl != 1 else ''}{f' ({split})' if split else ''}: {fix}"
               + f". For the unexpected one{'s' if un != 1 else ''}: "
               + _once(fix, bl_all, _unexpected_fix(r, un, other, sorted(kinds), blocked_too=True, vendor=un_vendor, console=un_console, icpt_cause=icpt_cause,
                                                    onprem=un_onprem, failed=un_failed,
                                                    inbound=(un_inbound, kinds.get("wrong_direction", 0)),
                                                    elsewhere=un_elsewhere)
                       or "see each flow's detail (what answered instead of the documented server)"))
    elif ok and status in ("blocked", "unexpected"):
        # one failing flow makes the purpose blocked (or unexpected) however many worked: say so
        others_ok = status == "blocked" and ok + bl_all == n and not note and ok > ok_fell
        split = _family_split(ok, bl, v6, others_ok=others_ok, path=not bad_family and not answered_all, same=fam_same) \
            if status == "blocked" and not fallback and not rate_all else ""
        if status == "blocked" and (path := _path_split(ok, bl, proxy_paths)):
            split, fix = path, _direct_fix(fix)
        if (caps is not None or (inter and inter == bl)) and split.startswith(OTHERS_WORKED):
            split = ""   # (said with the captures; or the others were the same client, server and port)
        fix = _path_family_fix(r, split, fix)
        split = "; ".join(x for x in (_captures_text(caps, ok, others_ok), split) if x)
        fix = f"{ok_of_text(ok, n, ok_partial)}, {bl_all or un} {status}" + (f" ({split})" if split else "") + f": {fix}"
    elif caps is not None and status in ("blocked", "unexpected"):
        fix = f"{status} {_captures_text(caps, 0)}: {fix}"
    if status == "blocked" and not ok and not un and v6 is not None and v6[1] == bl == n and bl and not v4_seen:
        # (every flow of the purpose over IPv6, all blocked: firewalls keep IPv6 rules apart;
        # newcomer s60 #8)
        fix = _only_family_fix(r, "IPv6", fix)
    if status == "blocked":
        # (a NAT64 gateway on the path; both sides of a NAT captured: newcomer s61 A, B)
        # (the NAT's copies are not among ``bl``: each connection counted once, by its inside copy)
        fix = nat_fix(nat64_fix(fix, bl, bl_nat64, r.transport, r.port_text), bl + bl_nat[0], *bl_nat)
    if status == "blocked" and bl_tls and bl_slow_server:
        # a ClientHello left unanswered by a server that answered another one slowly (s61 #5)
        fix += slow_server_text(bl_slow_server)
    if nameless:
        them = "this server" if bl_all == 1 else "these servers"
        if ok or un:
            them = "the blocked flow's server" if bl_all == 1 else "the blocked flows' servers"
        fix = (f"no name was seen for {them} ({_name_sources(r, True)}): {'it' if bl_all == 1 else 'they'} may be "
               "another program's, or the agent's with its DNS answer cached (capture from the agent's start to "
               f"tell); if the agent's: {fix}")
        note = "; ".join(x for x in (NAMELESS_NOTE, note) if x)
    return {"rule": r.id, "transport": r.transport, "ports": r.port_text, "section": r.section,
            "purpose_text": r.purpose, "status": status,
            "status_note": note if status == "blocked" or (status == "not seen" and ok_other_cast)
            or note == VENDOR_NOTE or to_verify(note) else "",
            "flows": n, "ok": ok, "blocked": bl_all, "unexpected": un, "reasons": ", ".join(reasons), "fix": fix}


#: the ``status_note`` of an ``unexpected`` purpose all of whose flows went to Kaspersky names
#: outside its mask, answered (:data:`VENDOR_OTHER`): nothing to change for the Cloud Console, so
#: the table report lists its advice under "Nothing to change", not "What to change" (newcomer s60
#: #11; the flows keep their verdict, ``unexpected``/``host_mismatch``: not this purpose's traffic)
VENDOR_NOTE = "another Kaspersky service: nothing to change"

#: what Kaspersky names outside a purpose's mask are (newcomer 23 F7: dnl-03.geo.kaspersky.com:80,
#: ds.kaspersky.com:443 are update and other services, not a wrong Administration Server address)
VENDOR_OTHER = ("Kaspersky names not on the KSC Cloud Console port page (its other services: updates, KSN, "
                "licensing…)")

#: the domain of the Cloud Console server's own names (the default rules' ``*.ksc.kaspersky.com``):
#: such a name outside a purpose's mask is the Cloud Console contacted on a port the page does not
#: document for it, not another Kaspersky service (newcomer 29 F7)
CONSOLE_DOMAIN = "ksc.kaspersky.com"
#: what a ``host_mismatch`` flow to a name under :data:`CONSOLE_DOMAIN` is
CONSOLE_ELSEWHERE = (f"the Cloud Console server (*.{CONSOLE_DOMAIN}) on a port the KSC Cloud Console port page "
                     "does not document for it")


def idle_drop_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` that went on after an idle
    time longer than the TCP idle timeout and got no answer any more (detail starting
    :data:`~kscc_traffic.classify.IDLE_GOES_ON`): the connection worked before the silence, so a
    firewall or NAT on the path that forgets idle connections dropped it. All of them: that
    advice alone (no port to open); some: added to ``fix`` (the others')."""
    check = (f"a firewall or NAT on the path dropped the idle connection: raise its TCP idle (session) timeout "
             f"for {r.transport.upper()} {r.port_text} above the agent's silences, or let it send keep-alives; "
             "the agent connects again after it")
    if bl == k:
        return (f"{'this connection' if bl == 1 else f'these {bl} connections'} worked, then went on after a "
                f"silence longer than the idle timeout and got no answer any more: {check}; no port is to be "
                "opened")
    return (f"{fix}; {k} of them worked, then went on after a silence longer than the idle timeout and got no "
            f"answer any more: {check}")


def stalled_counts(details, reasons) -> tuple[int, int, int]:
    """Of blocked flows' ``detail`` and ``reason`` texts (equal-length sequences): how many tell of
    a TCP connection that stalled (starting :data:`~kscc_traffic.classify.STALLED`: made, then the
    other side acknowledged none of the last bytes sent again), how many of those add a path-MTU
    black hole's hint (:data:`MTU_HOLE`: full-size segments lost while later bytes arrived), and
    how many are a connection begun before the capture whose data got only resets (``rejected``,
    :data:`~kscc_traffic.classify.SESSION_GONE`; not one going on after an idle silence,
    :data:`~kscc_traffic.classify.IDLE_GOES_ON`: :func:`idle_drop_fix`): ``(stalled, mtu, gone)``."""
    stalled = [str(d) for d in details if str(d).startswith(STALLED)]
    gone = sum(1 for d, r in zip(details, reasons)
               if str(r).split(",")[0] == "rejected" and SESSION_GONE in str(d) and not str(d).startswith(IDLE_GOES_ON))
    return len(stalled), sum(1 for d in stalled if MTU_HOLE in d), gone


def stalled_fix(r, bl: int, counts: tuple[int, int, int], fix: str) -> str:
    """The advice for the blocked flows of rule ``r`` (``bl`` of them) that stalled, or whose
    session was gone (:func:`stalled_counts`: ``(k, mtu, gone)``): the connection was made, so the
    port is open; a device on the path lost or dropped it (its session state lost, a session
    timeout, an asymmetric route past a stateful firewall; a session gone: the server itself too, as
    the reset's TTL may show), or, with the black hole's hint, full-size segments were lost
    (:data:`MTU_FIX`). All of them: that advice alone (no port to
    open); some: added to ``fix`` (the others'; break-it s57 real #1: "allow outbound TCP
    23100-23199" for a connection whose TLS handshake had completed; #3)."""
    k, mtu, gone = counts
    drop = ("a firewall or NAT on the path lost or dropped the established connection (its session state lost: a "
            "fail-over, a restart or a cleared state table; a session or idle timeout; an asymmetric route past a "
            f"stateful firewall), or the path broke: check that device's session handling and log for "
            f"{r.transport.upper()} {r.port_text}")
    if gone:
        # (begun before the capture, its data answered only by resets: the session was gone there)
        what = (f"begun before the capture, {'its' if gone == 1 else 'their'} data answered only by TCP resets: the "
                f"session no longer existed on the other side: the server itself no longer knew it (restarted, or it "
                f"timed the session out), or {drop}")
        if bl == gone:
            fix = f"{'this connection was' if bl == 1 else f'these {bl} connections were'} {what}; no port is to be opened"
        else:
            fix = f"{fix}; {gone} of them {'was' if gone == 1 else 'were'} {what}"
    if not k:
        return fix
    parts = []
    if k - mtu:
        parts.append(drop if not mtu else f"{k - mtu} of them: {drop}")
    if mtu:
        parts.append(MTU_FIX if mtu == k else f"{mtu} of them: {MTU_FIX}")
    said = "; ".join(parts)
    if bl == k:
        return (f"{'this connection was' if bl == 1 else f'these {bl} connections were'} made (the port is open), "
                f"then stalled, the last bytes sent never acknowledged (see each flow's detail): {said}; no port is "
                "to be opened")
    return (f"{fix}; {k} of them {'was' if k == 1 else 'were'} made (the port is open), then stalled, the last bytes "
            f"sent never acknowledged: {said}")


def path_reset_fix(r, bl: int, k: int, fix: str, field: str = "TTL") -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` that worked and were ended by
    a reset a device on the path sent in the server's name (detail starting
    :data:`~kscc_traffic.classify.PATH_RESET`): an IPS or firewall ending the agent's sessions (by
    content, a signature, a session limit). All of them: that advice alone (no port to open);
    some: added to ``fix`` (the others'). ``field``: the IP header field named (:func:`ttl_word`:
    "hop limit" over IPv6)."""
    check = (f"a firewall or IPS on the path ended {'it' if k == 1 else 'them'} (the reset's {field} is not the "
             f"server's): check its IPS, application-control and session policies for {r.host_mask or 'the server'} "
             f"on {r.transport.upper()} {r.port_text} (exempt the agent's traffic from them)")
    if bl == k:
        return (f"{'this connection' if bl == 1 else f'these {bl} connections'} worked, then a reset in the "
                f"server's name ended {'it' if bl == 1 else 'them'}: {check}; no port is to be opened")
    return f"{fix}; {k} of them worked, then a reset in the server's name ended {'it' if k == 1 else 'them'}: {check}"


def local_cloud_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` that went to a local address a
    cloud server's name was resolved to (detail :data:`~kscc_traffic.classify.LOCAL_CLOUD`): the
    cloud server is never at a local address, so the agent's DNS (a split DNS zone, a DNS filter)
    or its hosts file sends it there. All of them: that advice alone (no port to open for them);
    some: added to ``fix`` (the others')."""
    names = f"{r.host_mask} " if r.host_mask else "the cloud server's names "
    check = (f"make the agent's resolver (and hosts file) give {names}the cloud's own public addresses "
             "(a split DNS zone, a DNS filter or a hosts entry answers with a local one)")
    if bl == k:
        return (f"{'this connection' if bl == 1 else f'these {bl} connections'} on {r.transport.upper()} "
                f"{r.port_text} went to a local address for a cloud server's name, where the cloud server "
                f"never is: {check}; no port is to be opened for {'it' if bl == 1 else 'them'}")
    return (f"{fix}; {k} of them went to a local address for a cloud server's name, where the cloud server "
            f"never is: {check}")


def host_drop_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` whose correct SYN-ACKs were
    captured on the originator's own host while it kept sending its SYN (detail
    :data:`~kscc_traffic.classify.SYNACK_NOT_TAKEN`): the network delivered the answers, the
    host's own firewall, security software or filter driver dropped them. All of them: that
    advice alone (no port to open on the network); some: added to ``fix`` (the others')."""
    host, hosts = (("the connecting host", "the connecting host's") if r.opener == "inbound_to_agent"
                   else ("the agent's host", "the agent host's"))
    where = (f"from {r.host_mask} " if r.host_mask else "") + f"on {r.transport.upper()} {r.port_text}"
    check = (f"check {hosts} own firewall (its rules and log for the agent's program), its security software's "
             "network protection (an exclusion for the agent) and packet-filter drivers (VPN clients, traffic "
             f"inspection) for what drops the inbound SYN-ACKs ({where})")
    if bl == k:
        return (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} answered: "
                f"the server's SYN-ACKs reached {host} (the capture, taken there or on its network segment, holds "
                "them) but were never taken, "
                f"the SYN sent again and again: {check}; nothing is to be opened on the network path")
    return (f"{fix}; {k} of them {'was' if k == 1 else 'were'} answered, the SYN-ACKs reaching {host} but never "
            f"taken: {check}")


def return_path_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` whose SYN-ACKs were captured
    where the server is (or between) while the originator kept sending its SYN (detail
    :data:`~kscc_traffic.classify.SYNACK_LOST`): the SYN reached the server, which answered, so the
    inbound port is open; the answers were lost on the way back (a firewall or ACL dropping that
    direction, asymmetric routing past a stateful firewall, the originator's own host firewall).
    All of them: that advice alone; some: added to ``fix`` (the others')."""
    who = "the connecting host" if r.opener == "inbound_to_agent" else "the agent"
    check = (f"check the way back to {who}: a firewall or ACL dropping that direction ({r.transport.upper()} "
             f"from port {r.port_text}), asymmetric routing that sends the answers past a stateful firewall "
             f"which never saw the SYNs, or {who}'s own host firewall (a capture on {who} shows whether "
             "they arrive)")
    if bl == k:
        return (f"{'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'} answered: "
                f"the server's SYN-ACKs (in the capture) never reached {who}, which sent its SYN again and again: "
                f"the SYNs got through, so the port is open on the way in: {check}; nothing is to be opened "
                "for the SYNs")
    return (f"{fix}; {k} of them {'was' if k == 1 else 'were'} answered, the SYN-ACKs never reaching {who}: "
            f"{check}")


def _handshake_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` whose server's side reset or
    closed the connection right after the TCP handshake, before any data (detail
    :data:`~kscc_traffic.classify.HANDSHAKE_RESET` or :data:`~kscc_traffic.classify.HANDSHAKE_CLOSE`), or
    reset it after the client's request, answering none of it (:data:`~kscc_traffic.classify.REQUEST_RESET`;
    break-it 23 F3, F12; a plain HTTP request's: :data:`~kscc_traffic.classify.DIRECT_UNANSWERED`): the
    handshake shows the port open, so not to open it but to look at what answered: on an HTTP
    purpose (certificate checks) a web filter, IPS or transparent proxy refusing the request by
    its content (break-it s55 tls #3), on another cloud purpose a device between the agent and the Internet that completes the
    handshake itself (a SYN proxy, a transparent proxy) and gives up (its own connection to the
    server failed, or its policy), else the cloud (reported to Kaspersky support); on a
    distribution point's, its service or a load balancer in front of it. ``fix`` (the advice so
    far) is replaced when all the blocked flows are such, else the advice is added to it."""
    where = f"{r.transport.upper()} {r.port_text}"
    if r.app_protocol == "http":
        # (a plain HTTP request reset or closed unanswered, classify.DIRECT_UNANSWERED: what refuses a
        # request by its content after the handshake is a web filter's or IPS's policy; break-it s55 tls #3)
        check = ("check the web filters, IPS, transparent proxies and SYN proxies between the agent and the Internet "
                 "for one that refuses the request by its content or completes the handshake itself and gives up "
                 f"(its log names the rule): allow {r.host_mask or 'the documented servers'} in its URL filter; if "
                 "none does, report the server and port to Kaspersky support")
    elif r.opener == CLOUD_OPENER:
        check = ("check the firewalls and proxies between the agent and the Internet for one that completes the "
                 "handshake itself (a SYN proxy, a transparent proxy or load balancer) and then gives up: its own "
                 "connection to the server failing, or its policy refusing it; if none does, report the server and "
                 "port to Kaspersky support")
    else:
        check = (f"{_service_check(r)} and accepting this client, and any load balancer or proxy in front of it "
                 "that accepts connections with no server behind it")
    text = (f"the SYN on {where} was answered by a SYN-ACK (the port is open: nothing to open in the firewall), then "
            f"the server's side reset or closed the connection before any data, or reset it after the client's "
            f"request answering none of it (see each flow's detail): {check}")
    if k >= bl:
        return f"{'this connection' if bl == 1 else f'these {bl} connections'}: {text}"
    return f"{fix}; {k} of them: {text}"


def _group_address_fix(r, un: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``un`` unexpected flows of rule ``r`` that are TCP to a
    broadcast or multicast address (reason ``not_unicast``; break-it 23 F4): no TCP connection
    can be made to one (RFC 1122 §4.2.3.10), so not to open a port but to correct the server
    address the sender uses. ``fix`` (the advice so far) is replaced when all the unexpected flows
    are such, else the advice is added to it."""
    text = (f"TCP to a broadcast or multicast address on {r.transport.upper()} {r.port_text} (see each flow's "
            "detail): no TCP connection can be made to one (RFC 1122 §4.2.3.10), and no firewall rule changes "
            "that; correct the address the sender uses (a broadcast or multicast address set as the distribution "
            "point's or server's address?): nothing to open")
    if k >= un:
        return f"{'this flow was' if un == 1 else f'these {un} flows were'} {text}"
    return f"{fix}; {k} of them were {text}"


#: what the ``tls_intercepted`` flows' details show (:func:`intercepted_cause`), as the advice
#: says it in place of :data:`REASON_TEXT`'s list of every cause (:func:`intercepted_text`;
#: newcomer s60 #10)
INTERCEPT_CAUSES = {
    "product": "the server certificate was issued by a TLS-inspection CA (a product's or device's: each flow's detail "
               "names it)",
    "product_name": "the server certificate is not for the name asked and was issued by a TLS-inspection CA (a "
                    "product's or device's: each flow's detail names it)",
    "name": "the server certificate is not for the name asked",
    "untrusted": "the client rejected the server certificate, issued by a CA that is no public one",
}


def intercepted_cause(details) -> str:
    """The one cause the details (texts, names from the packets taken out:
    :func:`unquoted_details`) of ``tls_intercepted`` flows show, a key of
    :data:`INTERCEPT_CAUSES`: ``product`` (issued by a TLS-inspection product's CA: "(TLS
    inspection)" said), ``product_name`` (that, and for another name: "certificate for … presented
    for …" too), else ``name`` (a certificate for another name), else ``untrusted`` (the client
    rejected it: "the client rejected the server's certificate"); '' when they show several,
    another, or there are none."""
    seen = set()
    for d in details:
        d = str(d)
        other = d.startswith("certificate for ") and " presented for " in d
        seen.add(("product_name" if other else "product") if "(TLS inspection)" in d
                 else "name" if other
                 else "untrusted" if d.startswith("the client rejected the server's certificate") else "")
        if len(seen) > 1:
            return ""
    return next(iter(seen)) if seen else ""


def intercepted_text(cause: str = "") -> str:
    """What the advice says of ``tls_intercepted`` flows whose details show ``cause`` (a key of
    :data:`INTERCEPT_CAUSES`, :func:`intercepted_cause`): that cause, then that a TLS-inspecting
    proxy sits in the path and to exclude the names from inspection; every cause
    (:data:`REASON_TEXT`'s) for '' or an unknown key."""
    if cause not in INTERCEPT_CAUSES:
        return REASON_TEXT["tls_intercepted"]
    return f"{INTERCEPT_CAUSES[cause]}: a TLS-inspecting proxy sits in the path; exclude these names from inspection"


#: what the advice says of flows that met a TLS-inspecting proxy (:data:`REASON_TEXT`'s and
#: :func:`_intercepted_note`'s)
EXCLUDE_TEXT = "exclude these names from inspection"


def _once(blocked_fix: str, bl: int, un_fix: str) -> str:
    """The unexpected flows' advice ``un_fix`` beside the ``bl`` blocked flows' ``blocked_fix``:
    when both advise excluding the names from TLS inspection (:data:`EXCLUDE_TEXT`: blocked and
    unexpected ``tls_intercepted`` flows), the unexpected ones' ``tls_intercepted: …`` text is
    replaced by a pointer to the blocked ones', so that it is said once."""
    if EXCLUDE_TEXT not in blocked_fix:
        return un_fix
    said = re.compile(r"tls_intercepted: (?:" + "|".join(re.escape(intercepted_text(c)) for c in ("", *INTERCEPT_CAUSES))
                      + r")(?: \([^()]*\))?")
    return said.sub(f"tls_intercepted: a TLS-inspecting proxy's certificate, as for the blocked "
                    f"one{'s' if bl != 1 else ''} (see there)", un_fix)


def _intercepted_note(k: int, dated: int = 0) -> str:
    """The note on ``k`` blocked flows of a TLS failure's advice that aborted on a TLS-inspecting
    proxy's certificate ('' when none), ``dated`` of them refused as out of date (:func:`dated_note`)."""
    return (f" ({k} of them aborted on a TLS-inspecting proxy's certificate: exclude these names from inspection"
            f"{dated_note(dated, k)})" if k else "")


def dated_count(details, reasons) -> int:
    """Of blocked flows (their ``detail`` and ``reason`` texts, two equal-length sequences), how
    many ``tls_intercepted`` ones the client refused as out of date (certificate_expired), a
    certificate from no public CA (detail holding :data:`~kscc_traffic.classify.CERT_DATED`)."""
    return sum(1 for d, r in zip(details, reasons)
               if str(r).split(",")[0] == "tls_intercepted" and CERT_DATED in str(d))


def dated_note(k: int, n: int = 0) -> str:
    """What the advice on ``n`` TLS-inspecting proxies' certificates adds for ``k`` of them the
    client refused as out of date (:func:`dated_count`; '' when none): the agent's clock first,
    which makes every certificate out of date when wrong, then the certificate itself (break-it
    real s57 #4: the advice was the inspection's alone)."""
    if not k:
        return ""
    who = "it was" if k == n == 1 else f"{'both' if k == n == 2 else 'all' if k == n else k} of them " \
        + ("was" if k == 1 else "were")
    return (f"; {who} refused as out of date (see each flow's detail): check the agent's system time and time "
            "synchronisation first (a wrong clock makes every certificate out of date); else the certificate "
            "itself is: the inspecting device's (renew its CA or certificate), or another server's, not the cloud's")


class ProxyPaths(NamedTuple):
    """How the flows of one purpose went through explicit HTTP proxies (``proxy_target``), for
    :func:`_readiness_row` (:func:`proxy_paths` counts them): ``tunnel`` blocked flows whose
    proxy opened the CONNECT tunnel (a 2xx answer) and whose TLS then failed inside it
    (``tls_failed``, ``tls_intercepted``, a filter's HTTP refusal of the ClientHello: counted in
    ``bl_tls`` too), ``tunnel_icpt`` of them ``tls_intercepted``, ``tunnel_at`` their proxies
    (``address:port``, sorted, distinct, at most :data:`MAX_CLOSED_AT`), ``ok_proxied`` ok
    flows through a proxy, ``ok_at`` their proxies (as ``tunnel_at``), ``bl_direct`` blocked
    flows through no proxy, ``refused_status`` the ``http_status`` values (sorted, distinct;
    '' for a close or silence, ``?`` for a table without that column) of the blocked flows the
    proxy did not pass on (:func:`proxy_refused`): their advice says what a 407 or a 403 calls for
    (:func:`_proxy_fix`); a 401 to a CONNECT, the proxy's login as a 407
    (:func:`~kscc_traffic.classify.proxy_login`), is ``401L``, and a login answer to a request
    that carried credentials (the proxy refused them) has a ``+`` added (``407+``, ``401L+``). The capture holds only the TCP connection to the proxy for a
    proxied flow: the proxy made the one to the server."""
    tunnel: int = 0
    tunnel_icpt: int = 0
    tunnel_at: tuple[str, ...] = ()
    ok_proxied: int = 0
    ok_at: tuple[str, ...] = ()
    bl_direct: int = 0
    refused_status: tuple[str, ...] = ()
    #: the targets (``address:port``, sorted, distinct, at most :data:`MAX_CLOSED_AT`) of the CONNECTs
    #: to an IP address, not a name, a proxy refused with 403: allowing the names on the proxy does
    #: not cover them, the advice names them (newcomer 29 F5)
    refused_ip: tuple[str, ...] = ()

    def merged(self, other: "ProxyPaths") -> "ProxyPaths":
        """The counts of both (the proxies united, sorted, at most :data:`MAX_CLOSED_AT`)."""
        return ProxyPaths(self.tunnel + other.tunnel, self.tunnel_icpt + other.tunnel_icpt,
                          tuple(sorted(set(self.tunnel_at) | set(other.tunnel_at)))[:MAX_CLOSED_AT],
                          self.ok_proxied + other.ok_proxied,
                          tuple(sorted(set(self.ok_at) | set(other.ok_at)))[:MAX_CLOSED_AT],
                          self.bl_direct + other.bl_direct,
                          tuple(sorted(set(self.refused_status) | set(other.refused_status))),
                          tuple(sorted(set(self.refused_ip) | set(other.refused_ip)))[:MAX_CLOSED_AT])


def _proxy_passed(flows: pd.DataFrame) -> np.ndarray:
    """bool per flow: it went through an explicit proxy (``proxy_target``) that passed it on, as
    :func:`kscc_traffic.classify._proxy_answer` decides: ``http_status`` 2xx (the CONNECT tunnel
    opened), or 3xx for a request in absolute-form (``http://…``: the target's redirect passed
    on); also a ``tls_intercepted`` one (a certificate inside a tunnel: a table without
    ``http_status``); not a 2xx whose ``detail`` says it was the proxy's own page
    (:data:`~kscc_traffic.classify.PAGE_SERVED`). False without a ``proxy_target`` column."""
    if "proxy_target" not in flows or not len(flows):
        return np.zeros(len(flows), bool)
    target = flows["proxy_target"].to_numpy(dtype=object)
    status = flows["http_status"].to_numpy(dtype=object) if "http_status" in flows else np.full(len(flows), "")
    reason = flows["reason"].to_numpy(dtype=object) if "reason" in flows else np.full(len(flows), "")
    detail = flows["detail"].to_numpy(dtype=object) if "detail" in flows else np.full(len(flows), "")
    # (a 2xx that is the proxy's own page where certificate status data was asked for, PAGE_SERVED:
    # not passed on; review s55 #1)
    return np.fromiter(((t != "" and t is not None)
                        and ((str(c or "")[:1] == "2" and PAGE_SERVED not in str(d or ""))
                             or (str(t).startswith(_ABSOLUTE) and str(c or "")[:1] == "3")
                             or str(x).split(",")[0] == "tls_intercepted")
                        for t, c, x, d in zip(target.tolist(), status.tolist(), reason.tolist(), detail.tolist())),
                       bool, len(flows))


def proxy_refused(flows: pd.DataFrame) -> np.ndarray:
    """bool per flow: ``blocked`` through an explicit HTTP proxy (``proxy_target``) that did
    not pass it on (:func:`_proxy_passed`: no 2xx; a 407, 403, 502, a close or silence): the
    flows whose advice is the proxy's (:func:`_proxy_fix`). A flow whose proxy answered 2xx
    and whose TLS then failed in the tunnel is not one: its advice is the TLS one. All False
    without a ``proxy_target`` column."""
    out = np.zeros(len(flows), bool)
    if "proxy_target" not in flows or not len(flows):
        return out
    at = np.flatnonzero((flows["verdict"].to_numpy(dtype=object) == "blocked")
                        & (flows["proxy_target"].to_numpy(dtype=object) != ""))
    if len(at):
        out[at] = ~_proxy_passed(flows.iloc[at])
    return out


def _proxies(flows: pd.DataFrame, at: np.ndarray) -> tuple[str, ...]:
    """The proxies (``resp_h``:``resp_p``, :func:`endpoint_text`) of the flows where ``at``,
    sorted, distinct, at most :data:`MAX_CLOSED_AT` (() without those columns)."""
    if not at.any() or "resp_h" not in flows or "resp_p" not in flows:
        return ()
    hosts = flows["resp_h"].to_numpy(dtype=object)[at].tolist()
    ports = flows["resp_p"].to_numpy()[at].tolist()
    return tuple(sorted({endpoint_text(h, p) for h, p in zip(hosts, ports)}))[:MAX_CLOSED_AT]


def proxy_paths(flows: pd.DataFrame) -> dict[str, ProxyPaths]:
    """:class:`ProxyPaths` per ``purpose`` of a flow table (columns ``purpose``, ``verdict``,
    ``reason``; ``proxy_target``, ``http_status``, ``detail``, ``resp_h``, ``resp_p`` when
    present), for the purposes with a flow through a proxy or a blocked one (the blocked direct
    ones counted in every table: a :class:`TableSummary` adds batches up); {} without
    ``proxy_target`` (nothing is known of proxies: no advice about them). Only those rows are
    looked at one by one (a capture's other flows cost a comparison)."""
    if "proxy_target" not in flows or not len(flows):
        return {}
    via = flows["proxy_target"].to_numpy(dtype=object) != ""
    keep = via | (flows["verdict"].to_numpy(dtype=object) == "blocked")
    if not keep.any():
        return {}
    sub = flows[keep]
    via = via[keep]
    verdict = sub["verdict"].to_numpy(dtype=object)
    first = np.array([str(x).split(",")[0] for x in sub["reason"].tolist()], dtype=object)
    tls = np.isin(first, ("tls_failed", "tls_intercepted"))
    if "detail" in sub:
        tls |= sub["detail"].astype(str).str.startswith(FILTER_ANSWER).to_numpy()
    connect = via & np.array([not str(t).startswith(_ABSOLUTE) for t in sub["proxy_target"].tolist()], bool)
    passed = _proxy_passed(sub)
    tunnel = (verdict == "blocked") & connect & passed & tls
    proxied_ok = (verdict == "ok") & via
    direct = (verdict == "blocked") & ~via
    refused = (verdict == "blocked") & via & ~passed     # (as proxy_refused)
    # (a status read back from CSV may be a number, 407.0, or NaN for none)
    said = (np.array(["" if x is None or x != x else str(x).removesuffix(".0") for x in sub["http_status"].tolist()],
                     dtype=object) if "http_status" in sub else np.full(len(sub), "?", dtype=object))
    # (a 401 to a CONNECT is the proxy's login as a 407 is, classify.proxy_login: "401L"; a 401 to a
    # request in absolute-form stays "401", maybe the origin server's; break-it s57 #8)
    login = np.fromiter((proxy_login(c, t) for c, t in zip(said.tolist(), sub["proxy_target"].tolist())),
                        bool, len(sub))
    said = np.where(login & (said == "401"), "401L", said)
    if "detail" in sub:
        # (a 407 to a request that carried credentials: the proxy refused them, "407+": _proxy_fix)
        creds = sub["detail"].astype(str).str.contains(PROXY_CREDENTIALS_REFUSED, regex=False).to_numpy()
        said = np.where(creds & login, np.char.add(said.astype(str), "+").astype(object), said)
    # (a CONNECT to an IP address the proxy refused with 403: named in the advice)
    target = sub["proxy_target"].to_numpy(dtype=object)
    to_ip = refused & (said == "403") & np.array([_ip_target(t) for t in target.tolist()], bool)
    out = {}
    for p, idx in sub.groupby("purpose", sort=False).indices.items():
        m = np.zeros(len(sub), bool)
        m[idx] = True
        out[p] = ProxyPaths(int(np.count_nonzero(tunnel & m)),
                            int(np.count_nonzero(tunnel & m & (first == "tls_intercepted"))),
                            _proxies(sub, tunnel & m), int(np.count_nonzero(proxied_ok & m)),
                            _proxies(sub, proxied_ok & m), int(np.count_nonzero(direct & m)),
                            tuple(sorted(set(said[refused & m].tolist()))),
                            tuple(sorted({str(t) for t in target[to_ip & m].tolist()}))[:MAX_CLOSED_AT])
    return out


def _ip_target(target) -> bool:
    """Whether a ``proxy_target`` is a CONNECT's ``address:port`` with an IP address (``[v6]:port``
    too), not a name nor a request in absolute-form."""
    t = str(target or "")
    if not t or t.startswith(_ABSOLUTE):
        return False
    host = t.rsplit(":", 1)[0] if t.count(":") == 1 or t.startswith("[") else t
    return is_ip_literal(host.strip("[]"))


def _proxy_names(at: tuple[str, ...]) -> str:
    """``the proxy 198.51.100.1:3128``, ``the proxies A and B``, ``the proxy`` when unknown."""
    if not at:
        return "the proxy"
    return f"the proxy {at[0]}" if len(at) == 1 else f"the proxies {_list_text(at, 'proxie')}"


def _tunnel_fix(r, k: int, icpt: int, px: ProxyPaths, subject: str) -> str:
    """The advice for ``k`` blocked flows of rule ``r`` whose TLS failed (``icpt`` of them
    ``tls_intercepted``), ``px.tunnel`` of them inside a proxy's CONNECT tunnel (the proxy
    answered 2xx): the capture shows TCP to the proxy only, so nothing says the port to the
    server is open from here; an interception there is most likely the proxy's own SSL
    inspection (break-it 24 F2, F3). ``subject`` starts it (``this connection``, ``the other
    one``…). Without a tunnel: ''."""
    if not px.tunnel:
        return ""
    where = r.host_mask or "the documented servers"
    names = _proxy_names(px.tunnel_at)
    if px.tunnel >= k:
        got = (f"went through {names}, which opened the CONNECT tunnel (a 2xx answer; the capture shows TCP to "
               "the proxy only: the proxy made the connection to the server)")
    else:
        got = (f"got through: {k - px.tunnel} reached the server directly (the TCP handshake completed: the port "
               f"is open), {px.tunnel} went through {names}, which opened the CONNECT tunnel (a 2xx answer)")
    inspect = f"exempt {where} from {'that proxy' if len(px.tunnel_at) <= 1 else 'those proxies'}'s SSL inspection"
    if icpt == k and px.tunnel_icpt == px.tunnel:
        return (f"{subject} {got}, then the TLS handshake was aborted on a TLS-inspecting proxy's certificate (see "
                f"each flow's detail): {names} most likely inspects {'it' if k == 1 else 'them'} itself: {inspect}"
                + ("" if px.tunnel >= k else f"; for the direct ones, exclude these names from inspection ({where})"))
    note = (f" ({px.tunnel_icpt} of those through the proxy aborted on a TLS-inspecting proxy's certificate: the "
            f"proxy most likely inspects {'it' if px.tunnel_icpt == 1 else 'them'} itself)" if px.tunnel_icpt else "")
    direct_icpt = icpt - px.tunnel_icpt
    return (f"{subject} {got}, then the TLS handshake failed (see each flow's detail): inside the "
            f"tunnel{'s' if px.tunnel > 1 else ''}, the proxy itself (its SSL inspection or policy, or its own "
            f"connection to the server failing) or a firewall or TLS inspection behind it"
            + ("" if px.tunnel >= k else "; on the direct path, a proxy, TLS inspection or an application-aware "
               "firewall")
            + f": let the agent's TLS to {where} through uninspected ({inspect}, if it inspects) and check that "
            f"{names} reaches {where} on {r.transport.upper()} {r.port_text}{note}" + _intercepted_note(direct_icpt))


def _redirect_fix(r, bl: int, redirects: dict[str, int], fix: str, alone: bool) -> str:
    """The advice for rule ``r``'s ``bl`` blocked flows, of which those in ``redirects`` (status ->
    count: :data:`REDIRECT_ANSWER`) had their ClientHello answered by an HTTP redirect: a captive
    portal or web filter (authenticate the network in it, or exempt the agent's traffic), not TLS
    inspection. ``alone``: they are all the blocked flows (the advice replaces ``fix``), else it is
    added to ``fix`` for them."""
    k = sum(redirects.values())
    moved = sorted(x for x in redirects if x != PORTAL_STATUS)
    said = " or ".join(([f"an HTTP redirect ({'/'.join(moved)})"] if moved else [])
                       + (["a captive portal's HTTP 511 (Network Authentication Required)"]
                          if PORTAL_STATUS in redirects else []))
    where = f"{r.host_mask + ', ' if r.host_mask else ''}{r.transport.upper()} {r.port_text}"
    todo = ("Authenticate this network in the portal (or have its owner do it), or exempt the agent's traffic "
            f"({where}) from the portal or filter")
    them = "it" if (bl if alone else k) == 1 else "them"
    what = (f"a captive portal or web filter in the path sends {them} to its own page" if moved else
            "a captive portal in the path wants the network logged in first")
    if alone:
        return (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open), then {said} "
                f"answered {'its' if bl == 1 else 'their'} ClientHello instead of the TLS handshake: {what} (see "
                f"each flow's detail). {todo}; no port is to be opened")
    return f"{fix}; {k} of them {'was' if k == 1 else 'were'} answered by {said}: {what}. {todo}"


def _tls_part(r, k: int, icpt: int, px: ProxyPaths | None) -> str:
    """``; k of them …``: the advice added for ``k`` of a purpose's blocked flows whose TLS
    failed (``icpt`` of them ``tls_intercepted``), the others blocked otherwise; through a
    proxy's tunnel, :func:`_tunnel_fix`."""
    if px and px.tunnel:
        return "; " + _tunnel_fix(r, k, icpt, px, f"{k} of them")
    return (f"; {k} of them reached the server (the TCP handshake completed), then the TLS "
            f"handshake failed: {_tls_failed_text(r)}" + _intercepted_note(icpt))


def _tls_failed_text(r) -> str:
    """What the advice says of TLS handshakes of rule ``r`` that failed after the TCP handshake
    (see each flow's detail): for the cloud, a proxy, TLS inspection or an application-aware
    firewall in the path, to let the agent's TLS through uninspected; for a distribution point's
    port (:data:`~kscc_traffic.classify.PINNED_OPENER`: a server on the network), its service
    first (running, answering, accepting this agent's TLS version: an old Network Agent), then
    such a device between the subnets (break-it s55 dp #4: a hung distribution point was advised
    as TLS inspection)."""
    if r.opener == PINNED_OPENER:
        return ("the distribution point's service or a device between (see each flow's detail): check that its "
                "Network Agent service is running and answering there, and accepts this agent's TLS version and "
                "ciphers (update an old Network Agent), then any proxy, TLS inspection or application-aware "
                "firewall between the agent and the distribution point")
    return ("a proxy, TLS inspection or an application-aware firewall in the path (see each flow's detail): let the "
            f"agent's TLS to {r.host_mask or 'the documented servers'} through uninspected")


def _proxy_fix(r, bl: int, proxied: int, k: int, icpt: int, px: ProxyPaths | None) -> str:
    """The advice for ``bl`` blocked flows of rule ``r``, ``proxied`` of them refused or failed by
    an explicit HTTP proxy (:func:`proxy_refused`), the ``k`` = ``bl`` - ``proxied`` others
    aborted in their TLS (``icpt`` of them ``tls_intercepted``; through a proxy's tunnel or
    directly: :func:`_tunnel_fix`); the flows counted in the words ("this connection", "1 of
    these 2 connections … it", break-it 24 F4). What the proxy answered (``px.refused_status``)
    says what to do: a 407, the proxy account in the agent's proxy settings; a 403, the target
    allowed on the proxy; else (a 502, a close, silence) to let the agent through the proxy
    (newcomer 28 F8). Unknown (no ``http_status``): the general advice, 407 and 403 explained."""
    who = ("this connection" if bl == 1 else f"these {bl} connections" if proxied == bl
           else f"{proxied} of these {bl} connections")
    them = "it" if proxied == 1 else "them"
    where = r.host_mask or "the documented servers"
    reach = (f"let the agent reach {where} on {r.transport.upper()} {r.port_text} through the proxy (a CONNECT, or a "
             "plain HTTP request), or exempt it from the proxy")
    said = set(px.refused_status) if px else set()
    if not said or "?" in said:
        fix = (f"{who} went through an HTTP proxy that refused or failed {them} (detail: 407 = the proxy wants "
               f"authentication, 403 = its policy denies the target): {reach}")
    else:
        parts = []
        asked = sorted(x[:3] for x in said & {"407", "401L"})
        refused = sorted(x[:3] for x in said & {"407+", "401L+"})
        if asked:
            parts.append(f"{'/'.join(asked)} (the proxy wants authentication): set the proxy account (user name "
                         "and password) in the agent's proxy settings (Kaspersky Security Center: the Network Agent's proxy server "
                         "settings, in its properties or its policy), or let the proxy allow the agent without "
                         f"authentication for {where}")
        if refused:
            # (the requests it refused carried the agent's credentials: break-it s56 v6 #11; a
            # 401 to a CONNECT, tinyproxy's login: break-it s57 #8)
            parts.append(f"{'/'.join(refused)} to requests that carried the agent's credentials (the proxy refused "
                         "them): check the "
                         "account (user name and password) in the agent's proxy settings (Kaspersky Security Center: "
                         "the Network Agent's proxy server settings, in its properties or its policy) and that the "
                         "proxy takes the scheme the agent uses (NTLM, Negotiate, Basic: see each flow's detail), or "
                         f"let the proxy allow the agent without authentication for {where}")
        if "403" in said:
            ips = px.refused_ip if px else ()
            one = len(ips) == 1
            also = (f"; the agent asked it for {_list_text(ips, 'target')}, {'an address' if one else 'addresses'}, "
                    "not a name, which a rule for the names does not cover: allow "
                    f"{'that address and port' if one else 'those'} too (or set the agent to connect by name)"
                    if ips else "")
            parts.append(f"403 (the proxy's policy denies the target): allow {where}:{r.port_text} on the proxy{also}")
        pages = {x for x in said if x[:1] == "2"}
        if pages:
            # (the proxy's own page where certificate status data was asked for: classify._page_answer)
            parts.append(f"{'/'.join(sorted(pages))} with its own HTML page where a CRL, an OCSP response or a CA "
                         f"certificate was asked for (its web filter's block page or a captive portal's login page): "
                         f"allow {where} in the proxy's URL filter, or authenticate to its portal")
        rest = said - {"407", "407+", "401L", "401L+", "403"} - pages
        if rest:
            codes = "/".join(sorted(x for x in rest if x))
            silent = "no HTTP answer (a close or silence; " if "" in rest else ""
            parts.append(f"{codes}{' or ' if codes and silent else ''}{silent}{'' if silent else ' ('}see each flow's "
                         f"detail): {reach}")
        fix = f"{who} went through an HTTP proxy that refused or failed {them}: " + "; ".join(parts)
    if not k:
        return fix
    other = "the other one" if k == 1 else f"the {k} others"
    if px and px.tunnel:
        return f"{fix}; " + _tunnel_fix(r, k, icpt, px, other)
    return (f"{fix}; {other} reached the server (the TCP handshake completed), then the TLS handshake failed: a "
            "proxy, TLS inspection or an application-aware firewall in the path (see each flow's detail): let the "
            f"agent's TLS to {r.host_mask or 'the documented servers'} through uninspected" + _intercepted_note(icpt))


def _path_split(ok: int, bl: int, px: ProxyPaths | None) -> str:
    """The split of a purpose's ``ok`` and ``bl`` (blocked) flows when every blocked one went
    direct and every ok one through an explicit proxy (break-it 24 F4): the proxy path works,
    the direct one is blocked (as :func:`_family_split` says for IPv4 and IPv6); else ''."""
    if not px or not ok or not bl or px.bl_direct != bl or px.ok_proxied != ok:
        return ""
    return (f"all blocked direct, the ok ones through {_proxy_names(px.ok_at)}: the proxy path works, the direct "
            "path is blocked")


def _direct_fix(fix: str) -> str:
    """The advice after :func:`_path_split`: use the proxy for every connection, or open the direct path."""
    return ("configure the agent (Network Agent's proxy settings) to use the proxy for all its connections, or "
            f"open the direct path: {fix}")


def _not_this_purpose(r, k: int, failed: int = 0) -> str:
    """``; k more …``: the ``k`` unexpected flows of rule ``r`` that are not its traffic (a name
    outside its mask, its port on the side that opened the connection: :data:`NOT_THIS_PURPOSE`),
    ``failed`` of them connections that failed (:func:`_failed_text`)."""
    return (f"; {k} more went to names outside {r.host_mask or 'the documented ones'} or had the documented "
            "port on the side that opened the connection: not this purpose's traffic" + _failed_text(failed))


def _failed_text(failed: int) -> str:
    """``; N of them failed (…)``: the ``failed`` flows outside a purpose's mask whose connection
    itself failed (detail :data:`~kscc_traffic.classify.MISMATCH_FAILED`); '' when none did."""
    return (f"; {failed} of them failed (no answer, a reset, an ICMP error or an aborted TLS handshake: see each "
            "flow's detail)" if failed else "")


def _onprem_fix(r, k: int) -> str:
    """What to change for ``k`` flows of a distribution point's rule ``r`` whose server has a
    Kaspersky cloud name (detail :data:`~kscc_traffic.classify.ONPREM_PORT`)."""
    return (f"{'this flow' if k == 1 else f'these {k} flows'} on {r.transport.upper()} {r.port_text} went to the "
            "cloud Administration Server (a Kaspersky cloud name), not to a distribution point: "
            f"{ONPREM_PORT}, which takes agents on its own ports (each flow's detail names them). Check the "
            "Administration Server address and port the agent is set to use (a setting left over from an "
            "on-premises Kaspersky Security Center: move the agent to the cloud, e.g. with the cloud's "
            f"installation package); nothing to open on {r.transport.upper()} {r.port_text} for "
            f"{'it' if k == 1 else 'them'}")


#: names of flows to another Administration Server a purpose's advice names (the first ones seen)
MAX_ELSEWHERE_NAMES = 3


#: what a ``host_mismatch`` detail says when the SNI read may not be the name the agent was given:
#: an ECH outer name whose address was looked up under the mask (classify.ECH_MAY_BE), two different
#: ClientHellos for the same bytes, a decoy's and the real one (inspect.HELLO_COPIES)
_NAME_UNSURE = (ECH_MAY_BE, HELLO_COPIES.split(":", 1)[0])


def elsewhere_rows(r, reason, verdict, names, details=None) -> np.ndarray:
    """Per flow (bool array): an unexpected ``host_mismatch`` flow of rule ``r`` on a KSC-only
    port (:func:`ksc_only`) to a name not under kaspersky.com (:func:`vendor_names`): the agent
    configured with another Administration Server address. ``reason``, ``verdict``, ``names``
    (``server_name``), ``details`` (``detail``; None: not read): the flows' columns as arrays.
    ``r`` None: any rule (the caller checks :func:`ksc_only` itself). A flow with no name
    (``server_name`` '': no SNI, Host or DNS answer, judged by the server's certificate alone, a
    TLS-inspecting proxy's) names no address the agent was given: not one of them; nor one whose
    detail says the SNI read may not be the name asked (:data:`_NAME_UNSURE`: an ECH outer name
    whose address was looked up under the mask, a decoy ClientHello's; break-it s55 tls #4)."""
    n = len(verdict)
    if (r is not None and not ksc_only(r)) or not n:
        return np.zeros(n, bool)
    mism = np.array([str(x).split(",")[0] == "host_mismatch" for x in reason], bool)
    names = np.asarray(names, dtype=object)
    named = np.fromiter((isinstance(x, str) and x != "" for x in names.tolist()), bool, n)
    out = mism & named & (np.asarray(verdict) == "unexpected") & ~vendor_names(names)
    if details is not None and out.any():
        at = np.flatnonzero(out)
        unsure = [any(w in str(d) for w in _NAME_UNSURE) for d in np.asarray(details, dtype=object)[at].tolist()]
        out[at[np.asarray(unsure, bool)]] = False
    return out


def csv_unquoted(text: str) -> str:
    """``text`` without the ``'`` :func:`escape_csv` puts before a formula start: the same name
    whether the table is the analysis' own or read back from its CSV."""
    text = str(text)
    if text.startswith("'") and text[1:].lstrip(_CELL_SPACES).startswith(_FORMULA_START):
        return text[1:]
    return text


def _elsewhere_fix(r, k: int, names: tuple[str, ...]) -> str:
    """What to change for ``k`` flows of a KSC-only rule ``r`` to other names (:func:`elsewhere_rows`),
    ``names`` the first of them (escaped here: untrusted text from packets). A name that is no host
    name (:func:`~kscc_traffic.protocols.tls.is_host_name`: control or bidi characters, ``<``, ``=``)
    is said as each such flow's detail says it, forged or damaged, not as an address the agent was
    given (newcomer 30 F5)."""
    shown = [csv_unquoted(x) for x in names]
    good = [escape_terminal(x) for x in shown if is_host_name(x)]
    bad = [escape_terminal(x) for x in shown if not is_host_name(x)]
    flows = "1 flow" if k == 1 else f"{k} flows"
    where = f"{r.transport.upper()} {r.port_text}, ports only a KSC agent uses"
    forged = (f"{_list_text(bad, 'name')} {'is not a host name' if len(bad) == 1 else 'are not host names'} "
              "(an SNI or DNS name holding characters no host name has: forged or damaged, see each flow's detail)")
    if bad and not good:
        return (f"{flows} on {where}: {forged}: no agent is given such an address; look for "
                "a device on the path that alters the traffic, or the program that sent it")
    said = _list_text(good, "name") if good else "another name"
    return (f"the agent is configured with another Administration Server address ({said}, on {where}; "
            f"{flows}): check the address in the agent's settings / installation "
            f"package (it must be a name under {r.host_mask})" + (f"; {forged}" if bad else ""))


def _unexpected_fix(r, un: int, other: int, kinds, blocked_too: bool, vendor: int = 0,
                    onprem: int = 0, failed: tuple[int, int] = (0, 0),
                    inbound: tuple[int, int] = (0, 0),
                    elsewhere: tuple[int, tuple[str, ...]] = (0, ()), console: int = 0,
                    icpt_cause: str = "") -> str | None:
    """What to change for the ``un`` unexpected flows of rule ``r``, ``other`` of them with a reason
    of :data:`NOT_THIS_PURPOSE`, ``kinds`` their reasons, ``vendor`` of them ``host_mismatch`` to a
    name under kaspersky.com (:data:`VENDOR_OTHER`): answered flows (:data:`ANSWERED_UNEXPECTED`)
    get their reason's advice, flows that are not this purpose's say so; None when neither applies.
    ``blocked_too``: other flows of the purpose were blocked (then "nothing to open in the firewall"
    is not said: their fix may be to open it). ``onprem``: of the ``other`` ones, flows to a
    distribution point's port whose server has a cloud name (:func:`_onprem_fix`). ``failed``: of
    the ``host_mismatch`` ones, (all, to a name under kaspersky.com) whose connection itself
    failed (:data:`~kscc_traffic.classify.MISMATCH_FAILED`): said, and Kaspersky's other services
    that failed are not told "nothing to change" (audit s25). ``inbound``: (of the
    ``wrong_direction`` ones those opened from outside towards a local address, detail
    :data:`~kscc_traffic.classify.INBOUND`; all the ``wrong_direction`` ones). ``elsewhere``: (of the
    ``host_mismatch`` ones, those on a KSC-only port to a name not under kaspersky.com, the first
    names: :func:`elsewhere_rows`): the agent's own, pointed at another Administration Server,
    said first (:func:`_elsewhere_fix`); the others' advice after it. ``console``: of the ``vendor``
    ones, those to the Cloud Console server's own names (:func:`console_names`): when they are all
    the unexpected ones, said as the Cloud Console on a port not documented for it
    (:data:`CONSOLE_ELSEWHERE`), not as Kaspersky's other services."""
    k_else, else_names = elsewhere
    if k_else:
        head = _elsewhere_fix(r, k_else, else_names)
        # (the failed ones of the others: at most as many as they are; which of the flows elsewhere
        # failed is not counted, so a failed flow elsewhere is not said again as one of the others')
        rest_failed = (min(failed[0], un - k_else), failed[1])
        rest = _unexpected_fix(r, un - k_else, other - k_else, kinds, blocked_too, vendor=vendor, onprem=onprem,
                               failed=rest_failed, inbound=inbound, console=console,
                               icpt_cause=icpt_cause) if un > k_else else None
        return head + ((f". For the other {'one' if un - k_else == 1 else un - k_else}: {rest}") if rest else "")
    failed_all, failed_vendor = failed
    answered = [x for x in ANSWERED_UNEXPECTED if x in kinds]
    if answered:
        k = un - other
        fix = (f"{'this connection' if k == 1 else f'these {k} connections'} on {r.transport.upper()} "
               f"{r.port_text} {'was' if k == 1 else 'were'} answered (the port is open"
               + ((" for it" if k == 1 else " for them") if blocked_too else "")
               # (a cleartext answer may be a filter's refusal: then its policy has to change)
               + ("; nothing to open in the firewall" if answered == ["tls_intercepted"] and not blocked_too else "")
               + "): " + "; ".join(f"{x}: {intercepted_text(icpt_cause) if x == 'tls_intercepted' else REASON_TEXT[x]}"
                                   + (f" ({r.host_mask})" if x == "tls_intercepted" and r.host_mask else "")
                                   for x in answered))
        if other > onprem:
            fix += _not_this_purpose(r, other - onprem, failed_all)
        if onprem:
            fix += f"; {onprem} more: {_onprem_fix(r, onprem)}"
        return fix
    if un == other and onprem:
        return _onprem_fix(r, onprem) + (_not_this_purpose(r, other - onprem, failed_all) if other > onprem
                                         else _failed_text(failed_all))
    if un == other:
        names = (f"went to names outside {r.host_mask}: not this purpose's servers. If an agent made "
                 "them, check the Administration Server address, DNS and proxy it uses; else they are "
                 "another program's traffic")
        if console and console >= un:
            # (the Cloud Console server itself, on a port the page does not document for it)
            names = (f"went to {CONSOLE_ELSEWHERE}: not this purpose's servers, and no port the agent needs for "
                     f"the Cloud Console. If an agent made them, check the Administration Server port it is set "
                     "to use; else they are another program's traffic")
        elif vendor and vendor >= un and failed_vendor:
            # (a connection to Kaspersky's other services that failed: not "nothing to change")
            names = (f"went to names outside {r.host_mask}: {VENDOR_OTHER}, not this purpose's servers; "
                     f"{failed_vendor} of them failed (no answer, a reset, an ICMP error or an aborted TLS "
                     "handshake: see each flow's detail): a firewall or proxy on the path blocks that Kaspersky "
                     "service, which the agent may need: allow it as that service's own port list says (it is "
                     "not a Cloud Console port)")
            failed_all -= failed_vendor
        elif vendor and vendor >= un:
            names = (f"went to names outside {r.host_mask}: {VENDOR_OTHER}, not this purpose's servers; "
                     "nothing to change for the Cloud Console (those services have their own port list)")
        elif vendor:
            names = (f"went to names outside {r.host_mask}: not this purpose's servers ({vendor} of them "
                     f"{VENDOR_OTHER}). If an agent made the others, check the Administration Server address, "
                     "DNS and proxy it uses; else they are another program's traffic")
        reverse = ("had the documented port on the side that opened the connection: a source port the "
                   "OS or a NAT picked in the range, or a server connecting back; nothing to open for them")
        k, wrong = inbound
        if k and k >= wrong:
            reverse = (f"were {inbound_text(r)}; nothing to open for them"
                       + (" (close such a port forwarding if it is not wanted)" if r.opener != "agent_to_dp" else ""))
        elif k:
            reverse += f" ({k} of them {inbound_text(r)})"
        text = (f"these flows on {r.transport.upper()} {r.port_text} "
                + (names if "wrong_direction" not in kinds else reverse if "host_mismatch" not in kinds
                   else f"{names.split(':')[0]} or {reverse}") + _failed_text(failed_all))
        return _one_flow(text) if un == 1 else text
    return None


#: (plural, singular) of the words :func:`_unexpected_fix`'s advice for the flows outside a purpose
#: changes for one flow
_ONE_FLOW = (("these flows on", "this flow on"), ("went to names outside", "went to a name outside"),
             ("If an agent made them", "If an agent made it"), ("else they are", "else it is"),
             ("nothing to open for them", "nothing to open for it"), ("were opened from", "was opened from"),
             ("were opened by", "was opened by"),
             ("1 of them failed", "it failed"))


def _one_flow(text: str) -> str:
    """``text`` (:func:`_unexpected_fix`'s advice for the flows outside a purpose) for one flow:
    "this flow … made it", not "these flows … made them" (newcomer 30 F5)."""
    for many, one in _ONE_FLOW:
        text = text.replace(many, one)
    return text


#: the headline of a report whose flows show no KSC agent traffic (:func:`no_ksc_traffic`)
NO_KSC_TRAFFIC = ("no flow in this capture goes to a Kaspersky name or a KSC-only port: "
                  "captured on the wrong machine, or at the wrong time?")
#: the headline of a report on no flow at all (an empty capture, one without IP packets, a live run
#: that caught nothing: the Warning line says which); the exit status is 0 as under
#: :data:`NO_KSC_TRAFFIC` (``--fail-on no-ksc``: 1)
NO_FLOWS = ("no flow at all to judge: capture again on the agent itself, on the interface its traffic uses, while "
            "it connects")


def ksc_purposes(rules: RuleSet) -> set[str]:
    """The ids of ``rules``' purposes on ports no browser shares (from 1024 up: the agent's
    23100-23199…, a distribution point's 13000…, 15000, KSN's 1443): a flow there is KSC traffic
    whatever its name."""
    return {r.id for r in rules.rules if r.port_lo >= SHARED_PORTS_BELOW}


def ksc_flows(flows: pd.DataFrame, rules: RuleSet) -> np.ndarray:
    """Per flow (bool array): KSC agent traffic — a purpose of :func:`ksc_purposes`, or a name
    that says so (:func:`ksc_named`)."""
    out = flows["purpose"].isin(ksc_purposes(rules)).to_numpy() if "purpose" in flows else np.zeros(len(flows), bool)
    return out | ksc_named(flows)


def ksc_named(flows: pd.DataFrame) -> np.ndarray:
    """Per flow (bool array): its name makes it KSC agent traffic whatever its port: a
    ``server_name`` (or DNS ``query``) under kaspersky.com (:func:`vendor_names`). A name a
    third party's host mask accepts does not: every browser and Windows itself ask
    ``ocsp.digicert.com`` on TCP 80 (the certificate check's mask), so a capture of browsing with
    one such request is no KSC agent traffic (newcomer 29 F1). Empty and missing cells (NaN of a
    CSV read back) are no name."""
    out = np.zeros(len(flows), bool)
    for col in ("server_name", "query"):
        if col in flows:
            # (the domain alone, not vendor_names: a forged or damaged name under kaspersky.com still
            # makes the capture one of KSC traffic, as before newcomer 30 F5)
            names = flows[col].to_numpy(dtype=object).tolist()
            out |= np.fromiter((_under_domain(str(x), VENDOR_DOMAIN) for x in names), bool, len(names))
    return out


#: :func:`flagged_rank`'s ranks: blocked, KSC agent traffic (:func:`ksc_flows`), the rest
FLAGGED_RANKS = ("blocked", "KSC agent traffic", "other flows")


def flagged_rank(flows: pd.DataFrame, ksc: Iterable[str]) -> np.ndarray:
    """Per flow (int8 array): the rank it is listed in among the flagged flows, the most important
    first, as an expert system lists its most severe findings first: 0 blocked, 1 another flow of
    KSC agent traffic (its purpose in ``ksc``, the ids of :func:`ksc_purposes`, or a Kaspersky name:
    :func:`ksc_named`), 2 the rest (other programs' flows on shared ports: a browser's
    ``host_mismatch``). The table report lists the flagged flows by rank, in time order inside
    each, so that a cut list never hides a blocked flow behind a workstation's browsing
    (newcomer 30 F2); the HTML report's flow table keeps them in the same order when it is cut."""
    rank = np.full(len(flows), 2, np.int8)
    if not len(flows):
        return rank
    ksc_rows = ksc_named(flows)
    if "purpose" in flows:
        ksc_rows |= flows["purpose"].isin(list(ksc)).to_numpy()
    rank[ksc_rows] = 1
    rank[(flows["verdict"] == "blocked").to_numpy()] = 0
    return rank


def any_ksc(flows: pd.DataFrame, rules: RuleSet) -> bool:
    """Whether a flow of ``flows`` is KSC agent traffic (:func:`ksc_flows`), the KSC-only ports
    looked at first (vectorised: a KSC capture is told at once, the names are read only when no
    flow is on such a port)."""
    if "purpose" in flows and flows["purpose"].isin(ksc_purposes(rules)).any():
        return True
    return bool(len(flows)) and bool(ksc_flows(flows, rules).any())


def cut_unnamed(flows: pd.DataFrame) -> int:
    """How many TCP flows of ``flows`` had their first bytes cut by the snaplen (``payload_cut``)
    with no server name read (``server_name`` empty): the name that would make them KSC agent
    traffic (an SNI, a CONNECT target) may be in the bytes not kept (newcomer 36 F5: ``CONNECT
    eu1.ksc.kaspersky.com:`` cut inside its port got the "No KSC agent traffic" headline)."""
    if not len(flows) or "payload_cut" not in flows or "proto" not in flows:
        return 0
    cut = flows["payload_cut"].to_numpy(dtype=bool) & (flows["proto"].to_numpy(dtype=object) == "tcp")
    if "server_name" in flows:
        cut &= flows["server_name"].fillna("").to_numpy(dtype=object) == ""
    return int(np.count_nonzero(cut))


#: the TCP ports HTTP proxies usually listen on (Squid 3128, 8080, 8000, 8888, Privoxy 8118): unanswered
#: or refused attempts to one of them, in a capture without KSC agent traffic, may be the agent's
#: own through a proxy it is set to use (:func:`silent_proxies`; s61 newcomer #3)
PROXY_PORTS = (3128, 8080, 8000, 8888, 8118)
#: proxy endpoints :func:`no_ksc_traffic` names at most
MAX_SILENT_PROXIES = 3


def silent_proxies(flows: pd.DataFrame) -> dict[tuple[str, int, str], int]:
    """``(resp_h, resp_p, conn_state) -> flows`` of the TCP flows of ``flows`` to a port of
    :data:`PROXY_PORTS` whose SYN nothing answered (``S0``) or a reset refused (``REJ``), not a
    scan's probes (``reason`` ``port_scan``, ``address_scan``, when the column is there); {} when
    there is none or a column is missing (``proto``, ``resp_h``, ``resp_p``, ``conn_state``)."""
    if not len(flows) or not all(c in flows for c in ("proto", "resp_h", "resp_p", "conn_state")):
        return {}
    port = pd.to_numeric(flows["resp_p"], errors="coerce").fillna(-1).to_numpy(np.int64)
    at = np.flatnonzero(np.isin(port, PROXY_PORTS))
    if not len(at):
        return {}
    state = flows["conn_state"].to_numpy(dtype=object)[at]
    at = at[((state == "S0") | (state == "REJ")) & (flows["proto"].to_numpy(dtype=object)[at] == "tcp")]
    if "reason" in flows and len(at):
        # (a scan's probes are no agent's attempts: kscc_traffic.scans)
        at = at[~np.isin(flows["reason"].to_numpy(dtype=object)[at], (PORT_SCAN, ADDRESS_SCAN))]
    out: dict[tuple[str, int, str], int] = {}
    for key in zip(flows["resp_h"].to_numpy(dtype=object)[at].tolist(), port[at].tolist(),
                   flows["conn_state"].to_numpy(dtype=object)[at].tolist()):
        out[key] = out.get(key, 0) + 1
    return out


def _silent_proxy_text(proxies: dict[tuple[str, int, str], int]) -> str:
    """What :func:`no_ksc_traffic` adds for :func:`silent_proxies`' counts ('' for none): the
    proxy endpoints with the most attempts first (:data:`MAX_SILENT_PROXIES` at most)."""
    per: dict[tuple[str, int], list[int]] = {}
    for (host, port, state), n in proxies.items():
        counts = per.setdefault((str(host), int(port)), [0, 0])
        counts[state == "REJ"] += n
    if not per:
        return ""
    shown = sorted(per.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    parts = []
    for (host, port), (silent, refused) in shown[:MAX_SILENT_PROXIES]:
        how = " and ".join(x for x in (f"{silent} unanswered" if silent else "", f"{refused} refused by a reset"
                                       if refused else "") if x)
        parts.append(f"{endpoint_text(host, port)} ({how})")
    more = f" and {len(shown) - MAX_SILENT_PROXIES} more" if len(shown) > MAX_SILENT_PROXIES else ""
    n = sum(map(sum, per.values()))
    return (f" Or the agent goes through a proxy that did not answer: {n} TCP connection attempt{'s' if n != 1 else ''} "
            f"to a usual HTTP proxy port failed, {', '.join(parts)}{more}: if the agent is set to use a proxy there "
            "(its proxy settings name the address and port), that proxy or the way to it is down: check it, or "
            "capture where the proxy answers")


def no_ksc_traffic(total: int, ksc: int, captures: int = 1, cut: int = 0,
                   proxies: dict[tuple[str, int, str], int] | None = None) -> str:
    """The headline :data:`NO_KSC_TRAFFIC` (``in these captures`` for several) when ``total``
    flows were seen and none of them (``ksc``) is KSC agent traffic (:func:`ksc_flows`), else ''
    (nothing seen at all says so itself); ``proxies`` (:func:`silent_proxies`) adds the failed
    attempts to a usual proxy port. Then the checklist judges no purpose on those flows
    (:func:`not_ksc_row`), the table report gives no advice built on them, and the exit status is 0
    whatever they are (:func:`kscc_traffic.output.fails`: README, "Reading the report in one
    minute"; newcomer 28 F4)."""
    if not total or ksc:
        return ""
    said = NO_KSC_TRAFFIC if captures <= 1 else NO_KSC_TRAFFIC.replace("in this capture", "in these captures", 1)
    if cut:     # (``cut``: :func:`cut_unnamed`; the name may be in the bytes the snaplen left out)
        said += (f" Or a name was lost: {cut} TCP flow{'s' if cut != 1 else ''} had {'their' if cut != 1 else 'its'} "
                 "first bytes cut by the snaplen before a server name could be read; capture again with the "
                 "whole packets (tcpdump -s 0) to see the names")
    return said + (_silent_proxy_text(proxies) if proxies else "")


def console_names(names) -> np.ndarray:
    """bool per ``server_name`` text: a host name under :data:`CONSOLE_DOMAIN` (the Cloud Console
    server's; case and a trailing dot ignored; no host name, e.g. ``\\xe2\\x80\\xaeeu1.ksc.kaspersky.com``
    with a right-to-left override, is not one: :func:`vendor_names`). The domain itself is not
    (:func:`_console_domain`)."""
    names = list(names)
    return np.fromiter((_under_domain(str(x), CONSOLE_DOMAIN) and not _console_domain(x)
                        and is_host_name(csv_unquoted(x)) for x in names), bool, len(names))


def _console_domain(name) -> bool:
    """Whether a ``server_name`` text is :data:`CONSOLE_DOMAIN` itself (``ksc.kaspersky.com``, case and
    a trailing dot ignored): no Cloud Console server's name (those are under it, ``*.`` needing a
    sub-domain) and none of Kaspersky's other services, so an agent that connects to it was given
    a wrong Administration Server address (break-it s50 #5: was said as the Cloud Console on a port
    not documented for it, on a documented port)."""
    return csv_unquoted(str(name)).lower().rstrip(".") == CONSOLE_DOMAIN


def vendor_names(names) -> np.ndarray:
    """bool per ``server_name`` text: a host name under :data:`~kscc_traffic.classify.VENDOR_DOMAIN`
    (case and a trailing dot ignored). A name that only ends like one but is no host name
    (:func:`~kscc_traffic.protocols.tls.is_host_name`: an RLO or control character, ``<``…; its
    flow's detail says "forged or damaged") is not Kaspersky's (newcomer 30 F5); nor is
    :data:`CONSOLE_DOMAIN` itself (:func:`_console_domain`: on a KSC-only port, an agent given
    another Administration Server address, :func:`elsewhere_rows`)."""
    names = list(names)
    return np.fromiter((_under_domain(str(x), VENDOR_DOMAIN) and not _console_domain(x)
                        and is_host_name(csv_unquoted(x)) for x in names), bool, len(names))


def _carried(flows: pd.DataFrame) -> np.ndarray:
    """Per row: the flow carried a payload byte (:func:`kscc_traffic.flows.carried_data`: a
    partial TCP flow's 1 byte, a keep-alive's, does not count); bytes > 0 where the table lacks
    ``partial`` or ``proto``. A CONNECT whose tunnel carried nothing (detail
    :data:`~kscc_traffic.classify.TUNNEL_EMPTY`: only the proxy's conversation) carried none."""
    if "partial" in flows and "proto" in flows:
        out = carried_data(flows)
    else:
        out = ((flows["orig_bytes"] > 0) | (flows["resp_bytes"] > 0)).to_numpy()
    if "detail" in flows and "proxy_target" in flows and out.any():
        out = out & ~flows["detail"].astype(str).str.startswith(TUNNEL_EMPTY).to_numpy(bool)
    return out


def _names_a_server(names) -> np.ndarray:
    """bool per ``server_name`` text: a host name, not empty and no IP literal (``Host:
    198.51.100.99``, an SNI holding an address: it names no server, newcomer 23 F4)."""
    names = list(names)
    return np.fromiter((bool(n) and not is_ip_literal(str(n)) for n in names), bool, len(names))


def _is_v6(hosts: np.ndarray) -> np.ndarray:
    """bool per address text (``resp_h``): an IPv6 address (it holds a colon)."""
    return np.fromiter((":" in h for h in hosts.tolist()), bool, len(hosts))


def _v4_unicast(flows: pd.DataFrame) -> bool:
    """Whether ``flows`` (with ``resp_h``; ``cast`` where present) hold a unicast flow over IPv4:
    the capture's host (or network) uses IPv4 too, not an IPv6-only one."""
    if not len(flows) or "resp_h" not in flows:
        return False
    v4 = ~_is_v6(flows["resp_h"].to_numpy(dtype=object))
    if "cast" in flows:
        v4 &= (flows["cast"].astype(str) == "unicast").to_numpy()
    return bool(v4.any())


def _fell_back(flows: pd.DataFrame) -> np.ndarray:
    """bool per row of ``flows``: an IPv6 connection attempt refused by the server's host that its
    client followed over IPv4 (verdict ``ok``, detail :data:`~kscc_traffic.classify.FALLBACK_CLEARED`:
    :func:`kscc_traffic.classify.family_fallbacks`): ok, but nothing worked over IPv6, so not
    counted as an ok flow over IPv6 where the address families are compared (:func:`_bad_family`,
    :func:`family_names`). All False without ``verdict`` or ``detail``."""
    if not len(flows) or any(c not in flows.columns for c in ("verdict", "detail")):
        return np.zeros(len(flows), bool)
    out = flows["verdict"].to_numpy(dtype=object) == "ok"
    at = np.flatnonzero(out)
    if len(at):
        out[at] = [str(d).startswith(FALLBACK_CLEARED) for d in flows["detail"].to_numpy(dtype=object)[at].tolist()]
    return out


def _bad_family(ok: int, bl: int, v6: tuple[int, int] | None) -> str:
    """``IPv6`` when the ``bl`` blocked flows are all over IPv6 and the ``ok`` ones all over IPv4
    (``v6`` = (ok, blocked) of them over IPv6), ``IPv4`` the other way round, else ''."""
    if v6 is None or not ok or not bl:
        return ""
    ok6, bl6 = v6
    return "IPv6" if bl6 == bl and ok6 == 0 else "IPv4" if bl6 == 0 and ok6 == ok else ""


def _family_split(ok: int, bl: int, v6: tuple[int, int] | None, others_ok: bool = True, path: bool = True,
                  same: tuple[bool | None, bool | None] = (None, None)) -> str:
    """What the ``ok`` and ``bl`` (blocked) flows of a purpose have in common, ``v6`` = (ok, blocked)
    of them over IPv6: one address family failing while the other works (a dual-stack agent whose
    IPv6 path is blocked tries IPv6 first and falls back to IPv4 late or never), else, when
    ``others_ok`` (every flow not blocked was ok), a hint to compare them; else ''. ``path``
    False: the split alone, without "the IPv6 path is blocked … check its routes" (a host on the
    client's subnet answered: no path in between, the advice that follows says what to do). ``same``:
    :func:`same_destinations` (blocked over IPv6 and ok over IPv4 to a same server; the other way
    round): False, every flow named and none shared, compares nothing (the families went to other
    servers: break-it s57 #10), as when they are not split so."""
    if v6 is not None:
        ok6, bl6 = v6
        for bad, good, all_bad, no_good, shared in (("IPv6", "IPv4", bl6 == bl, ok6 == 0, same[0]),
                                                    ("IPv4", "IPv6", bl6 == 0, ok6 == ok, same[1])):
            if all_bad and no_good and shared is not False:
                if not path:
                    return f"all blocked over {bad}, the ok ones over {good}"
                return (f"all blocked over {bad}, the ok ones over {good}: the {bad} path is blocked; allow "
                        f"the ports for {bad} too, or check its routes; a dual-stack agent tries IPv6 first")
    return OTHERS_WORKED if others_ok else ""


def ip_family_fix(r, family: str) -> str:
    """Rule ``r``'s firewall advice (``r.fix``) for one address family (``IPv6``, ``IPv4``), the
    other one passing already: ``allow outbound TCP 23100-23199 over IPv6 to *.ksc.kaspersky.com
    (…)`` (after its first ``to`` where it reads "allow outbound/inbound … to"), else ``r.fix``
    and ``(over IPv6: IPv4 passes already)``."""
    other = "IPv4" if family == "IPv6" else "IPv6"
    return _over_family(r, family) or f"{r.fix} (over {family}: {other} passes already)"


def _over_family(r, family: str) -> str:
    """Rule ``r``'s "allow outbound/inbound … to" advice (``r.fix``) said for ``family``:
    ``allow outbound TCP 23100-23199 over IPv6 to …``; '' for advice of another form."""
    if r.fix.startswith(("allow outbound ", "allow inbound ")) and " to " in r.fix:
        return r.fix.replace(" to ", f" over {family} to ", 1)
    return ""


def _only_family_fix(r, family: str, fix: str) -> str:
    """``fix`` with rule ``r``'s firewall advice said for ``family`` (``IPv6``) where every flow of
    the purpose went over it and none worked (an IPv6-only agent: a firewall's IPv6 rule set is its
    own): ``allow outbound TCP 23100-23199 over IPv6 to …``; ``fix`` as it is when the rule's advice
    is not an "allow outbound/inbound … to" one or not in it."""
    said = _over_family(r, family)
    return fix.replace(r.fix, said) if said and r.fix in fix else fix


def _path_family_fix(r, split: str, fix: str) -> str:
    """``fix`` (a blocked purpose's advice) with rule ``r``'s firewall advice said for the one
    address family that failed (:func:`ip_family_fix`) where the family split ``split``
    (:func:`_family_split`) says that family's path is blocked (all blocked over it, the ok ones
    over the other: its ports are to be opened, the other family's pass already; newcomer s59
    newc2 #2: "allow outbound TCP 23100-23199 …" unqualified beside IPv4 that worked)."""
    for bad in ("IPv6", "IPv4"):
        if f"the {bad} path is blocked" in split and r.fix in fix:
            return fix.replace(r.fix, ip_family_fix(r, bad))
    return fix


#: the hint of a purpose whose flows not blocked all worked (:func:`_family_split`)
OTHERS_WORKED = "the others worked: compare clients, addresses and ports"

#: server names :func:`family_names` keeps per (purpose, verdict, address family); beyond, that
#: family's destinations count as unknown (bounded memory in a chunked reading)
MAX_FAMILY_NAMES = 1024


def family_names(flows: pd.DataFrame) -> dict[tuple[str, str, bool], frozenset | None]:
    """(purpose, verdict, over IPv6) -> the server names (``server_name``, lower case; a host name,
    no IP literal: :func:`_names_a_server`) of the ``ok`` and ``blocked`` flows, None where one
    such flow had none (or more than :data:`MAX_FAMILY_NAMES` names): what tells whether two
    address families went to the same servers (an IPv4 and an IPv6 address of one server share
    nothing but its name: :func:`same_destinations`). {} without ``server_name`` or ``resp_h``."""
    if not len(flows) or any(c not in flows for c in ("server_name", "resp_h", "purpose", "verdict")):
        return {}
    verdict = flows["verdict"].to_numpy(dtype=object)
    # (an IPv6 attempt its client followed over IPv4 is ok, but went nowhere over IPv6: _fell_back)
    at = np.flatnonzero(((verdict == "ok") & ~_fell_back(flows)) | (verdict == "blocked"))
    if not len(at):
        return {}
    # (per distinct name: whether it names a server, its lower-case form; grouped by pandas)
    codes, distinct = pd.factorize(flows["server_name"].to_numpy(dtype=object)[at], use_na_sentinel=False)
    named = _names_a_server(distinct.tolist()) & np.array([isinstance(n, str) for n in distinct.tolist()], bool)
    lower = np.array([str(n).lower().rstrip(".") for n in distinct.tolist()], dtype=object)
    # (the groups by integer codes: purpose, verdict, address family of each distinct responder)
    p_codes, purposes = pd.factorize(flows["purpose"].to_numpy(dtype=object)[at], use_na_sentinel=False)
    h_codes, hosts = pd.factorize(flows["resp_h"].to_numpy(dtype=object)[at], use_na_sentinel=False)
    six = _is_v6(np.array([str(h) for h in hosts.tolist()], dtype=object))[h_codes]
    group = (p_codes.astype(np.int64) * 2 + (verdict[at] == "ok")) * 2 + six
    width = max(len(distinct), 1)
    pairs = np.unique(group * width + codes.astype(np.int64))       # (sorted: by group, then name)
    g_of, c_of = pairs // width, pairs % width
    out: dict[tuple[str, str, bool], frozenset | None] = {}
    for g in np.unique(g_of).tolist():
        mine = c_of[g_of == g]
        key = (str(purposes[g // 4]), "ok" if (g // 2) % 2 else "blocked", bool(g % 2))
        out[key] = (frozenset(lower[mine].tolist())
                    if named[mine].all() and len(mine) <= MAX_FAMILY_NAMES else None)
    return out


def merge_family_names(into: dict, more: dict) -> None:
    """Add the :func:`family_names` ``more`` to ``into`` (in place): the names united, None (unknown)
    where either is None or the union has more than :data:`MAX_FAMILY_NAMES`."""
    for key, names in more.items():
        if key not in into:
            into[key] = names
        elif into[key] is not None:
            both = None if names is None else into[key] | names
            into[key] = None if both is None or len(both) > MAX_FAMILY_NAMES else both


def same_destinations(names: dict, purpose: str) -> tuple[bool | None, bool | None]:
    """Of a purpose's :func:`family_names` ``names``: whether its blocked flows over IPv6 and its
    ok ones over IPv4 went to a same server name, and the other way round (IPv4 blocked, IPv6
    ok): True when some name is on both sides, False when every flow of both had a name and none
    is shared (other servers: no statement on the address family's path, break-it s57 #10), None
    when not known (a flow without a name: an address alone names no server across families)."""
    def same(bad6: bool) -> bool | None:
        if (purpose, "blocked", bad6) not in names or (purpose, "ok", not bad6) not in names:
            return None
        a, b = names[(purpose, "blocked", bad6)], names[(purpose, "ok", not bad6)]
        return None if a is None or b is None else bool(a & b)
    return same(True), same(False)


def plain_resets(details) -> int:
    """Of blocked flows' ``details`` (the names from the packets taken out: :func:`unquoted_details`),
    how many are connection attempts whose SYN a TCP reset answered
    (:data:`~kscc_traffic.classify.REJ_DETAIL`) with no sign of a device nearer than the server
    (no :data:`~kscc_traffic.inspect.REFUSED_NEARER` nor :data:`~kscc_traffic.inspect.REFUSED_OTHER`
    hint: the server's own TTL, or no packet of that address to compare with)."""
    return sum(1 for x in map(str, details)
               if x.startswith(REJ_DETAIL) and REFUSED_NEARER not in x and REFUSED_OTHER not in x)


def fallback_fix(r, bl: int) -> str:
    """The advice for ``bl`` blocked flows of rule ``r`` that were all connection attempts over IPv6
    refused by a TCP reset from no device nearer than the server (:func:`plain_resets`), while IPv4
    to the same server names worked (:func:`same_destinations`), but not right after them: an
    attempt its client followed over IPv4 within :data:`~kscc_traffic.classify.FALLBACK_S` is
    ``ok`` in the flow table (:func:`kscc_traffic.classify.family_fallbacks`: the happy-eyeballs
    fallback of a dual-stack client, RFC 8305), so these are attempts after which no fallback was
    seen: the server's host most likely does not take the port over IPv6 and this client did
    not fall back at once; no port to open, unless a firewall of the site's own rejects IPv6
    there in the server's name (break-it s57 #9: "the IPv6 path is blocked; allow the ports for
    IPv6 too"; newcomer s58 #1: the advice said "nothing is to be opened" under a ``blocked``)."""
    these = "this connection attempt was" if bl == 1 else f"these {bl} connection attempts were"
    where = f"{r.transport.upper()} {r.port_text}"
    return (f"{these} refused over IPv6 by a TCP reset (no sign of a device nearer than the server), and no "
            f"connection over IPv4 to the same server name and port followed within {FALLBACK_S:g} s (no fallback "
            f"seen), while IPv4 to the same server names worked: {FALLBACK_MEANS} {where} over IPv6, and this client "
            "did not fall back to IPv4 at once (set to use IPv6, or retrying later): let it use IPv4 for these "
            "servers; no port is to be opened, unless a firewall of this network rejects IPv6 there in the "
            f"server's name: then {r.fix}")


#: what :func:`fallback_fix` says the IPv6 refusal most likely was (before the port)
FALLBACK_MEANS = "most likely the server's host does not take"

#: an unanswered connection attempt that began at most this long (s) after a connection of the
#: same client to the same server address and port that worked (:class:`RateWatch`): the port is
#: open and the path works, a limit on new connections dropped it (break-it s57 #12)
RATE_WINDOW_S = 60.0
#: :class:`RateWatch` bounds: (purpose, client, server, port, time slot) pairs of worked
#: connections kept, and unanswered attempts kept (beyond either: no attempt is counted, no hint
#: given: bounded memory in a chunked reading)
MAX_RATE_KEYS = 262_144
MAX_RATE_TRIES = 65_536


#: addresses :class:`PortalWatch` keeps (portals, and blocked servers per purpose); beyond, no more
MAX_PORTALS = 256


class PortalWatch:
    """Captive portals that also answer DNS (break-it s62 #2: a hotel's or guest network's portal
    gives its own address for every name until the user logs in): per capture (``capture``, when
    the table has it), the addresses (``resp_h``) that answered an HTTP request with a redirect
    (3xx) or 511 in a ``blocked`` flow (classify judged it a web filter's or captive portal's
    answer), and per purpose the addresses of the blocked flows that were no HTTP exchange (no
    ``http_status``): how many, and how many of them had a name from the capture's DNS
    (``dns_name``). A purpose whose blocked flows went to such an address of their own capture did
    not reach its server at all (:func:`portal_fix`). Tables are added batch by batch
    (:meth:`add`); at most :data:`MAX_PORTALS` portals and servers per purpose are kept."""

    def __init__(self) -> None:
        self.portals: set[tuple[str, str]] = set()                     # (capture, address)
        self.blocked: dict[str, dict[tuple[str, str], list[int]]] = {}  # purpose -> (capture, address) -> [flows, named]

    def add(self, flows: pd.DataFrame) -> None:
        """Remember the portals and blocked servers of ``flows`` (a classified flow table; nothing
        without ``http_status`` and ``resp_h``)."""
        if not len(flows) or "http_status" not in flows or "resp_h" not in flows:
            return
        verdict = flows["verdict"].to_numpy(dtype=object)
        status = flows["http_status"].fillna("").astype(str).to_numpy(dtype=object)
        server = flows["resp_h"].astype(str).to_numpy(dtype=object)
        cap = flows["capture"].fillna("").astype(str).to_numpy(dtype=object) if "capture" in flows \
            else np.full(len(flows), "", dtype=object)
        blocked = verdict == "blocked"
        redirect = np.array([x[:1] == "3" or x[:3] == PORTAL_STATUS for x in status.tolist()], bool) \
            if blocked.any() else blocked
        at = blocked & redirect
        for key in dict.fromkeys(zip(cap[at].tolist(), server[at].tolist())):
            if len(self.portals) < MAX_PORTALS:
                self.portals.add(key)
        plain = np.flatnonzero(blocked & (status == ""))
        if not len(plain):
            return
        purposes = flows["purpose"].astype(str).to_numpy(dtype=object)
        named = (flows["dns_name"].fillna("").astype(str).to_numpy(dtype=object) != "") if "dns_name" in flows \
            else np.zeros(len(flows), bool)
        for p, c, a, n in zip(purposes[plain].tolist(), cap[plain].tolist(), server[plain].tolist(),
                              named[plain].tolist()):
            had = self.blocked.setdefault(p, {})
            if (c, a) in had or len(had) < MAX_PORTALS:
                got = had.setdefault((c, a), [0, 0])
                got[0] += 1
                got[1] += int(n)

    def said(self, purpose: str) -> tuple[int, str, bool]:
        """(blocked flows of ``purpose`` that went to a portal's address of their own capture, the
        first such address in text order, whether each of them had a name from the DNS);
        (0, '', False) for none."""
        had = self.blocked.get(purpose, {})
        at = sorted(k for k in had if k in self.portals)
        if not at:
            return (0, "", False)
        return (sum(had[k][0] for k in at), min(a for _, a in at), all(had[k][1] == had[k][0] for k in at))


def portal_fix(bl: int, portal: tuple[int, str, bool], fix: str) -> str:
    """A blocked purpose's advice ``fix`` when ``portal`` = (k, address, named) of its ``bl``
    blocked flows went to an address that answered an HTTP request of their capture with a
    redirect (:class:`PortalWatch`): the captive portal's own address (given by the DNS for the
    server's name when ``named``: each had a name from the capture's DNS); the portal's advice
    leads when all did (k == bl), else is added."""
    k, addr, named = portal
    if not k:
        return fix
    how = ("the DNS gave the portal's own address for the server's name" if named else
           "the agent was sent to the portal's own address (by a DNS answer not in the capture, or its settings)")
    said = (f"went to {addr}, the address that answered an HTTP request of this capture with a redirect (a captive "
            f"portal or web filter: see that flow's detail): {how}, so the agent never reached the server (a hotel's "
            "or guest network's portal holds all traffic until someone logs in): authenticate this network in the "
            "portal (or connect the device to a network without one), then capture again")
    if k >= bl:
        return f"{'this connection attempt' if bl == 1 else f'these {bl} connection attempts'} {said}"
    return f"{fix}; {k} of them {said}"


class RateWatch:
    """The blocked TCP connection attempts, unanswered (``no_answer``, detail ``SYN sent …, no
    answer``; not one the capture's end cut short: :func:`cut_short`), that began at most
    :data:`RATE_WINDOW_S` after an ``ok`` TCP connection of the same purpose, client, server address
    and port (``purpose``, ``orig_h``, ``resp_h``, ``resp_p``; ``capture`` when the table has one):
    the port is open and the path works, so a limit on new connections (a firewall's rate or
    count limit, SYN-flood protection, the server's full backlog) most likely dropped them, not a
    port rule (:func:`rate_limit_fix`). Tables are added batch by batch in any order
    (:meth:`add`); :meth:`counts` counts at the end. The ok connections are kept per key and slot
    of :data:`RATE_WINDOW_S` as the first and last start in it: an attempt at ``t`` follows one
    within the window when its slot's first start is before ``t`` or the slot before's last start
    is at most the window before ``t`` (exact: the window spans those two slots). At most
    :data:`MAX_RATE_KEYS` (key, slot) pairs and :data:`MAX_RATE_TRIES` attempts: beyond, nothing
    is counted. :meth:`intermittent` counts the other attempts of a key whose connections worked
    and failed in turn (an intermittent block)."""

    def __init__(self) -> None:
        self.ok: dict[tuple, tuple[int, int]] = {}  # (key, slot) -> first and last start (ns) of ok ones
        self.ok_span: dict[tuple, tuple[int, int]] = {}  # key -> the first and last start (ns) of ok ones
        self.tries: list[tuple[tuple, int]] = []    # (key, start ns) of the unanswered attempts
        self.full = False                           # (a bound reached: nothing counted)

    @staticmethod
    def _key(values: tuple) -> tuple:
        """(purpose, client, server, port, capture) of a row's values in :meth:`add`'s column order."""
        p, oh, rh, rp, *cap = values
        return (str(p), str(oh), str(rh), int(rp), str(cap[0]) if cap else "")

    def add(self, flows: pd.DataFrame) -> None:
        """Remember the ok TCP connections and the unanswered attempts of ``flows`` (a classified
        flow table; nothing without ``ts_ns``, ``orig_h``, ``resp_h``, ``resp_p``, ``proto``)."""
        need = ("purpose", "verdict", "reason", "ts_ns", "orig_h", "resp_h", "resp_p", "proto")
        if self.full or not len(flows) or any(c not in flows for c in need):
            return
        verdict = flows["verdict"].to_numpy(dtype=object)
        tcp = flows["proto"].to_numpy(dtype=object) == "tcp"
        names = ["purpose", "orig_h", "resp_h", "resp_p", *(["capture"] if "capture" in flows else [])]
        window = int(RATE_WINDOW_S * 1e9)
        ok = np.flatnonzero(tcp & (verdict == "ok"))
        if len(ok):
            # (first and last start per key and slot, grouped by pandas: most batches have many ok
            # connections and few keys)
            sub = flows.iloc[ok][[*names, "ts_ns"]]
            sub = sub.assign(_slot=sub["ts_ns"].to_numpy(np.int64) // window)
            got = sub.groupby([*names, "_slot"], sort=False)["ts_ns"].agg(["min", "max"])
            for k, lo, hi in zip(got.index.tolist(), got["min"].tolist(), got["max"].tolist()):
                at = (self._key(k[:-1]), int(k[-1]))
                had = self.ok.get(at)
                if had is None and len(self.ok) >= MAX_RATE_KEYS:
                    self.full = True
                    return
                self.ok[at] = (int(lo), int(hi)) if had is None else (min(had[0], int(lo)), max(had[1], int(hi)))
                span = self.ok_span.get(at[0])
                self.ok_span[at[0]] = (int(lo), int(hi)) if span is None else (min(span[0], int(lo)), max(span[1], int(hi)))
        tried = np.flatnonzero(tcp & (verdict == "blocked"))
        if len(tried):
            sub = flows.iloc[tried]
            details = unquoted_details(sub)
            reasons = sub["reason"].astype(str).tolist()
            cut = cut_short(reasons, details)
            keep = [k for k, (r, d) in enumerate(zip(reasons, details))
                    if r.split(",")[0] == "no_answer" and d.startswith("SYN sent ") and not cut[k]]
            if len(self.tries) + len(keep) > MAX_RATE_TRIES:
                self.full = True
                return
            sub = sub.iloc[keep]
            self.tries += [(self._key(v[:-1]), int(v[-1]))
                           for v in zip(*(sub[c].tolist() for c in (*names, "ts_ns")))]

    def counts(self) -> dict[str, int]:
        """purpose -> its unanswered attempts that followed a worked connection of the same client
        to the same server address and port by at most :data:`RATE_WINDOW_S` ({} when a bound was
        reached)."""
        return self.tallies()[0]

    def intermittent(self) -> dict[str, int]:
        """purpose -> its unanswered attempts not :meth:`counts` counts whose client connected to
        the same server address and port both after the first of them and before the last (failed
        and worked connections alternate; {} when a bound was reached): the port open, the path
        dropping them at times (:func:`intermittent_fix`). Attempts all before the worked ones (the
        port opened meanwhile?) or all after them (closed since, or the server stopped) are not
        counted."""
        return self.tallies()[1]

    def tallies(self) -> tuple[dict[str, int], dict[str, int]]:
        """(:meth:`counts`, :meth:`intermittent`), from one pass over the attempts."""
        if self.full:
            return {}, {}
        out: dict[str, int] = {}
        other: dict[str, int] = {}
        window = int(RATE_WINDOW_S * 1e9)
        first: dict[tuple, int] = {}
        last: dict[tuple, int] = {}
        for k, t in self.tries:
            first[k], last[k] = min(first.get(k, t), t), max(last.get(k, t), t)
        for k, t in self.tries:
            slot = t // window
            here, before = self.ok.get((k, slot)), self.ok.get((k, slot - 1))
            if (here is not None and here[0] < t) or (before is not None and before[1] >= t - window):
                out[k[0]] = out.get(k[0], 0) + 1
            elif (span := self.ok_span.get(k)) is not None and span[1] > first[k] and span[0] < last[k]:
                other[k[0]] = other.get(k[0], 0) + 1
        return out, other


def rate_limit_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` that :class:`RateWatch` counts
    (unanswered attempts shortly after the same client's connection to the same server address
    and port worked): a limit on new connections, not a port to open; all of them: that advice
    alone; some: added to ``fix`` (the others')."""
    where = f"{r.transport.upper()} {r.port_text}"
    limit = ("a limit on new connections (a firewall's connection-rate or connection-count limit, SYN-flood "
             "protection, an IPS rule; or the server's listen backlog full) most likely dropped the later ones, "
             f"unless the server or the path failed meanwhile: check such limits for {where} and exempt the agents")
    what = (f"unanswered within {RATE_WINDOW_S:g} s after the same client's connection to the same server address "
            "and port worked")
    return _attempts_said(bl, k, fix, what, f"the port was open and the path worked; {limit}", limit)


def intermittent_fix(r, bl: int, k: int, fix: str) -> str:
    """The advice for ``k`` of the ``bl`` blocked flows of rule ``r`` that
    :meth:`RateWatch.intermittent` counts (unanswered attempts of a client to a server address and
    port it connected to at other times of the capture): no port to open, the path drops them at
    times; all of them: that advice alone; some: added to ``fix`` (the others')."""
    why = ("the port is open and the path works, but not always: a member of a firewall cluster or a "
           "load-balanced path without the rule, an address of a NAT pool without it, or a device (or the "
           "server) dropping new connections at times; compare the firewall's logs and the path at the "
           "failed attempts' times")
    what = ("unanswered while the same client's connections to the same server address and port worked at "
            "other times of the capture (intermittent)")
    return _attempts_said(bl, k, fix, what, why, why)


def _attempts_said(bl: int, k: int, fix: str, what: str, then_all: str, then_some: str) -> str:
    """``k`` of ``bl`` blocked connection attempts said to be ``what``: all of them, ``these k
    connection attempts were WHAT: THEN_ALL`` alone; some, ``FIX; k of them were WHAT: THEN_SOME``
    after the others' advice ``fix`` (:func:`rate_limit_fix`, :func:`intermittent_fix`)."""
    if bl == k:
        these = "this connection attempt was" if k == 1 else f"these {k} connection attempts were"
        return f"{these} {what}: {then_all}"
    return f"{fix}; {k} of them {'was' if k == 1 else 'were'} {what}: {then_some}"


def _captures_text(caps: tuple[tuple[str, ...], tuple[str, ...], bool] | None, ok: int,
                   others_ok: bool = False) -> str:
    """Where the flagged flows of a purpose are when the flows come from several captures
    (``caps``: the captures of the flagged flows, those of the ok ones, whether some ok one is
    in a capture of the flagged ones; None: one capture, ''): ``in b.pcap``, and with
    ``others_ok`` (every flow not flagged was ok) where the ``ok`` ones worked: ``in b.pcap; the
    others worked, in 4 other captures: compare the machines, addresses and ports`` or, some in
    the same capture, ``in b.pcap; the others worked (some in the same capture): compare clients,
    addresses and ports``."""
    if caps is None:
        return ""
    flagged, good, shared = caps
    where = f"in {_list_text(flagged, 'capture')}"
    if not (others_ok and ok):
        return where
    if not shared:
        return (f"{where}; the others worked, in {'another capture' if len(good) == 1 else f'{len(good)} other captures'}"
                ": compare the machines, addresses and ports")
    return f"{where}; the others worked (some in the same capture): compare clients, addresses and ports"


#: what to change for DNS queries answered from another address than the one asked (reason
#: ``wrong_source``, :func:`kscc_traffic.classify._note_other_source`): not the firewall
DNS_WRONG_SOURCE_FIX = ("the resolver answers from another address than the one the clients ask (a multihomed "
                        "resolver answering from its other address, or a DNS redirect/NAT rule that does not rewrite "
                        "the answer's source back; the flagged DNS flows name both addresses), and clients drop such "
                        "answers: make the resolver answer from the address it was asked at (bind it to that "
                        "address), or make the redirect/NAT rule translate the answers back; the firewall already "
                        "lets them through")


#: the keys of :func:`dns_blocked_kinds`
DNS_KINDS = ("refused", "servfail", "mismatch_id", "mismatch_question", "mismatch_cut", "no_answer", "v6_only",
             "fragments", "icmp", "icmp_closed", "nxdomain", "nxdomain_vendor")


def _text_column(flows: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` of ``flows`` as text ('' for a missing value, and for every row when the
    table has no such column)."""
    if name not in flows:
        return pd.Series("", index=flows.index, dtype=object)
    col = flows[name].astype(object)
    return col.where(col.notna(), "").astype(str)


def dns_blocked_kinds(flows: pd.DataFrame) -> dict[str, int]:
    """How the blocked DNS flows of ``flows`` (``purpose`` ``dns``, ``verdict`` ``blocked``)
    failed, where the advice differs (:func:`dns_fix`, :func:`dns_reason_texts`), read from the
    data columns ``reason``, ``dns_rcode`` and ``dns_unmatched`` (never from packet text quoted
    in ``detail``): a dict of :data:`DNS_KINDS` to counts (int): ``refused`` and ``servfail``,
    ``rejected`` ones whose ``dns_rcode`` is REFUSED / SERVFAIL; ``mismatch_id`` and
    ``mismatch_question``, ``no_answer`` ones whose responses all matched none of their queries
    (``dns_rcode`` '', ``dns_unmatched`` ``id`` / ``question``: the first by its transaction ID,
    or by its question); ``mismatch_cut``, of those, the ones the capture's end cut short (their
    detail ending with :data:`CUT_SHORT`'s note, which no column holds); ``no_answer``, all the
    ``no_answer`` ones; ``v6_only``, ``rejected`` ones answered NOERROR whose detail is
    :func:`~kscc_traffic.classify.v6_only_detail` for their ``query`` (an IPv6-only agent's AAAA
    question that only A answers resolved: read from ``detail``, its start rebuilt
    from ``query``, as whether the capture held IPv4 is in no column); ``fragments``, ``no_answer``
    ones whose answers came back only as IP fragments of datagrams never captured whole (detail
    :data:`~kscc_traffic.classify.DNS_LOST_FRAGMENTS`: its own words and a count, no packet text);
    ``nxdomain``, ``rejected`` ones whose ``dns_rcode`` is NXDOMAIN (not an AAAA question's asked over
    IPv6 whose A one was answered, detail :data:`~kscc_traffic.classify.AAAA_OVER_IPV6`: the name exists),
    ``nxdomain_vendor`` of them those asking a name under kaspersky.com (:func:`dns_nxdomain_fix`);
    ``icmp``, the ``icmp_unreachable`` ones, and ``icmp_closed``, of them those answered by a port
    unreachable from the resolver's own address (:func:`port_unreachable`: nothing listens on 53 there).
    All 0 for a table without ``purpose``, ``verdict`` or ``reason`` (a
    missing value there, or a table without ``dns_rcode`` / ``dns_unmatched``: those kinds 0)."""
    out = dict.fromkeys(DNS_KINDS, 0)
    if not len(flows) or any(c not in flows for c in ("purpose", "verdict", "reason")):
        return out
    bl = flows[(flows["purpose"] == "dns").to_numpy() & (flows["verdict"] == "blocked").to_numpy()]
    if not len(bl):
        return out
    base = _text_column(bl, "reason").str.split(",").str[0].to_numpy(dtype=object)
    rcode = _text_column(bl, "dns_rcode").to_numpy(dtype=object)
    rejected = base == "rejected"
    out["refused"] = int((rejected & (rcode == "REFUSED")).sum())
    out["servfail"] = int((rejected & (rcode == "SERVFAIL")).sum())
    nx = np.flatnonzero(rejected & (rcode == "NXDOMAIN"))
    if len(nx):
        # (not an AAAA query's NXDOMAIN asked over IPv6 whose A question was answered (detail
        # AAAA_OVER_IPV6, at its end: no packet text read as it): the name exists, the resolver's
        # AAAA answer is what is wrong, not a mistyped name or a local zone; review s60 #2)
        detail = _text_column(bl, "detail").to_numpy(dtype=object)[nx]
        query = _text_column(bl, "query").to_numpy(dtype=object)[nx]
        counted = [not str(d).endswith(AAAA_OVER_IPV6) for d in detail.tolist()]
        out["nxdomain"] = sum(counted)
        out["nxdomain_vendor"] = sum(c and _under_domain(str(x), VENDOR_DOMAIN) for c, x in zip(counted, query.tolist()))
    nodata = np.flatnonzero(rejected & (rcode == "NOERROR"))
    if len(nodata):
        # (the detail's start rebuilt from the query column: no packet text read as a marker)
        query = _text_column(bl, "query").to_numpy(dtype=object)[nodata]
        detail = _text_column(bl, "detail").to_numpy(dtype=object)[nodata]
        out["v6_only"] = sum(str(d).startswith(f"{DNS_NO_ADDRESS}{q}{V6_ONLY_HEAD}{V6_ONLY_A}")
                             for q, d in zip(query.tolist(), detail.tolist()))
    na = base == "no_answer"
    out["no_answer"] = int(na.sum())
    if out["no_answer"]:
        detail = _text_column(bl, "detail").to_numpy(dtype=object)[na]
        out["fragments"] = sum(bool(DNS_LOST_FRAGMENTS.match(str(d))) for d in detail.tolist())
    icmp = base == "icmp_unreachable"
    out["icmp"] = int(icmp.sum())
    if out["icmp"]:
        rows = np.flatnonzero(icmp)
        icmp_texts = icmp_column(bl)
        said = port_unreachable(_text_column(bl, "detail").to_numpy(dtype=object)[rows].tolist(),
                                [icmp_texts[i] for i in rows.tolist()])
        out["icmp_closed"] = int(said[0].sum())
    kind = np.where(na & (rcode == ""), _text_column(bl, "dns_unmatched").to_numpy(dtype=object), "")
    out["mismatch_id"] = int((kind == UNMATCHED_ID).sum())
    out["mismatch_question"] = int((kind == UNMATCHED_QUESTION).sum())
    mism = np.flatnonzero(kind != "")
    if len(mism):
        detail = _text_column(bl, "detail").to_numpy(dtype=object)[mism]
        out["mismatch_cut"] = sum(_noted_cut(str(d)) for d in detail.tolist())
    return out


#: (client, resolver) pairs :class:`ResolverAnswers` keeps of each kind: past them, a pair is not
#: counted (its unanswered queries keep the "allow DNS" advice)
MAX_RESOLVER_PAIRS = 4096
#: the columns :class:`ResolverAnswers` reads (a table without one of them adds nothing)
_RESOLVER_COLUMNS = ("purpose", "verdict", "reason", "detail", "orig_h", "resp_h", "orig_p", "resp_p", "proto",
                     "dns_rcode")


def _resolver_keys(flows: pd.DataFrame) -> pd.DataFrame:
    """Columns ``client``, ``resolver``, ``port`` (the resolver's, int64), ``proto`` of each DNS
    flow of ``flows`` (its client as :func:`~kscc_traffic.classify.dns_client` tells it: the
    responder of a flow whose originator is on port 53 and its responder not, its answers alone
    captured), on ``flows``' index."""
    oh, rh = flows["orig_h"].astype(str).to_numpy(dtype=object), flows["resp_h"].astype(str).to_numpy(dtype=object)
    op = pd.to_numeric(flows["orig_p"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
    rp = pd.to_numeric(flows["resp_p"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
    mine = ~((op == 53) & (rp != 53))
    return pd.DataFrame({"client": np.where(mine, oh, rh), "resolver": np.where(mine, rh, oh),
                         "port": np.where(mine, rp, op), "proto": flows["proto"].astype(str).to_numpy(dtype=object)},
                        index=flows.index)


class ResolverAnswers:
    """Which blocked DNS queries nothing answered went to a resolver that answered other queries
    of the same client in the capture (before or after them): DNS to it is open, the advice is not
    "allow DNS" (newcomer s59 #6). Fed batch by batch (:meth:`add`, a chunked reading's batches
    in any order), read once at the end (:meth:`count`); bounded: at most
    :data:`MAX_RESOLVER_PAIRS` pairs of each kind kept."""

    def __init__(self) -> None:
        #: (client, resolver, port, proto) pairs a DNS response (``dns_rcode`` set) came back on
        self.answered: set[tuple] = set()
        #: ... and per pair, the blocked ``no_answer`` DNS flows no other cause explains
        #: (:func:`plain_unanswered`)
        self.unanswered: dict[tuple, int] = {}

    def add(self, flows: pd.DataFrame) -> None:
        """Count one batch of flows (a flow table, or a part of one; the columns of
        :data:`_RESOLVER_COLUMNS`, missing values read as '')."""
        if not len(flows) or any(c not in flows for c in _RESOLVER_COLUMNS):
            return
        dns = flows[(_text_column(flows, "purpose") == "dns").to_numpy()]
        if not len(dns):
            return
        got = dns[(_text_column(dns, "dns_rcode") != "").to_numpy()]
        if len(got):
            for key in _resolver_keys(got).drop_duplicates().itertuples(index=False, name=None):
                if key in self.answered or len(self.answered) < MAX_RESOLVER_PAIRS:
                    self.answered.add(key)
        plain = dns[plain_unanswered(dns)]
        if len(plain):
            for key, n in _resolver_keys(plain).groupby(["client", "resolver", "port", "proto"],
                                                        sort=False).size().items():
                if key in self.unanswered or len(self.unanswered) < MAX_RESOLVER_PAIRS:
                    self.unanswered[key] = self.unanswered.get(key, 0) + int(n)

    def count(self) -> int:
        """The blocked ``no_answer`` DNS flows (:func:`plain_unanswered`) whose client got an answer
        from the same resolver (address, port and protocol) in the flows added."""
        return sum(n for key, n in self.unanswered.items() if key in self.answered)

    @classmethod
    def of(cls, flows: pd.DataFrame) -> int:
        """:meth:`count` of a whole flow table."""
        s = cls()
        s.add(flows)
        return s.count()


def plain_unanswered(flows: pd.DataFrame) -> np.ndarray:
    """bool per flow of ``flows``: a blocked ``no_answer`` DNS flow (purpose ``dns``) that nothing
    else explains: not cut short by the capture's end (:func:`cut_short`), no response that matched
    none of its queries (``dns_unmatched``), no answer lost as IP fragments
    (:data:`~kscc_traffic.classify.DNS_LOST_FRAGMENTS`). Read from the ``purpose``, ``verdict``,
    ``reason``, ``detail`` (its own notes, read as :func:`cut_short` does) and ``dns_unmatched``
    columns (missing values, or a column missing, read as '')."""
    if not len(flows):
        return np.zeros(0, bool)
    reason = _text_column(flows, "reason").str.split(",").str[0].to_numpy(dtype=object)
    out = ((_text_column(flows, "purpose") == "dns").to_numpy() & (_text_column(flows, "verdict") == "blocked")
           .to_numpy() & (reason == "no_answer") & (_text_column(flows, "dns_unmatched") == "").to_numpy())
    rows = np.flatnonzero(out)
    if len(rows):
        detail = _text_column(flows, "detail").to_numpy(dtype=object)[rows].tolist()
        other = cut_short(["no_answer"] * len(rows), detail) \
            | np.fromiter((bool(DNS_LOST_FRAGMENTS.match(str(d))) for d in detail), bool, len(rows))
        out[rows[other]] = False
    return out


def dns_answered_fix(n: int) -> str:
    """What to change for ``n`` DNS queries nothing answered, sent to a resolver that answered
    other queries of the same client in the capture (:class:`ResolverAnswers`): DNS to it is
    open; the resolver's own lookup of that name or a filter on it is what failed."""
    return (f"{_queries_were(n)} unanswered by a resolver that answered other queries of the same client in the "
            "capture (DNS to it is open: no port to allow): most likely the resolver got no answer for that name "
            "upstream in time for the client (its forwarders or the name's DNS servers unreachable or slow from "
            "it), or a DNS filter drops queries for that name (a DNS filtering service, an RPZ policy on the "
            "resolver): check the resolver's log and filtering policy for the name (see the flagged DNS flows), "
            "let its own lookups out (UDP and TCP 53) and check its forwarders")


def dns_closed_fix(n: int) -> str:
    """What to change for ``n`` DNS queries answered by an ICMP port unreachable from the resolver's
    own address (the query arrived; nothing listens on port 53 there): the resolver address the
    agents are given or its DNS service first (newcomer s60 #2), then a reject rule, its own or a
    router's on the path answering in its name (review s60 #6: Linux and nftables reject rules do)."""
    return (f"{_queries_were(n)} answered by ICMP port unreachable from the resolver's own address: nothing "
            "listens on port 53 there, or a firewall rejects the queries in its name: check the DNS server address "
            "the agents are given (DHCP, their network settings) and that a DNS service runs on that host; if it "
            "does, a reject rule refuses them (the resolver's own firewall, or a router's on the path): allow DNS "
            "(UDP and TCP 53) from the clients to it there")


def dns_one_way_fix(n: int) -> str:
    """What to change for ``n`` DNS queries nothing answered (0: not counted) in a capture that
    holds one direction only (:func:`one_way_capture`): nothing yet, their answers may have come
    (newcomer s60 #1: "allow DNS" was advised under the warning that said so)."""
    return (f"{_queries_were(n) if n else 'queries were'} unanswered in this capture, which holds one direction only "
            "(no TCP flow has packets both ways, and the agent's packets acknowledge answers that are not in it: see "
            "the Warning): their answers may have come; capture both directions (on the agent itself) before "
            "changing DNS")


def one_way_capture(flows: pd.DataFrame) -> bool:
    """Whether a flow table shows a capture that holds one direction only: no TCP flow with packets
    both ways, at least :data:`~kscc_traffic.capture.stats.ONE_WAY_MIN_FLOWS` flows judged seen one
    way (reason ``one_way``: their packets acknowledge the other side's, which are not in it) and
    no DNS flow with a packet of its responder (what :meth:`ReadStats.warn_one_way
    <kscc_traffic.capture.stats.ReadStats.warn_one_way>` warns of, as the flow table tells it).
    Over several captures (a ``capture`` column of two values or more), each of them must be so
    (:func:`_one_way_of_captures`: a normal capture's unanswered query beside a one-way capture is
    not told as one whose answer may be missing; review s60 #1).
    False for a table without ``proto``, ``orig_pkts``, ``resp_pkts``, ``reason`` or ``purpose``."""
    if not len(flows) or any(c not in flows for c in ("proto", "orig_pkts", "resp_pkts", "reason", "purpose")):
        return False
    parts = flows.groupby(flows["capture"].astype(str), sort=False) if "capture" in flows else [("", flows)]
    return _one_way_of_captures({c: _one_way_counts(g) for c, g in parts})


def _one_way_of_captures(counts: dict) -> bool:
    """Whether every capture of ``counts`` (capture -> :func:`_one_way_counts` of its flows, summed
    over its batches) holds one direction only (:func:`_one_way_capture`); False for none."""
    return bool(counts) and all(_one_way_capture(*c) for c in counts.values())


def _one_way_counts(flows: pd.DataFrame) -> tuple[int, int, int]:
    """(TCP flows with packets both ways, flows of reason ``one_way``, DNS flows with a responder
    packet) of a flow table with ``proto``, ``orig_pkts``, ``resp_pkts``, ``reason``, ``purpose``."""
    answered = pd.to_numeric(flows["resp_pkts"], errors="coerce").fillna(0).to_numpy() > 0
    sent = pd.to_numeric(flows["orig_pkts"], errors="coerce").fillna(0).to_numpy() > 0
    tcp = (flows["proto"].astype(str) == "tcp").to_numpy()
    one_way = (_text_column(flows, "reason").str.split(",").str[0] == "one_way").to_numpy()
    dns = (_text_column(flows, "purpose") == "dns").to_numpy()
    return int((tcp & sent & answered).sum()), int(one_way.sum()), int((dns & answered).sum())


def _one_way_capture(both: int, one_way: int, dns_answered: int) -> bool:
    from .capture.stats import ONE_WAY_MIN_FLOWS
    return both == 0 and one_way >= ONE_WAY_MIN_FLOWS and dns_answered == 0


def _queries_were(n: int) -> str:
    return "1 query was" if n == 1 else f"{n} queries were"


def dns_refused_fix(n: int) -> str:
    """What to change for ``n`` lookups of names the agent needs answered REFUSED."""
    return (f"{_queries_were(n)} answered REFUSED: the resolver refuses recursion for this client (it serves "
            "only other networks, or answers only for its own zones): set the clients to a resolver that serves "
            "them, or allow them on this one (a DNS filter set to refuse the names it blocks answers so too)")


def dns_v6_only_fix(n: int) -> str:
    """What to change for ``n`` AAAA lookups of an IPv6-only agent that only A answers resolved
    (:func:`~kscc_traffic.classify.v6_only_detail`)."""
    return (f"{_queries_were(n)} asked over IPv6 for an IPv6 address (AAAA) and got none, only IPv4 ones, in a "
            "capture with no IPv4 traffic: an IPv6-only agent cannot connect to them: give the resolver DNS64 "
            "with a NAT64 gateway on the path (or the agent IPv4)")


def dns_servfail_fix(n: int) -> str:
    """What to change for ``n`` lookups of names the agent needs answered SERVFAIL."""
    return (f"{_queries_were(n)} answered SERVFAIL: the resolver failed upstream, it got no answer from the "
            "servers it asks (its own DNS to the internet or to its forwarders blocked or down, or a DNSSEC "
            "validation failure): let the resolver's own lookups out (UDP and TCP 53) and check its forwarders")


def dns_nxdomain_fix(n: int, vendor: int | None = None) -> str:
    """What to change for ``n`` lookups of names the agent needs answered NXDOMAIN (the resolver
    says the name does not exist; newcomer s60 #7: counted only in the generic error advice), of
    which ``vendor`` (None: all) ask names under kaspersky.com: a local zone for kaspersky.com or a
    mistyped Administration Server name is said only for those; another's name (the certificate
    check's ``ocsp.digicert.com``) is not the Administration Server's address (review s60 #5)."""
    if vendor is not None and vendor < n:
        return (f"{_queries_were(n)} answered NXDOMAIN: the resolver says the name does not exist: a DNS filter "
                "answering so, or a local zone on the resolver for the name's domain (split DNS)"
                + (", or a wrong server name set on the agent (mistyped) for the Kaspersky names among them"
                   if vendor else "")
                + ": check the resolver's zones and filtering for the names (see the DNS names answered with an "
                "error)" + (" and the Administration Server address the agent is given" if vendor else ""))
    return (f"{_queries_were(n)} answered NXDOMAIN: the resolver says the name does not exist: a DNS filter "
            "answering so, a local zone for kaspersky.com on the resolver (split DNS), or a wrong server name set on "
            "the agent (mistyped): check the resolver's zones and filtering for the name (see the DNS names answered "
            "with an error) and the Administration Server address the agent is given")


def dns_mismatch_fix(by_id: int, by_question: int) -> str:
    """What to change for DNS queries whose every response matched none of them: ``by_id`` with
    a transaction ID no query had, ``by_question`` for another question than asked."""
    said = []
    if by_id:
        said.append(f"{_queries_were(by_id)} answered only with a transaction ID no query had")
    if by_question:
        said.append(f"{_queries_were(by_question)} answered only for another question than asked (another "
                    "name or type)")
    return ("; ".join(said) + ", which the client drops (see the flagged DNS flows): a DNS proxy, NAT or firewall "
            "on the path rewriting DNS (or answering for the resolver) does it, the answers do come back: fix or "
            "bypass that device, or point the clients at a resolver reached without it")


def dns_fragments_fix(n: int) -> str:
    """What to change for ``n`` DNS queries whose answers came back only as IP fragments of
    datagrams never captured whole (:data:`~kscc_traffic.classify.DNS_LOST_FRAGMENTS`): the
    resolver answered, a fragment was lost on the way (RFC 8900, RFC 7872 for IPv6)."""
    return (f"{_queries_were(n)} answered, but each answer came back as IP fragments and not all of them arrived "
            "(the resolver is reached and answers; a firewall or path drops IP fragments, IPv6 ones with a "
            "Fragment header most often): let IP fragments through between the resolver and the clients, or have "
            "the resolver keep its UDP answers unfragmented (an EDNS buffer size of 1232 bytes: a larger answer "
            "is then truncated and asked again over TCP 53)")


def dns_fix(reasons, resets: int | None = None, error_answers: int | None = None,
            cut: tuple[int, int] = (0, 0), kinds: dict[str, int] | None = None) -> str:
    """What to change for blocked DNS flows (name resolution: not in the vendor's port list, but
    needed to connect at all), from their reasons (``no_answer``, ``icmp_unreachable``,
    ``rejected``, ``wrong_source``: answered from another address, :data:`DNS_WRONG_SOURCE_FIX`) and, of the ``rejected`` ones, how many were ``resets`` (DNS over TCP answered
    by a TCP reset, detail :data:`~kscc_traffic.classify.DNS_TCP_RESET`) and ``error_answers``
    (an error or sinkhole answer for a name the agent needs); None: not counted (both are
    advised). ``cut``: (of the blocked ``no_answer`` ones those sent less than
    :data:`~kscc_traffic.classify.END_MARGIN_S` before the capture ended, :func:`cut_short`; all
    the blocked ``no_answer`` ones): when they are all cut short, "allow DNS" is not advised for
    them, the advice says to capture longer. ``kinds``: :func:`dns_blocked_kinds` of those flows
    (None: not counted): the error answers REFUSED (:func:`dns_refused_fix`: the resolver
    refuses this client) and SERVFAIL (:func:`dns_servfail_fix`: it failed upstream) advised
    apart from the others, and queries answered only by responses matching none of them
    (:func:`dns_mismatch_fix`) apart from those nothing answered: "allow DNS" is not advised for
    them; its key ``resolver_answered`` (not of :func:`dns_blocked_kinds`: :class:`ResolverAnswers`
    of the whole run), of the ``no_answer`` ones those sent to a resolver that answered other
    queries of the same client (:func:`dns_answered_fix`, first): nor for them; ``icmp_closed``,
    queries answered by a port unreachable from the resolver's own address: :func:`dns_closed_fix`
    (its address or service, not the firewall), "allow DNS" only for other ICMP errors; its key
    ``one_way_capture`` (not of :func:`dns_blocked_kinds`: :func:`one_way_capture` of the whole
    run, 1 or 0): the capture holds one direction only, the ``no_answer`` ones are advised as
    :func:`dns_one_way_fix` (their answers may be missing from it), not "allow DNS"."""
    out = []
    kinds = kinds or {}
    k, no_answer = cut
    reasons = set(reasons)
    if k:
        if k >= no_answer:
            reasons.discard("no_answer")
    by_id, by_question = kinds.get("mismatch_id", 0), kinds.get("mismatch_question", 0)
    frags = kinds.get("fragments", 0)
    answered = kinds.get("resolver_answered", 0) if "no_answer" in reasons else 0
    if (by_id + by_question or frags or answered) and k + by_id + by_question + frags + answered \
            - kinds.get("mismatch_cut", 0) >= kinds.get("no_answer", no_answer):
        # (every one answered, by responses the client drops, or by fragments never all arriving,
        # or sent to a resolver that answered the same client: DNS to it is open)
        reasons.discard("no_answer")
    if answered:
        out.append(dns_answered_fix(answered))
    icmp, closed = kinds.get("icmp", 0), kinds.get("icmp_closed", 0)
    if closed and "icmp_unreachable" in reasons:
        out.append(dns_closed_fix(closed))
    one_way = "no_answer" in reasons and bool(kinds.get("one_way_capture", 0))
    if one_way:
        out.append(dns_one_way_fix(max(kinds.get("no_answer", no_answer) - k - answered, 0)))
    if ("no_answer" in reasons and not one_way) or ("icmp_unreachable" in reasons and (not icmp or closed < icmp)):
        out.append("allow DNS (UDP and TCP 53) from the clients to their resolver, and the resolver's own lookups")
    if by_id + by_question:
        out.append(dns_mismatch_fix(by_id, by_question))
    if frags:
        out.append(dns_fragments_fix(frags))
    if "wrong_source" in reasons:
        out.append(DNS_WRONG_SOURCE_FIX)
    if "dns_truncated" in reasons:
        out.append("the resolver's answer was truncated (too large for UDP) and no retry over TCP got an address: "
                   "allow DNS over TCP (port 53/TCP) from the clients to their resolver")
    if "rejected" in reasons:
        refused, servfail = kinds.get("refused", 0), kinds.get("servfail", 0)
        if refused:
            out.append(dns_refused_fix(refused))
        if servfail:
            out.append(dns_servfail_fix(servfail))
        nxdomain = kinds.get("nxdomain", 0)
        if nxdomain:
            out.append(dns_nxdomain_fix(nxdomain, kinds.get("nxdomain_vendor", nxdomain)))
        v6_only = kinds.get("v6_only", 0)
        if v6_only:
            out.append(dns_v6_only_fix(v6_only))
        if error_answers is None or error_answers > refused + servfail + nxdomain + v6_only:
            out.append("make the resolver answer the names the agent needs (*.ksc.kaspersky.com and the other "
                       "Kaspersky names): an error or sinkhole answer means a DNS filter, split DNS or an upstream "
                       "failure (see the DNS names answered with an error)")
        if resets is None or resets:
            out.append(("a TCP reset to DNS over TCP: allow TCP 53" if resets is None else
                        f"{resets} DNS over TCP quer{'y was' if resets == 1 else 'ies were'} answered by a TCP "
                        "reset: allow TCP 53 to the resolver (answers too large for UDP need it)"))
    if k:
        out.append(f"{'1 query was' if k == 1 else f'{k} queries were'} unanswered when the capture ended, less than "
                   f"{END_MARGIN_S:g} s after {'it was' if k == 1 else 'they were'} sent (maybe before an answer "
                   "could come): capture longer (go on a few seconds after the agent starts) to tell"
                   + (" (the advice before it is for the others)" if out else ""))
    return "; ".join(out) or "check name resolution from the clients"


def dns_reason_texts(reasons, resets: int | None = None, error_answers: int | None = None,
                     kinds: dict[str, int] | None = None) -> dict[str, str]:
    """Why each reason of blocked DNS flows matters, by what happened (the HTML report's "Why
    flagged" for DNS; :data:`REASON_TEXT` speaks of connections): reason -> one sentence;
    ``resets``/``error_answers``/``kinds`` as for :func:`dns_fix` (None: not counted, both told;
    ``kinds``: REFUSED, SERVFAIL and responses matching no query told apart, and queries to a
    resolver that answered the same client, ``resolver_answered``)."""
    kinds = kinds or {}
    texts = {"no_answer": "the query got no answer: a firewall drops DNS to the resolver, or the resolver is "
                          "unreachable or down",
             "icmp_unreachable": "an ICMP error answered the query: no resolver listens at that address (port "
                                 "unreachable from the resolver's address), or a router or firewall refuses it",
             "wrong_source": "the answer came from another address than the one asked, and the client drops it (a "
                             "multihomed resolver answering from its other address, or a DNS redirect/NAT rule that "
                             "does not rewrite the answer's source): the name does not resolve",
             "dns_truncated": "the answer was truncated (too large for UDP) and no retry over TCP got an address: "
                              "DNS over TCP (port 53/TCP) to the resolver is blocked, or the client did not retry"}
    # (the unanswered queries' causes: the drop, responses the client drops, fragments never all
    # arriving; the drop left out when the other two explain every unanswered query)
    unanswered = kinds.get("no_answer", 0)
    mismatched = kinds.get("mismatch_id", 0) + kinds.get("mismatch_question", 0)
    frags = kinds.get("fragments", 0)
    answered = kinds.get("resolver_answered", 0)
    causes = [] if (mismatched or frags or answered) and mismatched + frags + answered >= unanswered \
        else [texts["no_answer"]]
    if answered:
        causes.insert(0, "the resolver answered the same client's other queries in the capture, not this one: it "
                         "got no answer for that name upstream in time, or a DNS filter drops queries for it")
    if mismatched:
        what = " or ".join(w for n, w in ((kinds.get("mismatch_id", 0), "by transaction ID"),
                                          (kinds.get("mismatch_question", 0), "by question")) if n)
        causes.append(f"responses came, but none matched its query ({what}), and the client drops them: a DNS "
                      "proxy, NAT or firewall on the path rewriting DNS")
    if frags:
        causes.append("the answer came back as IP fragments and not all of them arrived: a firewall or path drops "
                      "IP fragments (the resolver did answer)")
    texts["no_answer"] = "; or ".join(causes)
    rejected = []
    refused, servfail = kinds.get("refused", 0), kinds.get("servfail", 0)
    if refused:
        rejected.append("the resolver refused the query (REFUSED): it does not serve recursion to this client")
    if servfail:
        rejected.append("the resolver failed upstream (SERVFAIL): it got no answer from the servers it asks")
    nxdomain = kinds.get("nxdomain", 0)
    if nxdomain:
        rejected.append("the resolver said the name does not exist (NXDOMAIN): a DNS filter, a local zone for "
                        "the domain or a mistyped name")
    v6_only = kinds.get("v6_only", 0)
    if v6_only:
        rejected.append("an IPv6-only agent's AAAA query got no IPv6 address, only IPv4 ones it cannot use (no "
                        "DNS64)")
    if error_answers is None or error_answers > refused + servfail + nxdomain + v6_only:
        rejected.append("the resolver answered with an error (NXDOMAIN, SERVFAIL, REFUSED…) or a sinkhole "
                        "address for a name the agent needs: without its address the agent cannot connect")
    if resets is None or resets:
        rejected.append("a TCP reset answered a DNS over TCP query: a firewall rejects TCP 53, or the resolver "
                        "takes no DNS over TCP")
    texts["rejected"] = "; ".join(rejected)
    return {r: texts[r] for r in reasons if r in texts}


def undocumented_fix(n: int) -> str:
    """What to change for ``n`` unexpected flows outside every documented purpose (a Kaspersky
    name on a port no rule documents, ``undocumented_port``)."""
    them = "them" if n != 1 else "it"
    return (f"{n} flow{'s' if n != 1 else ''} to Kaspersky names on ports no rule documents (see the flagged "
            f"flows): if an agent made {them}, compare the ports it is set to use (Administration Server "
            f"address and port, proxy) with the documented ones; nothing in the documentation asks to open {them}")


def _closed_at(hosts, ports, known: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())) \
        -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``known`` (servers, ports) with those of ``hosts``/``ports`` (one per flow) added: each
    sorted, distinct, at most :data:`MAX_CLOSED_AT` servers (ports: at most the 65536)."""
    h = sorted(set(known[0]) | {str(x) for x in hosts})[:MAX_CLOSED_AT]
    return tuple(h), tuple(sorted(set(known[1]) | {int(x) for x in ports}))


def _list_text(items, what: str, most: int = 3) -> str:
    """``items`` as a short text: ``23101``, ``23101, 23102 and 23105``, ``a, b, c and 2 more
    ports`` (``what``: the noun for the ones left out, ``port`` or ``server``; '' for none: ``a, b, c
    and 2 more``)."""
    items = [str(x) for x in items]
    if len(items) <= most:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "?"
    more = len(items) - most
    return f"{', '.join(items[:most])} and {more} more" + (f" {what}{'s' if more != 1 else ''}" if what else "")


def ttl_word(v6: tuple[int, int] | None, bl: int) -> str:
    """The name of the IP header field a purpose's ``bl`` blocked flows came with (``v6``: its ok
    and blocked flows over IPv6, None: not counted): "hop limit" when all of them went over IPv6,
    "TTL" when none did (or not counted), else "TTL (hop limit)"."""
    if v6 is None or not v6[1]:
        return "TTL"
    return "hop limit" if v6[1] >= bl else "TTL (hop limit)"


def cloud_own_fix(r, bl: int, k: int, where: str, fix: str, field: str = "TTL") -> str:
    """The advice for ``k`` of a purpose's ``bl`` blocked flows (rule ``r``) answered by an ICMP port
    unreachable carrying the cloud server's own address with that server's own ``field`` (TTL or
    hop limit: :func:`cloud_refusals`), refusing ``where`` ("TCP 23101 on 203.0.113.10"): the server's
    own stack refused the port over a path that works; ``fix``: the advice so far (the others')."""
    report_it = f"report the server and port ({where}) to Kaspersky support"
    if k >= bl:
        return (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP port unreachable "
                f"from the cloud server itself, refusing {where}: it came with the server's own {field} (as its "
                "earlier packets), so the path to the server works and the server (or its host firewall) refused "
                "the port: nothing to open on this network for it. Check the port the agent is set to use (the "
                "Administration Server's address and port in the agent's settings or installation package); if it "
                f"is right, {report_it} (only a firewall on the path that copies the server's {field} looks the "
                f"same: then {r.fix})")
    return (f"{fix}; {k} of them {'was' if k == 1 else 'were'} answered by ICMP port unreachable from the cloud "
            f"server itself ({where}, with the server's own {field}): the server refused the port; {report_it}")


def _service_check(r) -> str:
    """The advice to check that a rule's service runs on the host that answered (``r``: a
    :class:`kscc_traffic.rules.Rule`): "check that the service for it is running and listening
    on TCP 13111 there (…its purpose…)", naming the service on a managed network's own device
    (:func:`service_name`; newcomer s60 #10: "the service for it" alone)."""
    name = service_name(r)
    return (f"check that the service for it is running and listening on {r.transport.upper()} "
            f"{r.port_text} there ({r.purpose[:1].lower()}{r.purpose[1:].rstrip('.')}"
            + (f"; the service: {name})" if name else ")"))


def service_name(r) -> str:
    """The service that answers on rule ``r``'s port on a managed network's own device (the
    vendor page's §B, an agent's ports, and §C, a distribution point's): the KSN Proxy service
    where the rule's condition names it, else the Network Agent service (``klnagent``); '' for
    the cloud's ports (§A)."""
    if "KSN Proxy service" in (r.condition or ""):
        return "KSN Proxy on the distribution point"
    if r.section in ("§B", "§C"):
        return "the Network Agent service, klnagent"
    return ""


#: the columns :func:`readiness` cannot do without (the others it reads are used when present)
READINESS_COLUMNS = ("purpose", "verdict", "reason")

#: the text columns :func:`readiness` reads: a missing value (``NaN``, as ``pd.read_csv`` gives for
#: an empty cell of the tool's own CSV) is taken as empty text
_READINESS_TEXT = ("purpose", "verdict", "reason", "detail", "server_name", "proxy_target", "resp_h", "capture")


#: the text columns a :class:`TableSummary` of a whole table reads (:meth:`TableSummary.of`), filled
#: when missing: those :func:`readiness` reads and the flow facts the classifier reads
_SUMMARY_TEXT = tuple(dict.fromkeys(_READINESS_TEXT + _TEXT_COLUMNS + ("uid", "dns_unmatched")))


def text_filled(flows: pd.DataFrame, columns) -> pd.DataFrame:
    """``flows`` with each of ``columns`` it has that holds a missing value (``NaN``, ``None``,
    ``pd.NA``: what ``pd.read_csv`` gives for an empty cell) filled with '' and made text; the
    same frame when none does (no copy)."""
    filled = {}
    for c in columns:
        if c in flows and flows[c].isna().any():
            # (a column of empty cells only reads as float64: _text_column goes through object)
            filled[c] = _text_column(flows, c).astype(object)
    return flows.assign(**filled) if filled else flows


def _dns_advice(summary: "TableSummary") -> tuple[list[str], str]:
    """(the reasons of the blocked DNS flows, sorted; their advice: :func:`dns_fix`) from a
    :class:`TableSummary`'s counts."""
    why = sorted(summary.reasons.get("dns", ()))
    return why, dns_fix(why, *((summary.dns_resets, summary.dns_error_answers) if summary.detail_seen
                               else (None, None)), cut=(summary.bl_cut.get("dns", 0), summary.dns_no_answer),
                        kinds={**summary.dns_kinds, "resolver_answered": summary.resolvers.count(),
                               "one_way_capture": int(_one_way_of_captures(summary.one_way_by_capture))}
                        if summary.detail_seen else None)


def dns_advice(flows: pd.DataFrame, rules: RuleSet | None = None) -> dict | None:
    """What to change for name resolution, as the terminal report's "What to change" says it after
    the checklist's rows (DNS is no port of the vendor's page, so no row of :func:`readiness`, but
    the agent connects to nothing it cannot resolve): a dict with the keys of :func:`readiness`'s
    columns (``rule`` ``dns``, ``transport`` ``udp/tcp``, ``ports`` ``53``, ``status`` ``blocked``,
    ``reasons`` the blocked DNS flows' reasons, ``fix`` :func:`dns_fix`'s advice…), or None when no
    DNS flow is blocked, or no flow is KSC agent traffic (:func:`no_ksc_traffic`: no advice built
    on other programs' lookups).

    :param flows: a flow table of :func:`kscc_traffic.analyze`, also one read back from its CSV
        with ``pd.read_csv``; the columns it reads (``purpose``, ``verdict``, ``reason``,
        ``detail``, ``dns_rcode``…) are taken as empty when absent, so a table without
        ``purpose`` and ``verdict`` (an empty ``pd.DataFrame()``) gives None.
    :param rules: the documented purposes (None: the bundled rules, :func:`kscc_traffic.load_rules`).
    :returns: None, or a dict of 14 items, the keys of :func:`readiness`'s columns in its order
        (``rule``, ``transport``, ``ports``, ``section``, ``purpose_text``, ``status``,
        ``status_note``, ``reasons``, ``fix``, ``purpose`` (``dns``, as ``rule``) ``str``; ``flows``, ``ok``, ``blocked``,
        ``unexpected`` ``int``: the DNS flows' counts), so that
        ``pd.concat([checklist, pd.DataFrame([advice])])`` adds it as a row.
    :raises RulesError: ``rules`` is None and the bundled rules cannot be loaded (a damaged
        installation).
    """
    from .rules import load_rules
    rules = rules if rules is not None else load_rules()
    summary = TableSummary.of(flows)
    bl = summary.counts.get(("dns", "blocked"), 0)
    if not bl or summary.no_ksc_headline(rules):
        return None
    why, fix = _dns_advice(summary)
    ok, un = summary.counts.get(("dns", "ok"), 0), summary.counts.get(("dns", "unexpected"), 0)
    return {"rule": "dns", "transport": "udp/tcp", "ports": "53", "section": "",
            "purpose_text": "name resolution (not in the vendor's port list, but needed to connect at all)",
            "status": "blocked", "status_note": "", "flows": sum(c for (p, _), c in summary.counts.items()
                                                                 if p == "dns"),
            "ok": ok, "blocked": bl, "unexpected": un, "reasons": ", ".join(why), "fix": fix, "purpose": "dns"}


def readiness(flows: pd.DataFrame, rules: RuleSet | None = None) -> pd.DataFrame:
    """One row per documented purpose: ``rule`` (id), ``transport`` (``tcp``/``udp``), ``ports``
    (``23100-23199``), ``section`` (``§A``…), ``purpose_text`` (what the port is for, the vendor
    page's sentence in English), ``status``
    (verified / blocked / unexpected / port open / seen one-way / not seen: :data:`STATUS_ORDER`),
    ``status_note`` (what qualifies a ``blocked`` status, '' else: :data:`CUT_SHORT_NOTE` when the
    blocked flows are all attempts the capture's end cut short, whose ``fix`` is then to capture
    longer, not to open a port; :data:`NAMELESS_NOTE` when, on a port every browser uses (443, 80),
    none of them named a server: they may be another program's, as ``fix`` says first; on a "not seen"
    purpose, :data:`NOT_KSC_NOTE` when no flow at all is KSC agent traffic (:func:`no_ksc_traffic`)
    and its port carried other programs' flows, judged on nothing: :func:`not_ksc_row`; on a "not seen"
    multicast purpose, :data:`JOINED_NOTE` when the device joined multicast groups (IGMP/MLD
    membership reports: :func:`joined_row`, whose ``fix`` is then what to check)), ``flows``, ``ok``, ``blocked``, ``unexpected``,
    ``reasons`` (the distinct reasons seen), ``fix`` (what to change, from the rule), ``purpose``
    (the same id as ``rule``, under the flow table's column name: ``flows.merge(checklist,
    on="purpose")``; ``rule`` is kept for existing code).

    One blocked flow makes the purpose ``blocked`` however many of its flows were ok (else one
    unexpected flow makes it ``unexpected``); ``fix`` then starts with how many were ok
    (``395 of 436 flows ok, 41 blocked (…): allow outbound …``; the address families are
    compared for the same server names only, :func:`same_destinations`); when some were unexpected too,
    each kind is counted and given its own advice (``1 of 5 flows ok, 2 blocked, 2 unexpected (2
    tls_intercepted). For the blocked ones: allow outbound …. For the unexpected ones: … exclude
    these names from inspection (*.ksc.kaspersky.com)``).

    ``host_mismatch`` flows (a name outside the rule's mask: another service on a shared port
    such as 443 or 80) and ``wrong_direction`` flows (the documented port as the opener's source
    port) make the status ``unexpected`` only when nothing else was seen for the purpose (a
    verified purpose stays verified), and then ``fix`` says what they are, not to open the
    firewall (:data:`NOT_THIS_PURPOSE`). ``tls_intercepted`` and ``not_tls`` flows were answered
    on the port: their ``fix`` is what the reason calls for (:data:`REASON_TEXT`: exclude the
    names from TLS inspection…), not to open the firewall (:data:`ANSWERED_UNEXPECTED`).

    :param flows: a flow table of :func:`kscc_traffic.analyze` (columns :data:`kscc_traffic.COLUMNS`),
        also one read back from its CSV with ``pd.read_csv`` (a missing text value is taken as
        empty text); it needs ``purpose``, ``verdict`` and ``reason`` (:data:`READINESS_COLUMNS`),
        the others it reads (``detail``, ``server_name``, ``resp_h``, ``resp_pkts``,
        ``orig_bytes``, ``resp_bytes``, ``proxy_target``, ``capture``…) refine the advice when
        present.
    :param rules: the documented purposes (default: the bundled rules, :func:`kscc_traffic.load_rules`).
    :returns: DataFrame, one row per rule in the rules' order (index 0…n-1), the columns above in
        that order: ``flows``, ``ok``, ``blocked``, ``unexpected`` ``int64`` (flow counts), the
        others text, ``object`` columns of Python ``str`` (``''`` when empty), as the flow table's
        (not pandas 3's ``str`` dtype); the same columns and dtypes for an empty flow table.
    :raises ValueError: ``flows`` lacks a column of :data:`READINESS_COLUMNS` (the message names
        them), e.g. an empty ``pd.DataFrame()`` (an empty flow table of :func:`kscc_traffic.analyze`
        has every column, and gives every purpose "not seen").
    """
    missing = [c for c in READINESS_COLUMNS if c not in flows]
    if missing:
        raise ValueError(f"readiness: the flow table has no column {', '.join(map(repr, missing))} (it needs "
                         f"{', '.join(READINESS_COLUMNS)}: a table of kscc_traffic.analyze, see kscc_traffic.COLUMNS)")
    if rules is None:
        from .rules import load_rules
        rules = load_rules()
    flows = text_filled(flows, _READINESS_TEXT)
    # (a NAT's translated copy of a connection listed too is not counted: each connection once,
    # by its inside copy; the blocked copies are said by the advice, natadvice.nat_fix)
    copy = nat_copy_mask(flows)
    bl_copies: dict[str, int] = {}
    if copy.any():
        cp = flows[copy]
        bl_copies = cp[cp["verdict"] == "blocked"].groupby("purpose", sort=False).size().to_dict()
        flows = flows[~copy].reset_index(drop=True)
    # (the details as the checks below read them: names from the packets quoted there taken out)
    udetail = np.array(unquoted_details(flows), dtype=object) if "detail" in flows else None
    icmp_all = np.array(icmp_column(flows), dtype=object)   # (the ICMP advice's own column)
    # (several captures: the advice names where the flagged flows are)
    captures = flows["capture"].to_numpy(dtype=object) if "capture" in flows and flows["capture"].nunique() > 1 \
        else None
    rows = []
    # the rows of each purpose, found once (a filter per rule would copy the table per rule)
    where = flows.groupby("purpose", sort=False).indices if len(flows) else {}
    verdict = reason = refused = None
    paths = proxy_paths(flows)
    restarts = RefusedAccepted()
    fam_names = family_names(flows)
    rates = RateWatch()
    rates.add(flows)
    after_ok, intermittent = rates.tallies()
    portals = PortalWatch()
    portals.add(flows)
    v4_seen = _v4_unicast(flows)   # (IPv4 in use: no "over IPv6" alone for an all-IPv6 purpose)
    restarts.add(flows)
    for r in rules.rules:
        at = where.get(r.id, ())
        ok = bl = un = other = proxied = 0
        ok_named = ok_answered = v6 = bl_named = ok_data = None
        bl_tls = bl_stale = bl_closed = bl_forged = one_way = bl_icpt = un_onprem = bl_cloud_own = 0
        bl_reset = un_failed = bl_refused = (0, 0)
        un_elsewhere: tuple[int, tuple[str, ...]] = (0, ())
        un_inbound = ok_fell = 0
        bl_handshake = bl_cut = bl_host = bl_local = bl_idle = bl_path = bl_lost = bl_plain_reset = bl_dropped = 0
        bl_cut_lost = 0
        bl_stalled = (0, 0, 0)
        bl_dated = 0
        closed_at: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())
        bl_route = bl_http = un_vendor = bl_mtu = bl_route_own = bl_dp_way = bl_elsewhere = bl_routed = 0
        bl_acked = 0
        bl_cert = NO_CERTS
        bl_icmp: dict[str, int] = {}
        http_statuses: tuple[str, ...] = ()
        bl_redirect: dict[str, int] = {}
        un_console = ok_other_cast = ok_partial = ok_refused = ok_slow = ok_held = ok_private = 0
        bl_slow_server = ""
        bl_nat: tuple[int, int] = (0, 0)
        bl_nat64: tuple[int, tuple[str, ...], tuple[str, ...]] = (0, (), ())
        icpt_cause = ""
        ok_other_kind = ""
        reasons: list[str] = []
        un_reasons: dict[str, int] = {}
        caps = None
        if len(at):
            if verdict is None:
                verdict, reason = flows["verdict"].to_numpy(), flows["reason"].to_numpy()
            v = verdict[at]
            ok, bl, un = (int(np.count_nonzero(v == k)) for k in ("ok", "blocked", "unexpected"))
            # (not those going on after an idle time: their start is in the capture)
            ok_partial = sum(1 for x, d in zip(reason[at][v == "ok"].tolist(), udetail[at][v == "ok"].tolist()
                                               if udetail is not None else [""] * len(at))
                             if "partial" in str(x).split(",") and not str(d).startswith(IDLE_GOES_ON)) if ok else 0
            # (what the tls_intercepted ones show, when they all show one cause: newcomer s60 #10)
            icpt = np.array([str(x).split(",")[0] == "tls_intercepted" for x in reason[at].tolist()], bool) \
                if (bl or un) and udetail is not None else None
            if icpt is not None and icpt.any():
                icpt_cause = intercepted_cause(udetail[at][icpt & (v != "ok")].tolist())
            # (the ok ones the server reset at the agent's first request: newcomer s60 #3)
            # (the ok ones' details, read once for the remarks below)
            ok_details = [str(d) for d in udetail[at][v == "ok"].tolist()] if ok and udetail is not None else []
            ok_refused = sum(1 for d in ok_details if d.startswith(REFUSED_AFTER_REQUEST))
            # (the ok ones slow to answer the handshake, or whose server stopped reading: s61 #5)
            ok_slow = sum(1 for d in ok_details if SLOW_HELLO in d)
            ok_held = sum(1 for d in ok_details if WINDOW_HELD in d)
            ok_private = sum(1 for d in ok_details if PRIVATE_CA_MEANS in d)
            bl_slow_server = ""
            if ok_slow and bl and "resp_h" in flows:
                slow, silent = slow_servers(udetail[at].tolist(), v.tolist(),
                                            flows["resp_h"].to_numpy(dtype=object)[at].tolist())
                bl_slow_server = min(slow & silent, default="")
            if captures is not None and (bl or un):
                cap = captures[at]
                flagged = tuple(dict.fromkeys(cap[v == ("blocked" if bl else "unexpected")].tolist()))
                good = tuple(dict.fromkeys(cap[v == "ok"].tolist()))
                caps = (flagged, good, bool(set(flagged) & set(good)))
            if un:
                un_kinds = [x.split(",")[0] for x in reason[at][v == "unexpected"].tolist() if x and x != "partial"]
                other = sum(1 for x in reason[at][v == "unexpected"].tolist()
                            if x.split(",")[0] in NOT_THIS_PURPOSE)
                un_reasons = {k: un_kinds.count(k) for k in set(un_kinds)}
                mism = np.array([x.split(",")[0] == "host_mismatch" for x in reason[at].tolist()], bool) \
                    if "host_mismatch" in un_reasons else None
                if "server_name" in flows and "host_mismatch" in un_reasons:
                    names = flows["server_name"].to_numpy(dtype=object)[at]
                    away = elsewhere_rows(r, reason[at], v, names,
                                          udetail[at] if "detail" in flows else None)
                    if away.any():
                        un_elsewhere = (int(np.count_nonzero(away)),
                                        tuple(dict.fromkeys(names[away].tolist()))[:MAX_ELSEWHERE_NAMES])
                    un_vendor = int(np.count_nonzero(
                        vendor_names(flows["server_name"].to_numpy(dtype=object)[at]) & mism & (v == "unexpected")))
                    if un_vendor:
                        un_console = int(np.count_nonzero(
                            console_names(names) & mism & (v == "unexpected")))
                if "detail" in flows:
                    un_onprem = sum(1 for x in udetail[at][v == "unexpected"].tolist()
                                    if str(x).startswith(ONPREM_PORT))
                    if "wrong_direction" in un_reasons:
                        un_inbound = sum(1 for x, y in zip(udetail[at][v == "unexpected"]
                                                           .tolist(), reason[at][v == "unexpected"].tolist())
                                         if str(x).startswith(INBOUND_STARTS) and y.split(",")[0] == "wrong_direction")
                    if "host_mismatch" in un_reasons:
                        # (not the on-premises leftovers: their advice is the agent's settings)
                        failed = mism & (v == "unexpected") & np.array(
                            [MISMATCH_FAILED in str(x) and not str(x).startswith(ONPREM_PORT)
                             for x in udetail[at]], bool)
                        vendor_failed = int(np.count_nonzero(failed & vendor_names(
                            flows["server_name"].to_numpy(dtype=object)[at]))) if "server_name" in flows else 0
                        un_failed = (int(np.count_nonzero(failed)), vendor_failed)
            if bl and "proxy_target" in flows:
                # (not a flow whose proxy answered 2xx: what failed inside the tunnel is its advice)
                refused = proxy_refused(flows) if refused is None else refused
                proxied = int(np.count_nonzero(refused[at]))
            reasons = sorted({x.split(",")[0] for x in set(reason[at].tolist()) if x and x != "partial"})
            one_way = sum(1 for x in reason[at][v == "unclassified"].tolist() if x.split(",")[0] == "one_way")
            if ok and "server_name" in flows:
                ok_named = int(np.count_nonzero(_names_a_server(flows["server_name"].to_numpy(dtype=object)[at])
                                                & (v == "ok")))
            if ok and "resp_pkts" in flows:
                ok_answered = int(np.count_nonzero((flows["resp_pkts"].to_numpy()[at] > 0) & (v == "ok")))
            if ok and "orig_bytes" in flows and "resp_bytes" in flows:
                ok_data = int(np.count_nonzero(_carried(flows)[at] & (v == "ok")))
            if ok and r.cast in ("broadcast", "multicast") and "detail" in flows:
                others = [x for x in udetail[at][v == "ok"].tolist() if OTHER_CAST in str(x)]
                ok_other_cast, ok_other_kind = len(others), other_cast_kind(others)
            if bl:
                bl_tls = sum(1 for x in reason[at][v == "blocked"].tolist() if x.split(",")[0] == "tls_failed")
                # (a TLS-inspecting proxy's certificate refused: the port is open, as for tls_failed)
                bl_icpt = sum(1 for x in reason[at][v == "blocked"].tolist() if x.split(",")[0] == "tls_intercepted")
                bl_tls += bl_icpt
                if "detail" in flows:
                    details = udetail[at][v == "blocked"].tolist()
                    bl_stale = sum(1 for x in details if str(x).startswith(STALE_ANSWER))
                    bl_handshake = sum(1 for x in details
                                       if str(x).startswith((HANDSHAKE_RESET, HANDSHAKE_CLOSE, REQUEST_RESET))
                                       or DIRECT_UNANSWERED.match(str(x)))
                    bl_host = sum(1 for x in details if str(x).startswith(SYNACK_NOT_TAKEN))
                    bl_lost = sum(1 for x in details if str(x).startswith(SYNACK_LOST))
                    bl_local = sum(1 for x in details if LOCAL_CLOUD in str(x))
                    bl_idle = sum(1 for x in details if str(x).startswith(IDLE_GOES_ON))
                    bl_path = sum(1 for x in details if str(x).startswith(PATH_RESET))
                    bl_stalled = stalled_counts(details, reason[at][v == "blocked"].tolist())
                    bl_dated = dated_count(details, reason[at][v == "blocked"].tolist())
                    bl_dp_way = sum(1 for x in details if DP_PATH_REFUSED in str(x))
                    if r.opener == PINNED_OPENER and "orig_h" in flows and "resp_h" in flows:
                        blocked_at = np.asarray(at)[v == "blocked"]
                        bl_routed = routed_unanswered(reason[blocked_at].tolist(), details,
                                                      flows["orig_h"].to_numpy(dtype=object)[blocked_at].tolist(),
                                                      flows["resp_h"].to_numpy(dtype=object)[blocked_at].tolist())
                    bl_elsewhere = sum(1 for x in details if str(x).startswith(ANSWERED_ELSEWHERE))
                    # (the ICMP advice from the icmp_unreachable column: names quoted in a detail
                    # could hold its words)
                    icmp = icmp_all[at][v == "blocked"].tolist()
                    closed, forged = port_unreachable(details, icmp)
                    bl_closed, bl_forged = int(np.count_nonzero(closed)), int(np.count_nonzero(forged))
                    # (one carrying a cloud server's address with that server's own TTL: its refusal)
                    own_cloud = cloud_refusals(details, icmp)
                    bl_cloud_own = int(np.count_nonzero(own_cloud))
                    bl_route, bl_route_own = route_counts(
                        details, flows["resp_h"].to_numpy(dtype=object)[at][v == "blocked"].tolist()
                        if "resp_h" in flows else [None] * len(details), icmp)
                    bl_mtu = sum(1 for x, y, z in zip(details, reason[at][v == "blocked"].tolist(), icmp)
                                 if mtu_holed(x, y, z))
                    if "history" in flows:
                        bl_acked = sum(1 for x, y, z in zip(details, reason[at][v == "blocked"].tolist(),
                                                            flows["history"].to_numpy(dtype=object)[at][v == "blocked"].tolist())
                                       if hello_acked(x, y, z))
                    bl_cert = cert_counts(details, reason[at][v == "blocked"].tolist())
                    bl_icmp = icmp_kinds(details, icmp)
                    refusals = [m.group(1) for m in map(HTTP_REFUSAL.match, map(str, details)) if m]
                    bl_http, http_statuses = len(refusals), tuple(sorted(set(refusals)))
                    for m in filter(None, map(REDIRECT_ANSWER.match, map(str, details))):
                        bl_redirect[m.group(1)] = bl_redirect.get(m.group(1), 0) + 1
                    if (bl_forged or bl_cloud_own) and "resp_h" in flows and "resp_p" in flows:   # (named by the advice)
                        blocked_at = np.asarray(at)[v == "blocked"][forged | own_cloud]
                        closed_at = _closed_at(flows["resp_h"].to_numpy(dtype=object)[blocked_at].tolist(),
                                               flows["resp_p"].to_numpy()[blocked_at].tolist())
                    bl_reset = (sum(1 for x in details if str(x).startswith(DP_RESET)),
                                sum(1 for x in details if str(x).startswith(DP_RESET_ITSELF)))
                    bl_refused = refused_counts(details)
                    bl_plain_reset = plain_resets(details)
                    bl_dropped = sum(1 for x in details if DROPPED_FALLBACK in str(x))
                    # (a filter's HTTP refusal of the ClientHello: the port is open, as for tls_failed)
                    bl_tls += sum(1 for x in details if str(x).startswith(FILTER_ANSWER))
                    bl_cut = int(np.count_nonzero(cut_short(reason[at][v == "blocked"].tolist(), details)))
                    bl_cut_lost = cut_lost(reason[at][v == "blocked"].tolist(), details) if bl_cut else 0
                    bl_nat, bl_nat64 = nat_counts(details), nat64_seen(details)
                    bl_nat = (bl_nat[0] + int(bl_copies.get(r.id, 0)), bl_nat[1])
                if "server_name" in flows:
                    bl_named = int(np.count_nonzero(_names_a_server(flows["server_name"].to_numpy(dtype=object)[at])
                                                    & (v == "blocked")))
            if (ok or bl) and "resp_h" in flows:
                six = _is_v6(flows["resp_h"].to_numpy(dtype=object)[at])
                # (an IPv6 attempt its client followed over IPv4: ok, not an ok flow over IPv6)
                fell = _fell_back(flows)[at] & (v == "ok")
                ok_fell = int(np.count_nonzero(fell))
                v6 = (int(np.count_nonzero(six & (v == "ok") & ~fell)),
                      int(np.count_nonzero(six & (v == "blocked"))))
        rows.append(_readiness_row(r, len(at), ok, bl, un, other, reasons, proxied, ok_named, ok_answered, v6,
                                   bl_tls, bl_named, bl_stale, un_reasons, bl_closed, one_way, bl_reset,
                                   closed_at, bl_route, bl_http, http_statuses, un_vendor, ok_data,
                                   bl_icpt, un_onprem, bl_forged, un_failed, un_inbound, bl_handshake=bl_handshake,
                                   bl_icmp=bl_icmp,
                                   proxy_paths=paths.get(r.id) if "proxy_target" in flows else None,
                                   bl_cut=bl_cut, caps=caps, bl_refused=bl_refused, un_elsewhere=un_elsewhere,
                                   bl_cloud_own=bl_cloud_own, bl_cut_lost=bl_cut_lost,
                                   bl_mtu=bl_mtu, bl_acked=bl_acked, bl_route_own=bl_route_own, bl_dp_way=bl_dp_way,
                                   bl_elsewhere=bl_elsewhere,
                                   bl_redirect=bl_redirect, un_console=un_console,
                                   ok_other_cast=ok_other_cast, ok_other_kind=ok_other_kind, bl_cert=bl_cert,
                                   ok_partial=ok_partial, ok_refused=ok_refused, icpt_cause=icpt_cause,
                                   ok_slow=ok_slow, ok_held=ok_held, bl_slow_server=bl_slow_server,
                                   bl_nat=bl_nat, bl_nat64=bl_nat64,
                                   ok_private=ok_private, bl_portal=portals.said(r.id),
                                   bl_restarted=restarts.said(r.id) if bl_refused[1] or bl_reset[0] else (0, ""),
                                   bl_host=bl_host, bl_local=bl_local, bl_idle=bl_idle, bl_path=bl_path,
                                   bl_stalled=bl_stalled, bl_dated=bl_dated,
                                   bl_lost=bl_lost, fam_same=same_destinations(fam_names, r.id),
                                   bl_plain_reset=bl_plain_reset, bl_after_ok=after_ok.get(r.id, 0) if bl else 0,
                                   bl_intermittent=intermittent.get(r.id, 0) if bl else 0,
                                   ok_fell=ok_fell, bl_dropped=bl_dropped, v4_seen=v4_seen, bl_routed=bl_routed))
    no_ksc = bool(len(flows)) and not any_ksc(flows, rules)
    if no_ksc:
        rows = [not_ksc_row(x) for x in rows]   # (the headline: no flow is KSC's, newcomer 28 F4)
    if len(flows) and (not no_ksc or _only_membership(flows)):
        # (joined, nothing came: newcomer 28 F3; also under the headline when the capture holds
        # nothing else, `tcpdump igmp or udp port 15001`: break-it s53 DP pass #3; not a video
        # application's join beside other programs' traffic: review s53 #4)
        joins, groups = group_joins(flows)
        rows = [joined_row(x, r, joins, groups) for x, r in zip(rows, rules.rules)]
    return checklist_frame(rows)


#: where an entry of "What to change" / "To verify" starts, and where its continuation lines do
#: (a hanging indent: each entry is told apart from the next; newcomer 32 F6)
ENTRY_INDENT, ENTRY_HANG = 2, 4


def print_entry(console: Console, text: str) -> None:
    """Print one entry of the table report's "What to change" or "To verify" list: ``text`` (one
    paragraph, already escaped) wrapped to the console's width with its first line indented
    :data:`ENTRY_INDENT` columns and its continuation lines :data:`ENTRY_HANG` (a word longer
    than a line is folded)."""
    from rich.text import Text

    width = max(console.width - ENTRY_HANG, 10)
    for i, line in enumerate(Text(text, overflow="fold").wrap(console, width)):
        line.rstrip()
        console.print(Text(" " * (ENTRY_HANG if i else ENTRY_INDENT)) + line, overflow="fold", crop=False)


def checklist_frame(rows: list[dict]) -> pd.DataFrame:
    """The checklist's rows (dicts of :func:`_readiness_row`) as :func:`readiness`'s table: the
    counts ``int64``, the text columns ``object`` (Python ``str`` values), as the flow table's,
    whatever pandas' default string dtype (``str`` under pandas 3). A last column ``purpose``
    repeats ``rule`` (the purpose's id): the flow table's name for it, so that
    ``flows.merge(checklist, on="purpose")`` works; ``rule`` stays (newcomer 32 F5)."""
    t = pd.DataFrame(rows)
    if "rule" in t.columns:
        t["purpose"] = t["rule"]
    return t.astype({c: object for c in t.columns if not pd.api.types.is_integer_dtype(t[c])})


#: (name, rcode) pairs a :class:`TableSummary` counts one by one; flows of further pairs are
#: only counted in total (bounded memory whatever the capture)
MAX_DNS_ERROR_KEYS = 10_000
#: DNS names with an error answer listed in the table report (the most frequent first)
MAX_DNS_ERRORS_SHOWN = 20
#: what a DNS error answer means, in a few words (the others: see RFC 1035 / RFC 2136)
DNS_RCODE_TEXT: dict[str, str] = {
    "NXDOMAIN": "the name does not exist (for this resolver)",
    "SERVFAIL": "the resolver could not resolve it (upstream DNS unreachable or failing)",
    "REFUSED": "the resolver refuses to answer this client or this name",
    "FORMERR": "the resolver could not read the query",
    "NOTIMP": "the resolver does not support this kind of query",
}
_DNS_ERROR_COLUMNS = ("name", "rcode", "flows")


#: what an ``rcode`` of :func:`dns_errors` ends with when the error answered the AAAA question only
#: (the flow's detail says :data:`~kscc_traffic.classify.AAAA_ONLY`; break-it s57 #11)
AAAA_ONLY_RCODE = " (AAAA only)"


def dns_answer_meaning(rcode: str, a_failed: bool = False) -> str:
    """What an ``rcode`` of :func:`dns_errors` means, in words ('' when not known); one ending
    with :data:`AAAA_ONLY_RCODE`: the same, for the IPv6 address only (the agent connects over
    IPv4 with the A answer), or, ``a_failed`` (the name's A query got an error answer too: another
    row of :func:`dns_errors`), that the A query failed as well (newcomer63 #2)."""
    if rcode.startswith("sinkhole "):
        return "a sinkhole address (nowhere, or the client itself): a DNS filter blocks the name"
    if rcode.endswith(AAAA_ONLY_RCODE):
        text = DNS_RCODE_TEXT.get(rcode[:-len(AAAA_ONLY_RCODE)], "an error")
        if a_failed:
            return (f"{text}, for the AAAA (IPv6 address) query; its A query got an error answer too "
                    "(the name's other row): not made up for by an IPv4 address")
        return (f"{text}, for the AAAA (IPv6 address) query only: an agent connects over IPv4 with the A "
                "answer (an IPv6-only network would need the AAAA one)")
    return DNS_RCODE_TEXT.get(rcode, "")


def dns_error_meanings(errs: pd.DataFrame) -> list[str]:
    """Per row of ``errs`` (:func:`dns_errors`), :func:`dns_answer_meaning` of its ``rcode``, an
    AAAA-only error's told whether a row of the same ``name`` without :data:`AAAA_ONLY_RCODE`
    (an error answer to its A query) is there too."""
    names = errs["name"].astype(str).tolist()
    rcodes = errs["rcode"].astype(str).tolist()
    a_failed = {n for n, r in zip(names, rcodes) if not r.endswith(AAAA_ONLY_RCODE)}
    return [dns_answer_meaning(r, n in a_failed) for n, r in zip(names, rcodes)]


def _dns_error_rows(flows: pd.DataFrame) -> pd.DataFrame:
    """The flows of ``flows`` whose ``dns_rcode`` is an error (not in
    :data:`kscc_traffic.classify.DNS_NO_ERROR`) or whose first answer is a sinkhole address,
    with ``dns_rcode`` replaced by ``sinkhole <address>`` for the latter; no rows when the table
    has no ``query`` or ``dns_rcode`` column."""
    if not len(flows) or "dns_rcode" not in flows or "query" not in flows:
        return flows.iloc[:0]
    bad = ~flows["dns_rcode"].isin(DNS_NO_ERROR)
    rcode = flows["dns_rcode"]
    if "dns_answers" in flows:
        answered = flows["dns_answers"].to_numpy(dtype=object)
        cand = np.flatnonzero(~bad.to_numpy() & (answered != ""))
        if len(cand):
            holes = {a: sinkhole_address(a) for a in set(answered[cand].tolist())}
            hole = np.array([holes[a] for a in answered[cand].tolist()], object)
            at = cand[hole != ""]
            if len(at):
                rcode = rcode.to_numpy(dtype=object).copy()
                rcode[at] = "sinkhole " + hole[hole != ""]
                bad = bad.to_numpy().copy()
                bad[at] = True
                rcode = pd.Series(rcode, index=flows.index)
    if "detail" in flows and bad.any():
        # (an error to the AAAA question only, the flow ok: said in the rcode, AAAA_ONLY_RCODE; the
        # detail's start rebuilt from the flow's own rcode and query, so no name from the packets
        # can fake it)
        at = np.flatnonzero(np.asarray(bad))
        sub = flows.iloc[at]
        only = [str(d).startswith(f"DNS answer {r} for {q}: {AAAA_ONLY};")
                for d, r, q in zip(sub["detail"].tolist(), sub["dns_rcode"].tolist(), sub["query"].tolist())]
        if any(only):
            rcode = pd.Series(np.asarray(rcode, dtype=object).copy(), index=flows.index)
            hit = at[np.asarray(only, bool)]
            rcode.iloc[hit] = [f"{r}{AAAA_ONLY_RCODE}" for r in rcode.iloc[hit].tolist()]
    return flows[bad].assign(dns_rcode=rcode[bad])


def dns_error_verdicts(flows: pd.DataFrame) -> dict[str, int]:
    """verdict -> DNS flows answered with an error (those :func:`dns_errors` counts): a name the
    agent needs is ``blocked``, another name ``ok`` (the resolver was reached and answered)."""
    err = _dns_error_rows(flows)
    if not len(err) or "verdict" not in err:
        return {}
    return {str(v): int(n) for v, n in err["verdict"].value_counts(sort=False).items()}


def _dns_error_counts(flows: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(query, dns_rcode) -> flows, for the flows of :func:`_dns_error_rows`; empty when the
    table has no ``query`` or ``dns_rcode`` column."""
    err = _dns_error_rows(flows)
    if not len(err):
        return {}
    return {(str(q), str(r)): int(n) for (q, r), n in
            err.groupby(["query", "dns_rcode"], sort=False).size().items()}


def _dns_error_frame(counts: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame([(q, r, n) for (q, r), n in rows], columns=list(_DNS_ERROR_COLUMNS)).astype(
        {"name": object, "rcode": object, "flows": np.int64})


def dns_errors(flows: pd.DataFrame) -> pd.DataFrame:
    """The DNS names that got an error answer: one row per (name, rcode), columns ``name`` (the
    flows' ``query``, untrusted packet text: escape it for display), ``rcode`` (``dns_rcode``,
    e.g. NXDOMAIN; ``sinkhole 0.0.0.0`` for a NOERROR answer with a sinkhole address, nowhere or
    the client itself, :func:`kscc_traffic.classify.sinkhole_address`), ``flows`` (int64: DNS
    flows with that ``dns_rcode``, or that sinkhole first among their ``dns_answers``), most
    flows first, then by name and rcode. Flows without a response or answered NOERROR with
    usable addresses only are not counted; no rows when the table has no ``dns_rcode`` column."""
    return _dns_error_frame(_dns_error_counts(flows))


_STATUS_STYLE = {"verified": "green", "blocked": "bold red", "unexpected": "yellow", "port open": "cyan",
                 "seen one-way": "cyan", "not seen": "dim"}
_VERDICT_STYLE = {"ok": "green", "blocked": "bold red", "unexpected": "yellow", "unclassified": "dim"}


def print_table(flows: pd.DataFrame, rules: RuleSet, console: Console, warnings: Iterable[str] = (),
                max_flagged: int = 40) -> None:
    """The default human report: flows per purpose, the readiness checklist, the flagged flows
    (:func:`print_summary` of the whole table)."""
    print_summary(TableSummary.of(flows, max_flagged, rules), rules, console)


def render_table(flows: pd.DataFrame, rules: RuleSet, width: int = 160) -> str:
    """The table report as plain text (no colour), e.g. for tests and files."""
    from rich.console import Console

    buf = io.StringIO()
    print_table(flows, rules, Console(file=buf, width=width, color_system=None, force_terminal=False))
    return buf.getvalue()


#: after the listed flows' count when a row stands for a group of failed attempts
#: (:mod:`kscc_traffic.attempts`; JSON Lines and CSV keep a row per flow)
GROUPED_NOTE = "; repeated attempts in one row each"


class TableSummary:
    """What the table report needs of a flow table, gathered batch by batch in bounded memory:
    flow counts per (purpose, verdict), the reasons seen per purpose, the first
    ``max_flagged`` flagged (blocked or unexpected) flows by :func:`flagged_rank` (blocked, then KSC
    agent traffic, then other flows; in time order inside each) plus their total count, and the flows
    per DNS name and error answer (:func:`dns_errors`; at most :data:`MAX_DNS_ERROR_KEYS`
    pairs, the flows of later pairs in ``dns_errors_dropped``), and the flows per capture
    (``captures``: name -> flows, in the order seen)."""

    def __init__(self, max_flagged: int = 40, rules: RuleSet | None = None) -> None:
        self.max_flagged = max_flagged
        #: the purposes on KSC-only ports (:func:`ksc_purposes` of the ``rules`` given, default the
        #: bundled ones): what :func:`flagged_rank` puts before other programs' flows
        self._ksc_purposes: frozenset | None = frozenset(ksc_purposes(rules)) if rules is not None else None
        self.flagged_rank = np.zeros(0, np.int8)  # per row of ``flagged``: its :func:`flagged_rank`
        self.flagged_blocked = 0                  # blocked flows among the listed ones (flagged_total)
        #: per rank of :func:`flagged_rank` (0-2): the flows of the group among the listed ones
        #: (``flagged_total``), shown or not (``flagged_groups_text`` says both when cut)
        self.flagged_group_total = [0, 0, 0]
        #: the earliest and latest ``ts_ns`` of all flows added (int, ns since the epoch; None before
        #: any): whether the flagged flows' times need their date (:func:`flagged_time_texts`)
        self.ts_first_ns: int | None = None
        self.ts_last_ns: int | None = None
        self.dns_error_counts: dict[tuple[str, str], int] = {}
        self.dns_errors_dropped = 0
        self.counts: dict[tuple[str, str], int] = {}
        self.other_hosts: dict[str, int] = {}    # purpose -> unexpected flows of NOT_THIS_PURPOSE
        self.proxied: dict[str, int] = {}        # purpose -> blocked flows an HTTP proxy refused (proxy_refused)
        self.proxy_paths: dict[str, ProxyPaths] = {}  # purpose -> flows through proxies (proxy_paths)
        self.proxy_seen = False                  # (a table with a proxy_target column was added)
        self.bl_stale: dict[str, int] = {}       # purpose -> blocked flows answered by an old connection
        self.ok_partial: dict[str, int] = {}     # purpose -> ok flows begun before the capture (partial)
        self.bl_handshake: dict[str, int] = {}   # purpose -> blocked flows reset/closed right after the handshake
        self.bl_host: dict[str, int] = {}        # purpose -> blocked flows whose SYN-ACKs the originator's host dropped
        self.bl_local: dict[str, int] = {}       # purpose -> blocked flows to a local address a cloud name led to
        self.bl_idle: dict[str, int] = {}        # purpose -> blocked flows going on after an idle time, unanswered
        self.bl_nat: dict[str, tuple[int, int]] = {}    # purpose -> blocked NAT copies, left unanswered (nat_counts)
        self.bl_nat64: dict[str, list] = {}      # purpose -> [blocked to NAT64, {prefix}, {IPv4 server}] (nat64_seen)
        self.nat_copies = 0                      # flows that are a NAT's translated copies of others (any verdict)
        # (purpose, verdict) -> of ``counts``, the NAT's translated copies (nat_copy_mask: not counted
        # in the per-purpose counts nor the checklist)
        self.copy_counts: dict[tuple[str, str], int] = {}
        self.bl_path: dict[str, int] = {}        # purpose -> blocked flows that worked, reset by a device (PATH_RESET)
        self.bl_stalled: dict[str, tuple[int, int, int]] = {}   # purpose -> blocked flows that stalled or whose session was gone (stalled_counts)
        self.bl_dated: dict[str, int] = {}       # purpose -> blocked tls_intercepted flows refused as out of date (dated_count)
        self.bl_lost: dict[str, int] = {}        # purpose -> blocked flows whose SYN-ACKs never got back (SYNACK_LOST)
        self.bl_cut: dict[str, int] = {}         # purpose -> blocked no_answer flows the capture's end cut short
        self.bl_closed: dict[str, int] = {}      # purpose -> blocked flows: port unreachable from the destination
        self.bl_forged: dict[str, int] = {}      # purpose -> blocked flows: one carrying a cloud server's address
        self.bl_cloud_own: dict[str, int] = {}   # ... one with that server's own TTL too (cloud_refusals)
        self.bl_cut_lost: dict[str, int] = {}    # purpose -> blocked, cut short, the file cut mid-record (cut_lost)
        self.closed_at: dict[str, tuple] = {}    # ... their (servers, ports) (_closed_at)
        self.bl_route: dict[str, int] = {}       # purpose -> blocked flows: network/host unreachable (ROUTE_ICMP)
        self.bl_mtu: dict[str, int] = {}         # purpose -> blocked tls_failed flows: a path-MTU black hole (MTU_HOLE)
        self.bl_acked: dict[str, int] = {}       # purpose -> blocked TLS sessions whose ClientHello was acknowledged only (hello_acked)
        self.bl_cert: dict[str, tuple[int, ...]] = {}   # purpose -> blocked tls_failed flows ended on the certificate (cert_counts)
        self.bl_route_own: dict[str, int] = {}   # purpose -> blocked flows: such an error from the server's address
        self.bl_dp_way: dict[str, int] = {}      # purpose -> blocked flows: refused on the way to a DP (DP_PATH_REFUSED)
        self.bl_routed: dict[str, int] = {}      # purpose -> blocked flows: unanswered, across subnets (routed_unanswered)
        self.bl_elsewhere: dict[str, int] = {}   # purpose -> blocked flows: SYN answered from elsewhere (ANSWERED_ELSEWHERE)
        self.bl_icmp: dict[str, dict[str, int]] = {}  # purpose -> kind -> blocked flows: ICMP not a refusal
        self.bl_http: dict[str, int] = {}        # purpose -> blocked flows: HTTP request refused (HTTP_REFUSAL)
        self.http_statuses: dict[str, set] = {}  # ... their statuses
        self.bl_redirect: dict[str, dict[str, int]] = {}  # purpose -> status -> ClientHellos redirected
        self.un_vendor: dict[str, int] = {}      # purpose -> unexpected host_mismatch flows to Kaspersky names
        self.un_console: dict[str, int] = {}     # ... of them to the Cloud Console's names (console_names)
        self.ok_data: dict[str, int] = {}        # purpose -> ok flows that carried a payload byte
        self.ok_refused: dict[str, int] = {}     # purpose -> ok flows the server reset at the first request
        self.ok_slow: dict[str, int] = {}        # purpose -> ok flows the server answered slowly (SLOW_HELLO)
        self.ok_held: dict[str, int] = {}        # purpose -> ok flows the server stopped reading (WINDOW_HELD)
        self.ok_private: dict[str, int] = {}     # purpose -> ok flows with a private CA's certificate (PRIVATE_CA_MEANS)
        self.slow_servers: dict[str, tuple[set, set]] = {}   # purpose -> slow_servers (at most MAX_SLOW_SERVERS each)
        self.icpt_causes: dict[str, set[str]] = {}   # purpose -> what its tls_intercepted flows show
        self.ok_other_cast: dict[str, int] = {}  # purpose -> ok datagrams of the other cast (OTHER_CAST)
        self.ok_other_kinds: dict[str, set] = {}  # purpose -> what they were sent as (other_cast_kind)
        self.data_seen = False                   # (a table with orig_bytes and resp_bytes was added)
        self.one_way: dict[str, int] = {}        # purpose -> unclassified flows seen one way (reason one_way)
        # capture ('' for a table without the column) -> _one_way_counts summed: TCP both ways, one_way, DNS answered
        self.one_way_by_capture: dict[str, list[int]] = {}
        self.bl_reset: dict[str, int] = {}       # purpose -> blocked flows: a distribution point's reset
        self.bl_reset_own: dict[str, int] = {}   # ... of them on the client's subnet
        self.bl_refused: dict[str, tuple[int, int]] = {}  # purpose -> refused_counts of its blocked flows
        self.un_elsewhere: dict[str, int] = {}   # purpose -> unexpected flows to another server (elsewhere_rows)
        self.elsewhere_names: dict[str, dict[str, None]] = {}  # ... their first names (MAX_ELSEWHERE_NAMES)
        self.dns_no_answer = 0                   # blocked DNS flows no_answer (of them the capture's end cut
        #                                          short: bl_cut["dns"])
        self.dns_resets = 0                      # blocked DNS flows: DNS over TCP answered by a reset
        self.dns_error_answers = 0               # blocked DNS flows rejected by an error or sinkhole answer
        self.dns_kinds = dict.fromkeys(DNS_KINDS, 0)  # blocked DNS flows: dns_blocked_kinds
        self.resolvers = ResolverAnswers()      # DNS: unanswered queries to resolvers that answered the client
        self.detail_seen = False                 # (a table with a detail column was added)
        self.bl_tls: dict[str, int] = {}         # purpose -> blocked flows tls_failed (or tls_intercepted)
        self.bl_icpt: dict[str, int] = {}        # purpose -> blocked flows tls_intercepted
        self.un_onprem: dict[str, int] = {}      # purpose -> unexpected flows: a DP port to a cloud name
        self.un_failed: dict[str, int] = {}      # purpose -> unexpected host_mismatch flows that failed
        self.un_inbound: dict[str, int] = {}     # purpose -> unexpected wrong_direction flows opened from outside
        self.un_failed_vendor: dict[str, int] = {}  # ... of them to a Kaspersky name
        self.bl_named: dict[str, int] = {}       # purpose -> blocked flows with a server_name
        self.ok_named: dict[str, int] = {}       # purpose -> ok flows with a server_name
        self.ok_answered: dict[str, int] = {}    # purpose -> ok flows with a responder packet
        self.v6: dict[tuple[str, str], int] = {}  # (purpose, verdict) -> flows over IPv6
        self.ok_fell: dict[str, int] = {}        # purpose -> IPv6 attempts followed over IPv4 (_fell_back)
        self.reasons: dict[str, set] = {}
        self.un_reasons: dict[str, dict[str, int]] = {}  # purpose -> unexpected flows per reason
        self.bl_reasons: dict[str, set] = {}     # purpose -> the reasons of its blocked flows
        self.flagged = pd.DataFrame()
        self.flagged_total = 0
        #: the failed attempts of the listed verdicts' flows per key (:class:`~kscc_traffic.attempts.AttemptGroups`):
        #: a group of them is listed as its first flow, its detail led by their summary
        self.attempts = AttemptGroups()
        self.flagged_key = np.full(0, None, object)   # per row of ``flagged``: its attempt key (None: none)
        #: the verdicts whose flows ``flagged`` lists: blocked and unexpected, and those a
        #: ``--verdict`` filter asks for (``analyze --verdict unclassified`` lists those flows)
        self.listed: tuple[str, ...] = ("blocked", "unexpected")
        self.total = 0
        self.captures: dict[str, int] = {}
        self.verdict_captures: dict[tuple[str, str], dict[str, None]] = {}  # (purpose, verdict) -> its captures
        self.named_seen = False                  # (a table with a server_name column was added)
        self.vendor_seen = 0                     # flows whose name makes them KSC agent traffic (ksc_named)
        self.capture_ksc: dict[str, bool] = {}   # capture -> one of its flows is named as KSC's (ksc_named)
        self.capture_purposes: dict[str, set] = {}  # capture -> the purposes of its flows
        self.cut_unnamed = 0                     # TCP flows cut by the snaplen before a name was read (cut_unnamed)
        self.proxies: dict = {}                  # failed attempts to a usual proxy port (silent_proxies)
        self.answered_seen = False               # (a table with a resp_pkts column was added)
        self.joins = 0                           # IGMP/MLD membership reports (group_joins)
        self.membership = 0                      # IGMP and ICMP flows (_only_membership)
        self.join_groups: set = set()            # ... the groups they name (the first ones, bounded)
        self.v6_seen = False                     # (a table with a resp_h column was added)
        # (purpose, verdict, over IPv6) -> server names, None: unknown (family_names)
        self.family_names: dict[tuple[str, str, bool], frozenset | None] = {}
        self.bl_plain_reset: dict[str, int] = {}  # purpose -> plain_resets of its blocked flows
        self.v4_seen = False                     # (a unicast flow over IPv4 was added: _v4_unicast)
        self.bl_dropped: dict[str, int] = {}      # purpose -> blocked IPv6 attempts unanswered, then IPv4 (DROPPED_FALLBACK)
        self.rates = RateWatch()                 # unanswered attempts after a worked connection
        self.portals = PortalWatch()             # captive portals, and the blocked flows' servers
        #: (kind, scanner) -> [probes, hosts, ports, documented ports, first ts_ns, last ts_ns] of
        #: the scan probes (reason port_scan/address_scan): :func:`scan_lines`
        self.scans: dict[tuple[str, str], list] = {}
        #: the refused servers and ports that accepted a connection (bounded: :class:`RefusedAccepted`)
        self.restarts = RefusedAccepted()

    @classmethod
    def of(cls, flows: pd.DataFrame, max_flagged: int = 40, rules: RuleSet | None = None) -> "TableSummary":
        """The summary of a whole flow table (``rules``: as for the constructor), also one read back
        from its CSV with ``pd.read_csv``: a missing text value (``NaN``) is taken as empty text."""
        s = cls(max_flagged, rules)
        s.add(text_filled(flows, _SUMMARY_TEXT))
        return s

    def add(self, flows: pd.DataFrame) -> None:
        """Count one batch of flows (columns of :data:`kscc_traffic.analyze.COLUMNS`)."""
        if not len(flows):
            return
        self.total += len(flows)
        # (a NAT's translated copies of connections listed too: in the totals and the flagged
        # flows, not in the per-purpose counts nor the checklist, which count each connection
        # once, by its inside copy; the blocked ones are said by the NAT advice)
        copy = nat_copy_mask(flows)
        self.nat_copies += int(np.count_nonzero(copy))
        listed = flows
        if copy.any():
            cp = flows[copy]
            for (p, v), n in cp.groupby(["purpose", "verdict"], sort=False).size().items():
                self.copy_counts[(p, v)] = self.copy_counts.get((p, v), 0) + int(n)
            for p, n in cp[cp["verdict"] == "blocked"].groupby("purpose", sort=False).size().items():
                x, y = self.bl_nat.get(p, (0, 0))
                self.bl_nat[p] = (x + int(n), y)
        named_all = None                        # (ksc_named of every row, when computed for the captures)
        if "ts_ns" in flows:
            ts = flows["ts_ns"].to_numpy(dtype=np.int64)
            lo, hi = int(ts.min()), int(ts.max())
            self.ts_first_ns = lo if self.ts_first_ns is None else min(self.ts_first_ns, lo)
            self.ts_last_ns = hi if self.ts_last_ns is None else max(self.ts_last_ns, hi)
        if "capture" in flows:
            for c, n in flows.groupby("capture", sort=False).size().items():
                self.captures[c] = self.captures.get(c, 0) + int(n)
            judged = flows[flows["verdict"].isin(["ok", "blocked", "unexpected"])]
            for p, v, c in judged.groupby(["purpose", "verdict", "capture"], sort=False).size().index:
                self.verdict_captures.setdefault((p, v), {})[c] = None
            for c, p in flows.groupby(["capture", "purpose"], sort=False).size().index:
                self.capture_purposes.setdefault(c, set()).add(p)
            caps = flows["capture"].to_numpy(dtype=object)
            pending = [c for c in pd.unique(caps).tolist() if not self.capture_ksc.get(c, False)]
            if pending:
                # (a capture's own KSC name: ksc_named on the rows of the captures without one yet)
                rows = np.isin(caps, pending)
                named = ksc_named(flows[rows])
                if rows.all():
                    named_all = named
                for c, v in pd.Series(named).groupby(caps[rows], sort=False).any().items():
                    self.capture_ksc[c] = bool(v)
        for (p, v), n in flows.groupby(["purpose", "verdict"], sort=False).size().items():
            self.counts[(p, v)] = self.counts.get((p, v), 0) + int(n)
        if copy.any():
            flows = flows[~copy]
        partial_ok = False
        for (p, r, v), n in flows.groupby(["purpose", "reason", "verdict"], sort=False).size().items():
            if v == "ok" and "partial" in str(r).split(","):
                self.ok_partial[p] = self.ok_partial.get(p, 0) + int(n)
                partial_ok = True
            if r and r != "partial":
                self.reasons.setdefault(p, set()).add(r.split(",")[0])
                if v == "blocked":
                    self.bl_reasons.setdefault(p, set()).add(r.split(",")[0])
                if v == "unexpected":
                    kinds = self.un_reasons.setdefault(p, {})
                    kinds[r.split(",")[0]] = kinds.get(r.split(",")[0], 0) + int(n)
                if v == "unexpected" and r.split(",")[0] in NOT_THIS_PURPOSE:
                    self.other_hosts[p] = self.other_hosts.get(p, 0) + int(n)
                if v == "blocked" and r.split(",")[0] in ("tls_failed", "tls_intercepted"):
                    self.bl_tls[p] = self.bl_tls.get(p, 0) + int(n)
                if v == "blocked" and r.split(",")[0] == "tls_intercepted":
                    self.bl_icpt[p] = self.bl_icpt.get(p, 0) + int(n)
                if v == "blocked" and p == "dns" and r.split(",")[0] == "no_answer":
                    self.dns_no_answer += int(n)
                if v == "unclassified" and r.split(",")[0] == "one_way":
                    self.one_way[p] = self.one_way.get(p, 0) + int(n)
        if partial_ok and "detail" in flows:
            # (not those going on after an idle time: their start is in the capture)
            went_on = flows[(flows["verdict"] == "ok").to_numpy()
                            & flows["detail"].astype(str).str.startswith(IDLE_GOES_ON).to_numpy()]
            for p, n in went_on.groupby("purpose", sort=False).size().items():
                self.ok_partial[p] = self.ok_partial.get(p, 0) - int(n)
        if "proto" in flows:
            self.membership += int(flows["proto"].isin(("igmp", "icmp")).sum())
        if "proto" in flows and (flows["proto"] != "tcp").any():
            n, groups = group_joins(flows)
            self.joins += n
            for g in groups:
                if len(self.join_groups) < 4 * MAX_JOIN_GROUPS:
                    self.join_groups.add(g)
        if not self.vendor_seen:
            self.vendor_seen += int(np.count_nonzero(ksc_named(flows) if named_all is None else named_all))
            self.cut_unnamed += cut_unnamed(flows)
            for key, n in silent_proxies(flows).items():
                if key in self.proxies or len(self.proxies) < 4 * MAX_SILENT_PROXIES:
                    self.proxies[key] = self.proxies.get(key, 0) + n
        if "server_name" in flows:
            self.named_seen = True
            has_name = _names_a_server(flows["server_name"].to_numpy(dtype=object))   # (not an IP literal)
            named = flows[(flows["verdict"] == "ok").to_numpy() & has_name]
            for p, n in named.groupby("purpose", sort=False).size().items():
                self.ok_named[p] = self.ok_named.get(p, 0) + int(n)
            named = flows[(flows["verdict"] == "blocked").to_numpy() & has_name]
            for p, n in named.groupby("purpose", sort=False).size().items():
                self.bl_named[p] = self.bl_named.get(p, 0) + int(n)
            mism = ((flows["verdict"] == "unexpected") & (flows["reason"].str.split(",").str[0] == "host_mismatch"))
            if mism.any():
                self._add_elsewhere(flows[mism.to_numpy()])
                vendor = flows[mism.to_numpy() & vendor_names(flows["server_name"].to_numpy(dtype=object))]
                for p, n in vendor.groupby("purpose", sort=False).size().items():
                    self.un_vendor[p] = self.un_vendor.get(p, 0) + int(n)
                console = vendor[console_names(vendor["server_name"].to_numpy(dtype=object))]
                for p, n in console.groupby("purpose", sort=False).size().items():
                    self.un_console[p] = self.un_console.get(p, 0) + int(n)
        if "resp_h" in flows:
            self.v6_seen = True
            # (an IPv6 attempt its client followed over IPv4: ok, not an ok flow over IPv6, as readiness)
            fell = _fell_back(flows)
            if fell.any():
                for p, n in flows["purpose"][fell].value_counts(sort=False).items():
                    self.ok_fell[p] = self.ok_fell.get(p, 0) + int(n)
            six = flows[_is_v6(flows["resp_h"].to_numpy(dtype=object)) & ~fell]
            self.v4_seen = self.v4_seen or _v4_unicast(flows)
            for (p, v), n in six.groupby(["purpose", "verdict"], sort=False).size().items():
                self.v6[(p, v)] = self.v6.get((p, v), 0) + int(n)
            merge_family_names(self.family_names, family_names(flows))
        self.rates.add(flows)
        self.portals.add(flows)
        if "resp_pkts" in flows:
            self.answered_seen = True
            if all(c in flows for c in ("orig_pkts", "reason", "purpose")):
                parts = flows.groupby(flows["capture"].astype(str), sort=False) if "capture" in flows else [("", flows)]
                for c, g in parts:
                    mine = self.one_way_by_capture.setdefault(str(c), [0, 0, 0])
                    for i, n in enumerate(_one_way_counts(g)):
                        mine[i] += n
            answered = flows[(flows["verdict"] == "ok") & (flows["resp_pkts"] > 0)]
            for p, n in answered.groupby("purpose", sort=False).size().items():
                self.ok_answered[p] = self.ok_answered.get(p, 0) + int(n)
        if "orig_bytes" in flows and "resp_bytes" in flows:
            self.data_seen = True
            data = flows[(flows["verdict"] == "ok").to_numpy() & _carried(flows)]
            for p, n in data.groupby("purpose", sort=False).size().items():
                self.ok_data[p] = self.ok_data.get(p, 0) + int(n)
        if "detail" in flows:
            good = flows[flows["verdict"] == "ok"]
            refused = good[good["detail"].astype(str).str.startswith(REFUSED_AFTER_REQUEST).to_numpy()]
            for p, n in refused.groupby("purpose", sort=False).size().items():
                self.ok_refused[p] = self.ok_refused.get(p, 0) + int(n)
            for text, into in ((SLOW_HELLO, self.ok_slow), (WINDOW_HELD, self.ok_held),
                               (PRIVATE_CA_MEANS, self.ok_private)):
                slow = good[good["detail"].astype(str).str.contains(text, regex=False).to_numpy()]
                if len(slow):
                    # (as readiness reads them: a name quoted from the packets holding the words
                    # counts for nothing)
                    slow = slow[np.array([text in d for d in unquoted_details(slow)], bool)]
                for p, n in slow.groupby("purpose", sort=False).size().items():
                    into[p] = into.get(p, 0) + int(n)
            if "resp_h" in flows:
                # (the servers that answered a ClientHello slowly, and those that left one
                # unanswered: s61 #5)
                d = flows["detail"].astype(str)
                pick = (((flows["verdict"] == "ok") & d.str.contains(SLOW_HELLO, regex=False))
                        | ((flows["verdict"] == "blocked") & d.str.startswith(HELLO_UNANSWERED))).to_numpy()
                if pick.any():
                    some = flows[pick]
                    plain = np.array(unquoted_details(some), dtype=object)
                    for p, idx in some.groupby("purpose", sort=False).indices.items():
                        slow, silent = slow_servers(plain[idx].tolist(),
                                                    some["verdict"].to_numpy(dtype=object)[idx].tolist(),
                                                    some["resp_h"].to_numpy(dtype=object)[idx].tolist())
                        had = self.slow_servers.setdefault(p, (set(), set()))
                        for into, new in zip(had, (slow, silent)):
                            into.update(sorted(new)[:max(0, MAX_SLOW_SERVERS - len(into))])
            icpt = flows[(flows["verdict"] != "ok").to_numpy()
                         & (flows["reason"].astype(str).str.split(",").str[0] == "tls_intercepted").to_numpy()]
            if len(icpt):
                said = pd.Series(unquoted_details(icpt), index=icpt.index, dtype=object)
                for p, g in said.groupby(icpt["purpose"], sort=False):
                    # (each cause apart, '' for several: the purpose's one cause when all agree)
                    causes = self.icpt_causes.setdefault(p, set())
                    causes.update(intercepted_cause([x]) for x in g.tolist())
            # (blocked flows told apart by how their detail starts: a stale connection's answer,
            # a filter's HTTP refusal of the ClientHello, which is advised as a failed TLS)
            blocked = flows[flows["verdict"] == "blocked"]
            # (the details as the checks below read them: names from the packets quoted there taken out)
            detail = pd.Series(unquoted_details(blocked), index=blocked.index, dtype=object)
            self.detail_seen = True
            rejected = (blocked["purpose"] == "dns") & (blocked["reason"].str.split(",").str[0] == "rejected")
            reset = int((rejected & (detail == DNS_TCP_RESET)).sum())
            self.dns_resets += reset
            self.dns_error_answers += int(rejected.sum()) - reset
            for key, n in dns_blocked_kinds(blocked).items():
                self.dns_kinds[key] += n
            self.resolvers.add(flows)
            # (the ICMP advice from the icmp_unreachable column: names quoted in a detail could
            # hold its words)
            icmp = icmp_column(blocked)
            closed, forged = port_unreachable(detail.tolist(), icmp)
            closed = blocked[closed]
            for p, n in closed.groupby("purpose", sort=False).size().items():
                self.bl_closed[p] = self.bl_closed.get(p, 0) + int(n)
            own_cloud = cloud_refusals(detail.tolist(), icmp)
            for p, n in blocked[own_cloud].groupby("purpose", sort=False).size().items():
                self.bl_cloud_own[p] = self.bl_cloud_own.get(p, 0) + int(n)
            named = blocked[forged | own_cloud]
            forged = blocked[forged]
            for p, n in forged.groupby("purpose", sort=False).size().items():
                self.bl_forged[p] = self.bl_forged.get(p, 0) + int(n)
            for p, g in named.groupby("purpose", sort=False):
                if "resp_h" in g and "resp_p" in g:
                    self.closed_at[p] = _closed_at(g["resp_h"].tolist(), g["resp_p"].tolist(),
                                                   self.closed_at.get(p, ((), ())))
            status = detail.str.extract(HTTP_REFUSAL, expand=False)
            for p, g in status[status.notna()].groupby(blocked["purpose"][status.notna()], sort=False):
                self.bl_http[p] = self.bl_http.get(p, 0) + len(g)
                self.http_statuses.setdefault(p, set()).update(g.tolist())
            status = detail.str.extract(REDIRECT_ANSWER, expand=False)
            for (p, code), n in status[status.notna()].groupby(
                    [blocked["purpose"][status.notna()], status[status.notna()]], sort=False).size().items():
                into = self.bl_redirect.setdefault(p, {})
                into[code] = into.get(code, 0) + int(n)
            cut = blocked[cut_short(blocked["reason"].tolist(), detail.tolist())]
            for p, n in cut.groupby("purpose", sort=False).size().items():
                self.bl_cut[p] = self.bl_cut.get(p, 0) + int(n)
            for p, g in cut.groupby("purpose", sort=False):
                k = cut_lost(g["reason"].tolist(), detail[g.index].tolist())
                if k:
                    self.bl_cut_lost[p] = self.bl_cut_lost.get(p, 0) + k
            if "orig_h" in blocked and "resp_h" in blocked:
                plain = blocked[(blocked["reason"].astype(str).str.split(",").str[0] == "no_answer").to_numpy()]
                for p, g in plain.groupby("purpose", sort=False):
                    k = routed_unanswered(g["reason"].tolist(), detail[g.index].tolist(), g["orig_h"].tolist(),
                                          g["resp_h"].tolist())
                    if k:
                        self.bl_routed[p] = self.bl_routed.get(p, 0) + k
            way = blocked[detail.str.contains(DP_PATH_REFUSED, regex=False)]
            for p, n in way.groupby("purpose", sort=False).size().items():
                self.bl_dp_way[p] = self.bl_dp_way.get(p, 0) + int(n)
            routed = blocked[detail.str.contains(ROUTE_ICMP)]
            for p, g in routed.groupby("purpose", sort=False):
                a, b = route_counts(g["detail"].tolist(), g["resp_h"].tolist() if "resp_h" in g else [None] * len(g),
                                    icmp_column(g))
                self.bl_route[p] = self.bl_route.get(p, 0) + a
                self.bl_route_own[p] = self.bl_route_own.get(p, 0) + b
            holed = blocked[np.array([mtu_holed(x, y, z) for x, y, z in zip(detail.tolist(), blocked["reason"].tolist(), icmp)],
                                     bool)]   # (a bool array: an empty list would select columns)
            for p, n in holed.groupby("purpose", sort=False).size().items():
                self.bl_mtu[p] = self.bl_mtu.get(p, 0) + int(n)
            if "history" in blocked:
                acked = blocked[np.array([hello_acked(x, y, z) for x, y, z in zip(
                    detail.tolist(), blocked["reason"].tolist(), blocked["history"].tolist())], bool)]
                for p, n in acked.groupby("purpose", sort=False).size().items():
                    self.bl_acked[p] = self.bl_acked.get(p, 0) + int(n)
            certs = blocked[(blocked["reason"].astype(str).str.split(",").str[0] == "tls_failed")
                            & (detail.str.startswith(UNTRUSTED_PUBLIC)
                               | detail.str.contains(TLS13_HIDDEN, regex=False)
                               | detail.str.contains(ONE_WAY_CERT, regex=False)
                               | detail.str.contains(CERT_UNSEEN, regex=False)
                               | detail.str.contains(CERT_UNREAD, regex=False)
                               | detail.str.contains(CERT_REQUIRED, regex=False)
                               | detail.str.contains(CLIENT_CERT_ASKED, regex=False)
                               | detail.str.contains(PINNED_REFUSED, regex=False)
                               | detail.str.contains(PINNED_SILENT, regex=False)
                               | (detail.str.startswith("certificate for ")
                                  & detail.str.contains(OTHER_SERVER, regex=False))
                               | detail.str.contains(f": {VERSION_REFUSED}", regex=False)
                               | detail.str.contains(f": {SUITES_REFUSED}", regex=False))]
            for p, g in certs.groupby("purpose", sort=False):
                new = cert_counts(detail[g.index].tolist(), g["reason"].tolist())
                had = self.bl_cert.get(p, NO_CERTS)
                self.bl_cert[p] = tuple(a + b for a, b in zip(had, new))
            if detail.str.contains("by ICMP", regex=False).any():
                for p, g in blocked.groupby("purpose", sort=False):
                    for k, n in icmp_kinds(g["detail"].tolist(), icmp_column(g)).items():
                        kinds = self.bl_icmp.setdefault(p, {})
                        kinds[k] = kinds.get(k, 0) + n
            good = flows[flows["verdict"] == "ok"]
            good_detail = good["detail"].astype(str)
            other_cast = good_detail.str.contains(OTHER_CAST, regex=False)
            if other_cast.any():
                other_cast = pd.Series(unquoted_details(good), index=good.index, dtype=object) \
                    .str.contains(OTHER_CAST, regex=False)
            other_cast = good[other_cast]
            for p, n in other_cast.groupby("purpose", sort=False).size().items():
                self.ok_other_cast[p] = self.ok_other_cast.get(p, 0) + int(n)
            if len(other_cast):
                for p, d in zip(other_cast["purpose"].tolist(), unquoted_details(other_cast)):
                    self.ok_other_kinds.setdefault(p, set()).update(other_cast_kind([d]).split(" or "))
            unexpected = flows[flows["verdict"] == "unexpected"]
            un_detail = pd.Series(unquoted_details(unexpected), index=unexpected.index, dtype=object)
            onprem = unexpected[un_detail.str.startswith(ONPREM_PORT)]
            for p, n in onprem.groupby("purpose", sort=False).size().items():
                self.un_onprem[p] = self.un_onprem.get(p, 0) + int(n)
            inbound = unexpected[(unexpected["reason"].astype(str).str.split(",").str[0] == "wrong_direction")
                                 & un_detail.str.startswith(INBOUND_STARTS)]
            for p, n in inbound.groupby("purpose", sort=False).size().items():
                self.un_inbound[p] = self.un_inbound.get(p, 0) + int(n)
            failed = unexpected[(unexpected["reason"].astype(str).str.split(",").str[0] == "host_mismatch")
                                & un_detail.str.contains(MISMATCH_FAILED, regex=False)
                                & ~un_detail.str.startswith(ONPREM_PORT)]
            for p, n in failed.groupby("purpose", sort=False).size().items():
                self.un_failed[p] = self.un_failed.get(p, 0) + int(n)
            if len(failed) and "server_name" in failed:
                failed = failed[vendor_names(failed["server_name"].to_numpy(dtype=object))]
                for p, n in failed.groupby("purpose", sort=False).size().items():
                    self.un_failed_vendor[p] = self.un_failed_vendor.get(p, 0) + int(n)
            dropped = detail.str.contains(DROPPED_FALLBACK, regex=False)
            if dropped.any():
                for p, n in blocked[dropped].groupby("purpose", sort=False).size().items():
                    self.bl_dropped[p] = self.bl_dropped.get(p, 0) + int(n)
            plain = detail.str.startswith(REJ_DETAIL)
            if plain.any():
                for p, g in detail[plain].groupby(blocked["purpose"][plain], sort=False):
                    self.bl_plain_reset[p] = self.bl_plain_reset.get(p, 0) + plain_resets(g.tolist())
            if detail.str.contains(REFUSED_NEARER, regex=False).any() or \
                    detail.str.contains(REFUSED_OWN, regex=False).any():
                for p, g in detail.groupby(blocked["purpose"], sort=False):
                    a, b = refused_counts(g.tolist())
                    x, y = self.bl_refused.get(p, (0, 0))
                    self.bl_refused[p] = (x + a, y + b)
            dated = blocked[detail.str.contains(CERT_DATED, regex=False)]
            for p, g in dated.groupby("purpose", sort=False):
                self.bl_dated[p] = self.bl_dated.get(p, 0) + dated_count(detail[g.index].tolist(), g["reason"].tolist())
            stalled = blocked[detail.str.startswith(STALLED) | detail.str.contains(SESSION_GONE, regex=False)]
            for p, g in stalled.groupby("purpose", sort=False):
                new = stalled_counts(detail[g.index].tolist(), g["reason"].tolist())
                had = self.bl_stalled.get(p, (0, 0, 0))
                self.bl_stalled[p] = tuple(a + b for a, b in zip(had, new))
            for prefix, counts in ((STALE_ANSWER, self.bl_stale), (FILTER_ANSWER, self.bl_tls),
                                   (ANSWERED_ELSEWHERE, self.bl_elsewhere),
                                   (HANDSHAKE_RESET, self.bl_handshake), (HANDSHAKE_CLOSE, self.bl_handshake),
                                   (REQUEST_RESET, self.bl_handshake),
                                   (SYNACK_NOT_TAKEN, self.bl_host), (SYNACK_LOST, self.bl_lost),
                                   (IDLE_GOES_ON, self.bl_idle), (PATH_RESET, self.bl_path),
                                   (DP_RESET, self.bl_reset), (DP_RESET_ITSELF, self.bl_reset_own)):
                for p, n in blocked[detail.str.startswith(prefix)].groupby("purpose", sort=False).size().items():
                    counts[p] = counts.get(p, 0) + int(n)
            for p, n in blocked[detail.str.match(DIRECT_UNANSWERED)].groupby("purpose", sort=False).size().items():
                self.bl_handshake[p] = self.bl_handshake.get(p, 0) + int(n)
            for p, n in blocked[detail.str.contains(LOCAL_CLOUD, regex=False)].groupby("purpose", sort=False) \
                    .size().items():
                self.bl_local[p] = self.bl_local.get(p, 0) + int(n)
            self._add_nat(blocked, detail)
        if "proxy_target" in flows:
            self.proxy_seen = True
            px = flows[proxy_refused(flows)]
            for p, n in px.groupby("purpose", sort=False).size().items():
                self.proxied[p] = self.proxied.get(p, 0) + int(n)
            for p, paths in proxy_paths(flows).items():
                self.proxy_paths[p] = self.proxy_paths.get(p, ProxyPaths()).merged(paths)
        for key, n in _dns_error_counts(flows).items():
            if key in self.dns_error_counts or len(self.dns_error_counts) < MAX_DNS_ERROR_KEYS:
                self.dns_error_counts[key] = self.dns_error_counts.get(key, 0) + n
            else:
                self.dns_errors_dropped += n
        if "reason" in flows and "orig_h" in flows:
            self._add_scans(flows)
        self.restarts.add(flows)
        fl = listed[listed["verdict"].isin(self.listed)]
        if len(fl):
            self.flagged_total += len(fl)
            if self._ksc_purposes is None:
                from .rules import load_rules
                self._ksc_purposes = frozenset(ksc_purposes(load_rules()))
            rank = flagged_rank(fl, self._ksc_purposes)
            self.flagged_blocked += int(np.count_nonzero(rank == 0))
            for k, n in enumerate(np.bincount(rank, minlength=3).tolist()[:3]):
                self.flagged_group_total[k] += int(n)
            # (a failed attempt repeated, to the same server and port for the same reason: listed
            # once, as its group's first flow; newcomer s61: 13 unanswered retries were 13 rows)
            keys, seen = self.attempts.add(fl)
            fl, rank, keys = fl[~seen], rank[~seen], keys[~seen]
            first = np.lexsort((fl["ts_ns"].to_numpy(), rank))[:self.max_flagged]   # (bounded memory)
            fl, rank, keys = fl.iloc[first], rank[first], keys[first]
            both = pd.concat([self.flagged, fl]) if len(self.flagged) else fl
            ranks = np.concatenate([self.flagged_rank, rank])
            keys = np.concatenate([self.flagged_key, keys])
            # (the most important first, in time order inside each rank; ties in the order added)
            keep = np.lexsort((both["ts_ns"].to_numpy(), ranks))[:self.max_flagged]
            self.flagged, self.flagged_rank, self.flagged_key = both.iloc[keep], ranks[keep], keys[keep]

    def _add_scans(self, flows: pd.DataFrame) -> None:
        """Count the scan probes of ``flows`` (reason ``port_scan``/``address_scan``) per kind and
        scanner: :attr:`scans`."""
        reason = flows["reason"].to_numpy(dtype=object)
        at = np.flatnonzero((reason == PORT_SCAN) | (reason == ADDRESS_SCAN))
        if not len(at):
            return
        sub = flows.iloc[at]
        detail = sub["detail"].astype(str).to_numpy(dtype=object) if "detail" in sub else np.full(len(sub), "", object)
        for (kind, orig), g in sub.groupby([sub["reason"].astype(str), sub["orig_h"].astype(str)], sort=False).indices.items():
            got = self.scans.setdefault((kind, orig), [0, set(), set(), set(), None, None])
            ts = sub["ts_ns"].to_numpy(np.int64)[g]
            ports = sub["resp_p"].to_numpy(np.int64)[g]
            got[0] += len(g)
            got[1].update(sub["resp_h"].to_numpy(dtype=object)[g].tolist())
            got[2].update(ports.tolist())
            got[3].update(p for p, d in zip(ports.tolist(), detail[g].tolist()) if SCAN_DOCUMENTED in d)
            got[4] = int(ts.min()) if got[4] is None else min(got[4], int(ts.min()))
            got[5] = int(ts.max()) if got[5] is None else max(got[5], int(ts.max()))

    def listed_from(self, other: "TableSummary") -> None:
        """Take the listed flows of ``other`` (the flows a ``--verdict``/``--purpose``/``--reason``
        filter kept), keeping this summary's counts: ``flagged`` and its ranks, ``flagged_total``,
        ``flagged_blocked``, ``flagged_group_total``, ``listed``."""
        self.flagged, self.flagged_rank = other.flagged, other.flagged_rank
        self.flagged_key, self.attempts = other.flagged_key, other.attempts
        self.flagged_group_total = list(other.flagged_group_total)
        self.flagged_total, self.flagged_blocked = other.flagged_total, other.flagged_blocked
        self.listed = other.listed

    def flagged_more(self) -> str:
        """The line under the listed flows when there are more than ``max_flagged`` ('' else): how
        many are left out, how many of them are blocked (then ``--verdict blocked`` lists those), and
        where all of them are (``--format csv or jsonl``)."""
        shown = self.flagged_shown()
        more = self.flagged_total - int(shown.sum())
        if more <= 0:
            return ""
        hidden = self.flagged_blocked - int(shown[self.flagged_rank == 0].sum())
        if hidden > 0:
            return (f"… {more} more flagged flows, {hidden} of them blocked (--verdict blocked lists the blocked "
                    "ones; all of them: --format csv or jsonl)")
        return f"… {more} more flagged flows (use --format csv or jsonl)"

    def _add_nat(self, blocked: pd.DataFrame, detail: pd.Series) -> None:
        """Count, per purpose, the ``blocked`` flows (their unquoted ``detail``) that are a NAT's
        copies or left the device unanswered (:func:`~kscc_traffic.natadvice.nat_counts`), and those
        to NAT64 addresses with their prefixes and IPv4 servers (at most 64 of each kept)."""
        nat = detail.str.contains(NAT_OUTSIDE_COPY, regex=False) | detail.str.contains(NAT_LEFT, regex=False)
        for p, g in detail[nat].groupby(blocked["purpose"][nat], sort=False):
            a, b = nat_counts(g.tolist())
            x, y = self.bl_nat.get(p, (0, 0))
            self.bl_nat[p] = (x + a, y + b)
        six = detail.str.contains("is a NAT64 address", regex=False)
        for p, g in detail[six].groupby(blocked["purpose"][six], sort=False):
            k, prefixes, servers = nat64_seen(g.tolist())
            got = self.bl_nat64.setdefault(p, [0, {}, {}])
            got[0] += k
            for into, new in ((got[1], prefixes), (got[2], servers)):
                for x in new:
                    if len(into) < 64:
                        into[x] = None

    def flagged_shown(self) -> np.ndarray:
        """Per row of ``flagged`` (int64 array): the flows it stands for, 1, or its group's
        attempts (:attr:`attempts`)."""
        return np.array([max(1, self.attempts.count(k)) for k in self.flagged_key.tolist()], np.int64) \
            if len(self.flagged_key) == len(self.flagged) else np.ones(len(self.flagged), np.int64)

    def grouped_note(self) -> str:
        """After the listed flows' count when a row stands for several failed attempts
        (:meth:`flagged_shown`): ``; repeated attempts in one row each``; '' else."""
        return GROUPED_NOTE if bool((self.flagged_shown() > 1).any()) else ""

    def flagged_details(self, client: bool = False) -> list[str]:
        """The details of the rows of ``flagged`` as listed: a group of failed attempts' row led by
        their summary (:func:`~kscc_traffic.attempts.with_summary`, ``13 attempts from 23:00:00 to
        00:00:00 UTC, every ~5 min, none answered; the first: SYN sent 3 times, no answer``);
        ``client``: as :func:`client_details` words them (no flow is KSC agent traffic)."""
        details = client_details(self.flagged) if client else self.flagged["detail"].tolist()
        if len(self.flagged_key) != len(details):
            return details
        return [with_summary(str(d), self.attempts.text(k)) for d, k in zip(details, self.flagged_key.tolist())]

    def _add_elsewhere(self, flows: pd.DataFrame) -> None:
        """Count the ``flows`` (unexpected ``host_mismatch`` ones) of :func:`elsewhere_rows` (any
        rule: :meth:`readiness` keeps the KSC-only ones), per purpose, and keep their first names."""
        for p, g in flows.groupby("purpose", sort=False):
            names = g["server_name"].to_numpy(dtype=object)
            away = elsewhere_rows(None, g["reason"].tolist(), g["verdict"].to_numpy(), names,
                                  g["detail"].to_numpy(dtype=object) if "detail" in g else None)
            if away.any():
                self.un_elsewhere[p] = self.un_elsewhere.get(p, 0) + int(np.count_nonzero(away))
                kept = self.elsewhere_names.setdefault(p, {})
                for x in names[away].tolist():
                    if len(kept) >= MAX_ELSEWHERE_NAMES:
                        break
                    kept[x] = None

    def no_ksc_headline(self, rules: RuleSet) -> str:
        """:func:`no_ksc_traffic` of the flows added ('' when some is KSC agent traffic)."""
        ids = ksc_purposes(rules)
        ksc = self.vendor_seen + sum(n for (p, _), n in self.counts.items() if p in ids)
        return no_ksc_traffic(self.total, ksc, len(self.captures), self.cut_unnamed, self.proxies)

    def captures_without_ksc(self, rules: RuleSet) -> list[str]:
        """As :func:`captures_without_ksc`, from the flows added."""
        if len(self.captures) < 2 or self.no_ksc_headline(rules):
            return []
        ids = set(ksc_purposes(rules))
        return [str(c) for c in self.captures
                if not self.capture_ksc.get(c, False) and not (self.capture_purposes.get(c, set()) & ids)]

    def dns_errors(self) -> pd.DataFrame:
        """As :func:`dns_errors`, from the counts."""
        return _dns_error_frame(self.dns_error_counts)

    def _captures(self, purpose: str, bl: int, un: int) -> tuple[tuple[str, ...], tuple[str, ...], bool] | None:
        """``caps`` of :func:`_readiness_row` for ``purpose`` (None: one capture, or nothing flagged)."""
        if len(self.captures) < 2 or not (bl or un):
            return None
        flagged = tuple(self.verdict_captures.get((purpose, "blocked" if bl else "unexpected"), {}))
        good = tuple(self.verdict_captures.get((purpose, "ok"), {}))
        return flagged, good, bool(set(flagged) & set(good))

    def readiness(self, rules: RuleSet) -> pd.DataFrame:
        """As :func:`readiness`, from the counts."""
        rows = []
        after_ok, intermittent = self.rates.tallies()
        for r in rules.rules:
            ok, bl, un = (self.counts.get((r.id, k), 0) - self.copy_counts.get((r.id, k), 0)
                          for k in ("ok", "blocked", "unexpected"))
            n = sum(c for (p, _), c in self.counts.items() if p == r.id) \
                - sum(c for (p, _), c in self.copy_counts.items() if p == r.id)
            rows.append(_readiness_row(r, n, ok, bl, un, self.other_hosts.get(r.id, 0),
                                       sorted(self.reasons.get(r.id, ())), self.proxied.get(r.id, 0),
                                       self.ok_named.get(r.id, 0) if self.named_seen else None,
                                       self.ok_answered.get(r.id, 0) if self.answered_seen else None,
                                       (self.v6.get((r.id, "ok"), 0), self.v6.get((r.id, "blocked"), 0))
                                       if self.v6_seen else None, self.bl_tls.get(r.id, 0),
                                       self.bl_named.get(r.id, 0) if self.named_seen else None,
                                       self.bl_stale.get(r.id, 0), self.un_reasons.get(r.id, {}),
                                       self.bl_closed.get(r.id, 0), self.one_way.get(r.id, 0),
                                       (self.bl_reset.get(r.id, 0), self.bl_reset_own.get(r.id, 0)),
                                       self.closed_at.get(r.id, ((), ())), self.bl_route.get(r.id, 0),
                                       self.bl_http.get(r.id, 0), tuple(sorted(self.http_statuses.get(r.id, ()))),
                                       self.un_vendor.get(r.id, 0),
                                       self.ok_data.get(r.id, 0) if self.data_seen else None,
                                       self.bl_icpt.get(r.id, 0), self.un_onprem.get(r.id, 0),
                                       self.bl_forged.get(r.id, 0),
                                       (self.un_failed.get(r.id, 0), self.un_failed_vendor.get(r.id, 0)),
                                       self.un_inbound.get(r.id, 0), bl_handshake=self.bl_handshake.get(r.id, 0),
                                       bl_icmp=self.bl_icmp.get(r.id, {}),
                                       proxy_paths=self.proxy_paths.get(r.id, ProxyPaths())
                                       if self.proxy_seen else None,
                                       bl_cut=self.bl_cut.get(r.id, 0), caps=self._captures(r.id, bl, un),
                                       bl_cloud_own=self.bl_cloud_own.get(r.id, 0),
                                       bl_cut_lost=self.bl_cut_lost.get(r.id, 0),
                                       bl_mtu=self.bl_mtu.get(r.id, 0), bl_acked=self.bl_acked.get(r.id, 0),
                                       bl_route_own=self.bl_route_own.get(r.id, 0),
                                       bl_dp_way=self.bl_dp_way.get(r.id, 0),
                                       bl_elsewhere=self.bl_elsewhere.get(r.id, 0),
                                       bl_refused=self.bl_refused.get(r.id, (0, 0)),
                                       un_elsewhere=(self.un_elsewhere.get(r.id, 0),
                                                     tuple(self.elsewhere_names.get(r.id, {})))
                                       if ksc_only(r) else (0, ()), bl_redirect=self.bl_redirect.get(r.id),
                                       un_console=self.un_console.get(r.id, 0),
                                       ok_other_cast=self.ok_other_cast.get(r.id, 0),
                                       ok_other_kind=" or ".join(sorted(self.ok_other_kinds.get(r.id, set()) - {""})),
                                       bl_cert=self.bl_cert.get(r.id, NO_CERTS),
                                       ok_partial=self.ok_partial.get(r.id, 0),
                                       ok_refused=self.ok_refused.get(r.id, 0),
                                       ok_slow=self.ok_slow.get(r.id, 0), ok_held=self.ok_held.get(r.id, 0),
                                       ok_private=self.ok_private.get(r.id, 0),
                                       bl_portal=self.portals.said(r.id),
                                       bl_slow_server=min(self.slow_servers[r.id][0] & self.slow_servers[r.id][1],
                                                          default="") if r.id in self.slow_servers else "",
                                       bl_nat=self.bl_nat.get(r.id, (0, 0)),
                                       bl_nat64=(lambda x: (x[0], tuple(x[1]), tuple(x[2])) if x else (0, (), ()))(
                                           self.bl_nat64.get(r.id)),
                                       icpt_cause=next(iter(self.icpt_causes[r.id]))
                                       if len(self.icpt_causes.get(r.id, ())) == 1 else "",
                                       bl_restarted=self.restarts.said(r.id)
                                       if self.bl_refused.get(r.id, (0, 0))[1] or self.bl_reset.get(r.id, 0)
                                       else (0, ""),
                                       bl_host=self.bl_host.get(r.id, 0), bl_local=self.bl_local.get(r.id, 0),
                                       bl_idle=self.bl_idle.get(r.id, 0), bl_path=self.bl_path.get(r.id, 0),
                                       bl_stalled=self.bl_stalled.get(r.id, (0, 0, 0)),
                                       bl_dated=self.bl_dated.get(r.id, 0),
                                       fam_same=same_destinations(self.family_names, r.id),
                                       bl_plain_reset=self.bl_plain_reset.get(r.id, 0),
                                       bl_after_ok=after_ok.get(r.id, 0) if bl else 0,
                                       bl_intermittent=intermittent.get(r.id, 0) if bl else 0,
                                       bl_lost=self.bl_lost.get(r.id, 0), ok_fell=self.ok_fell.get(r.id, 0),
                                       bl_dropped=self.bl_dropped.get(r.id, 0), v4_seen=self.v4_seen,
                                       bl_routed=self.bl_routed.get(r.id, 0)))
        no_ksc = bool(self.no_ksc_headline(rules))
        if no_ksc:
            rows = [not_ksc_row(x) for x in rows]   # (as readiness: newcomer 28 F4)
        if not no_ksc or self.membership >= self.total:
            groups = tuple(sorted(self.join_groups))[:MAX_JOIN_GROUPS]
            rows = [joined_row(x, r, self.joins, groups) for x, r in zip(rows, rules.rules)]
        return checklist_frame(rows)


#: scans said at most (one line each, the most probes first), then a line for the rest
MAX_SCAN_LINES = 10


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'s' if n != 1 else ''}"


def scan_lines_of(flows: pd.DataFrame) -> list[str]:
    """:func:`scan_lines` of a flow table (the HTML report's)."""
    s = TableSummary()
    if len(flows) and "reason" in flows and "orig_h" in flows:
        s._add_scans(flows)
    return scan_lines(s)


def scan_lines(summary: TableSummary) -> list[str]:
    """One line per scan the flows hold (:mod:`kscc_traffic.scans`: reason ``port_scan`` or
    ``address_scan``), per kind and scanner, the most probes first, at most
    :data:`MAX_SCAN_LINES` (then how many more): ``a port scan from 192.0.2.9: 1,000 ports of
    198.51.100.5 in 3.2 s (12 documented KSC ports among them), not counted as KSC traffic``;
    ``an address scan from 192.0.2.9: 64 hosts on TCP 23101 in 0.6 s (a documented KSC port), not
    counted as KSC traffic``. Addresses as the flow table writes them (escape the lines for a
    terminal or HTML as any text)."""
    out = []
    items = sorted(summary.scans.items(), key=lambda kv: (-kv[1][0], kv[0]))
    for (kind, orig), (n, hosts, ports, doc, first, last) in items[:MAX_SCAN_LINES]:
        secs = f"{max((last or 0) - (first or 0), 0) / 1e9:.1f}"
        if kind == PORT_SCAN:
            where = next(iter(hosts)) if len(hosts) == 1 else _count(len(hosts), "host")
            head = f"a port scan from {orig}: {_count(len(ports), 'port')} of {where}"
        else:
            where = f"TCP {next(iter(ports))}" if len(ports) == 1 else f"{_count(len(ports), 'TCP port')}"
            head = f"an address scan from {orig}: {_count(len(hosts), 'host')} on {where}"
        if len(ports) == 1 and doc:
            docs = " (a documented KSC port)"
        elif doc:
            docs = f" ({_count(len(doc), 'documented KSC port')} among them)"
        else:
            docs = " (no documented KSC port)"
        out.append(f"{head} in {secs} s{docs}, {SCAN_NOT_KSC} ({_count(n, 'probe')}, reason {kind})")
    if len(items) > MAX_SCAN_LINES:
        more = sum(v[0] for _, v in items[MAX_SCAN_LINES:])
        out.append(f"… and {len(items) - MAX_SCAN_LINES} more scans ({_count(more, 'probe')}; --reason "
                   f"{PORT_SCAN},{ADDRESS_SCAN} lists them)")
    return out


#: the reasons cell of a purpose not seen that a custom capture filter leaves out
FILTERED_OUT = "filtered out by the capture filter"


def _longest_word(texts) -> int:
    """The length of the longest word of ``texts`` as a cell wraps it (at spaces; a comma stays
    with its word: ``icmp_unreachable,``); 0 when there is none."""
    return max((len(w) for t in texts for w in str(t).split()), default=0)


def _checklist_cells(chk: pd.DataFrame, rules: RuleSet) -> dict[str, list[str]]:
    """The checklist's cells per column but the purpose (``section``, ``transport/ports``: each
    rule's label, ``status``: :func:`_status_texts`, ``flows``, ``reasons``)."""
    return {"section": chk["section"].tolist(), "transport/ports": [x.label() for x in rules.rules],
            "status": _status_texts(chk), "flows": chk["flows"].astype(str).tolist(),
            "reasons": chk["reasons"].tolist()}


def _checklist_one_line(chk: pd.DataFrame, rules: RuleSet, width: int) -> bool:
    """Whether the checklist fits in ``width`` columns with every cell on one line (status notes
    inline)."""
    purpose = max((len(x.id) for x in rules.rules), default=7)
    frame = 7 + 6 * 2   # (the borders between and around 6 columns, a space of padding each side)
    cells = _checklist_cells(chk, rules)
    return frame + purpose + sum(max(len(k), *(len(str(x)) for x in v)) for k, v in cells.items()) <= width


def checklist_status_notes(chk: pd.DataFrame, rules: RuleSet, width: int) -> tuple[list[str], list[str]]:
    """``(suffixes, notes)``: what follows each checklist row's status in its cell (str, per row of
    ``chk``) and the footnotes under the table. When the table fits in ``width`` columns with every
    cell on one line (:func:`_checklist_one_line`), or no row has a ``status_note``: each note
    inline, `` (no KSC flow: …)``, no footnote. Else (a narrow terminal, where a long note in the
    status column ran ~10 lines at 80 columns: session 32) each note as a marker, `` [1]``, the same
    number for the same note, and the footnotes ``[1] no KSC flow: …`` in order."""
    got = chk["status_note"].tolist() if "status_note" in chk else [""] * len(chk)
    if not any(got) or _checklist_one_line(chk, rules, width):
        return [f" ({x})" if x else "" for x in got], []
    numbers: dict[str, int] = {}
    for x in got:
        if x and x not in numbers:
            numbers[x] = len(numbers) + 1
    return [f" [{numbers[x]}]" if x else "" for x in got], [f"[{k}] {x}" for x, k in numbers.items()]


def _checklist_widths(chk: pd.DataFrame, rules: RuleSet, width: int,
                      suffixes: list[str] | None = None) -> dict[str, dict]:
    """The width settings (``no_wrap``, ``min_width``, ``max_width``: keyword arguments of
    :meth:`rich.table.Table.add_column` per column header) of the checklist's columns on a console
    ``width`` columns wide: the ``purpose`` id always whole (its longest id). When the table does
    not fit with every cell on one line: ``status`` and ``reasons`` at least their longest word (a
    reason id such as ``icmp_unreachable``; ``status`` no more: ``not seen`` wraps), ``flows`` its
    count, ``section`` and ``transport/ports`` at most what is left (their headers fold, their
    words, ``§A`` and ``23100-23199``, whole) when all of that fits in ``width`` (rich then narrows
    ``reasons`` alone, at spaces); else nothing more (every cell but the purpose then folds:
    nothing is cut, but a word may break). ``suffixes``: what follows each status in its cell
    (:func:`checklist_status_notes`; default each note inline): a status with its footnote
    marker (``not seen [1]``) is kept on one line first when it fits."""
    purpose = max((len(x.id) for x in rules.rules), default=7)
    out: dict[str, dict] = {"purpose": {"no_wrap": True, "min_width": purpose}}
    if not len(chk):
        return out
    labels = [x.label() for x in rules.rules]
    frame = 7 + 6 * 2   # (the borders between and around 6 columns, a space of padding each side)
    if _checklist_one_line(chk, rules, width):
        return out   # (every cell on one line)
    statuses = _status_texts(chk) if suffixes is None else \
        [f"{x}{y}" for x, y in zip(chk["status"].tolist(), suffixes)]
    reasons = max(_longest_word(chk["reasons"]), 7)
    flows = max(_longest_word(chk["flows"].astype(str)), 5)
    section = max(_longest_word(chk["section"]), 1)
    ports = max(_longest_word(labels), 1)
    # (the status whole when it fits, "not seen" on one line: the table half as high at 80
    # columns; newcomer 31 F10), else at least its longest word; with its footnote marker first
    tries = [max(len(str(x)) for x in chk["status"]), max(_longest_word(statuses), 6)]
    if suffixes is not None:
        tries.insert(0, max(len(x) for x in statuses))
    for status in tries:
        left = width - frame - purpose - status - reasons - flows
        if left >= section + ports:
            break
    else:
        return _narrow_widths(out, width, purpose, section, ports, flows, max(_longest_word(statuses), 1), reasons)
    # (section: its header "section" whole when there is room, else folded; ports get the rest)
    section = max(section, min(len("section"), left - max(ports, len("transport/"))))
    # (reasons at most what the others leave: rich, when the widest cells do not fit, narrows
    # the widest wrapping columns first, status with them below its min_width, then widens it
    # again and crops the table's right edge: "no_answer," cut and no border, newcomer 41)
    ports_w = min(left - section, max(max(len(x) for x in labels), len("ports")))
    out.update({"status": {"min_width": status, "max_width": status},
                "reasons": {"min_width": reasons,
                            "max_width": max(reasons, width - frame - purpose - status - flows - section - ports_w)},
                "flows": {"min_width": flows, "max_width": flows},
                "section": {"min_width": section, "max_width": section},
                "transport/ports": {"max_width": left - section}})
    return out


def _narrow_widths(out: dict, width: int, purpose: int, section: int, ports: int, flows: int, status: int,
                   reasons: int) -> dict:
    """:func:`_checklist_widths`' settings ``out`` (the purpose's) for a console too narrow for
    every column's longest word with a space of padding each side: no padding (``out["padding"]``
    ``(0, 0)``: the borders alone between the cells), and the ``section``, ``transport/ports``
    (``23100-23199`` never folded mid-number) and ``flows`` columns their longest word; the
    ``status`` and ``reasons`` columns their longest word too when it fits (every cell then folds
    at spaces only), else they share what is left, at least 2 columns each (a status or reason id
    longer folds); ``out`` unchanged when not even that fits (every cell folds)."""
    left = width - 7 - purpose - section - ports - flows      # (7: the borders of 6 columns)
    if left < 4:
        return out
    # (the status its header's width too when that fits: "stat/us" folded else)
    st = max(status, min(len("status"), left - reasons)) if left >= status + reasons else max(2, min(status, left // 2))
    out.update({"padding": (0, 0),
                "section": {"min_width": section, "max_width": section},
                "transport/ports": {"min_width": ports, "max_width": ports},
                "flows": {"min_width": flows, "max_width": flows},
                "status": {"min_width": st, "max_width": st},
                "reasons": {"min_width": left - st, "max_width": left - st}})
    return out


#: the checklist's headers when their column is narrower than the header (:func:`_checklist_widths`)
_NARROW_HEADERS = {"section": "§", "transport/ports": "ports"}


def captures_without_ksc(flows: pd.DataFrame, rules: RuleSet) -> list[str]:
    """Of a flow table over several captures (its ``capture`` column: two or more distinct values),
    those none of whose flows is KSC agent traffic (:func:`ksc_flows`), in their first row's order;
    [] for one capture, a table without ``capture``, or when no flow at all is KSC agent traffic
    (then the run's headline, :func:`no_ksc_traffic`, says it of them all)."""
    if not len(flows) or "capture" not in flows:
        return []
    caps = flows["capture"].astype(str)
    if caps.nunique() < 2:
        return []
    ksc = pd.Series(ksc_flows(flows, rules), index=flows.index).groupby(caps, sort=False).any()
    return [] if not ksc.any() else [str(c) for c, v in ksc.items() if not v]


def no_ksc_capture_note(names: list[str]) -> str:
    """The line the table and HTML reports give under the checklist of several captures when some
    of them hold no KSC agent traffic (:func:`captures_without_ksc`: ``names``, escaped by the
    caller; '' for none): taken on another machine or at another time, and the checklist counts
    their flows with the others' (newcomer s60 #4: a browser's flow of such a capture made a purpose
    blocked, nothing said that capture was not the agent's)."""
    if not names:
        return ""
    one = len(names) == 1
    return (f"Note: {', '.join(names)} {'holds' if one else 'hold'} no KSC agent traffic (no flow to a Kaspersky "
            "name or on a port only KSC uses): taken on another machine than the agent, or at another time? The "
            f"checklist counts {'its' if one else 'their'} flows with the others' (other programs' flows on a "
            f"purpose's port): analyse {'it' if one else 'each'} on its own for its own checklist.")


def several_captures_note(k: int) -> str:
    """What the checklist of ``k`` > 1 captures is: one over them all (the table report's line
    under it, the HTML report's)."""
    return (f"The checklist is over {'both' if k == 2 else f'all {k}'} captures together: a purpose is blocked when a flow of any of them "
            "is; its advice names the captures of the flagged flows (analyse a capture on its own for its own "
            "checklist).")


def _status_texts(chk: pd.DataFrame) -> list[str]:
    """Each checklist row's :func:`status_text` (a table without ``status_note``: the status)."""
    notes = chk["status_note"].tolist() if "status_note" in chk else [""] * len(chk)
    return [status_text(x, y) for x, y in zip(chk["status"].tolist(), notes)]


def _status_reasons(summary: TableSummary, rule: str, status: str, reasons: str) -> str:
    """The head of a purpose's "What to change" entry: its ``status`` and ``reasons`` (the
    checklist's cell: every reason of its flagged flows), the reasons only its unexpected flows
    have said apart when the status is ``blocked`` (``blocked: no_answer, rejected; unexpected:
    host_mismatch``), so that no unexpected flow's reason reads as a cause of the blocking."""
    if not reasons:
        return status
    said = reasons.split(", ")
    blocked = summary.bl_reasons.get(rule, set())
    un = [x for x in said if x in summary.un_reasons.get(rule, {}) and x not in blocked]
    if status != "blocked" or not un:
        return f"{status}: {reasons}"
    bl = [x for x in said if x not in un]
    return f"blocked: {', '.join(bl)}; unexpected: {', '.join(un)}" if bl else f"blocked; unexpected: {', '.join(un)}"


def print_summary(summary: TableSummary, rules: RuleSet, console: Console, capture_filter: str | None = None) -> None:
    """The default human report from a :class:`TableSummary`: flows per purpose, the readiness
    checklist, what to change, what to verify (the purposes seen one-way: what the capture does not
    show, as the HTML checklist says), the DNS names answered with an error, the first flagged flows,
    the totals. ``capture_filter``: a custom capture filter the flows were captured with
    (``live --filter``): the purposes "not seen" that it leaves out
    (:func:`kscc_traffic.live.filtercheck.purposes_outside`) say :data:`FILTERED_OUT`, and a note
    under the checklist says "not seen" may mean filtered out. A headline first when no flow is
    KSC agent traffic (:meth:`TableSummary.no_ksc_headline`)."""
    from rich.table import Table
    from rich.text import Text

    headline = summary.no_ksc_headline(rules)
    if headline:
        console.print(Text(f"No KSC agent traffic: {headline}", style="bold yellow"))
    elif not summary.total:
        # (an empty capture, one without IP packets, a live run that caught nothing: newcomer s60 #5)
        console.print(Text(f"No KSC agent traffic: {NO_FLOWS}", style="bold yellow"))
    chk = summary.readiness(rules)
    # (no KSC agent traffic: the counts are other programs' flows on the purposes' ports, as the
    # checklist's "not seen" and the flagged flows' title say, newcomer 31 F3)
    t = Table(title=f"Flows per purpose{NOT_KSC_PURPOSES if headline else ''}", title_justify="left")
    for col in ("purpose", "flows", "ok", "blocked", "unexpected", "unclassified"):
        # (a narrow terminal: cells fold, never cut with an ellipsis)
        t.add_column(col, justify="left" if col == "purpose" else "right", overflow="fold")
    per: dict[str, dict[str, int]] = {}
    # (each connection once: a NAT's translated copies left out, said under the table)
    for (p, v), n in summary.counts.items():
        d = per.setdefault(p or NO_PURPOSE, {})
        d[v] = d.get(v, 0) + n - summary.copy_counts.get((p, v), 0)
    for purpose in sorted(per):
        row = per[purpose]
        t.add_row(Text(escape_terminal(purpose)), str(sum(row.values())),
                  *(str(row.get(v, 0)) for v in ("ok", "blocked", "unexpected", "unclassified")))
    console.print(t)
    copies: dict[str, int] = {}
    for (p, _), n in summary.copy_counts.items():
        copies[p] = copies.get(p, 0) + n
    if nat_copies_note(copies):
        console.print(Text(escape_terminal(nat_copies_note(copies)), style="italic"))
    one_way = one_way_ok_note(chk, per)
    if one_way:
        console.print(Text(escape_terminal(one_way), style="italic"))
    for line in scan_lines(summary):
        console.print(Text(escape_terminal(f"Scan: {line}"), style="yellow"))

    outside: list[str] | None = []
    if capture_filter is not None:
        from .live.filtercheck import purposes_outside
        outside = purposes_outside(rules, capture_filter)
    c = Table(title="Readiness checklist (documented purposes)", title_justify="left")
    # (a narrow terminal: the purpose id whole, never cut to "agent_connect…"; the others wrap at
    # spaces and fold a word longer than the cell, never cut with an ellipsis: "icmp_unrea…"; the
    # status and reasons cells keep their longest word whole when the width allows)
    # (a narrow terminal: the status notes as footnotes under the table, session 32)
    suffixes, notes = checklist_status_notes(chk, rules, console.width)
    widths = _checklist_widths(chk, rules, console.width, suffixes)
    if "padding" in widths:     # (a narrow console: the borders alone between the cells)
        c.padding = widths["padding"]
    for col in ("section", "purpose", "transport/ports", "status", "flows", "reasons"):
        # (a header narrower than its cells' room is shortened, not folded: "sec/tio/n" -> "§")
        room = widths.get(col, {}).get("max_width")
        header = _NARROW_HEADERS.get(col, col) if room is not None and room < len(col) else col
        c.add_column(header, **({} if col == "purpose" else {"overflow": "fold"}), **widths.get(col, {}))
    labels = {x.id: x.label() for x in rules.rules}   # (the cast shown: udp 15000 broadcast)
    for r, suffix in zip(chk.itertuples(index=False), suffixes):
        why = FILTERED_OUT if r.status == "not seen" and r.rule in (outside or ()) else r.reasons
        c.add_row(Text(escape_terminal(r.section)), Text(escape_terminal(r.rule)),
                  Text(escape_terminal(labels.get(r.rule, f"{r.transport} {r.ports}"))),
                  Text.assemble((r.status, _STATUS_STYLE[r.status]), suffix),
                  str(r.flows), Text(escape_terminal(why)))
    console.print(c)
    for note in notes:
        console.print(Text(escape_terminal(note), style="italic"))
    if len(summary.captures) > 1:
        console.print(Text(several_captures_note(len(summary.captures)), style="italic"))
        alone = no_ksc_capture_note(summary.captures_without_ksc(rules))
        if alone:
            console.print(Text(escape_terminal(alone), style="yellow"))
    if capture_filter is not None:
        gone = sum(1 for r in chk.itertuples(index=False) if r.status == "not seen" and r.rule in (outside or ()))
        head = f"Note: captured with a custom filter ({capture_filter!r}): "
        if outside is None:
            what = "a purpose not seen may have been filtered out, not absent"
        elif gone:
            what = (f"{gone} purpose{'s' if gone != 1 else ''} not seen {'has' if gone == 1 else 'have'} no port "
                    f"it lets through ({FILTERED_OUT}): not seen says nothing about "
                    f"{'it' if gone == 1 else 'them'}")
        else:
            what = "it lets through ports of every purpose not seen"
        console.print(Text(escape_terminal(head + what), style="yellow"))
    todo = chk[chk.status.isin(["blocked", "unexpected", "port open"]) & (chk.status_note != VENDOR_NOTE)]
    nothing = chk[chk.status_note == VENDOR_NOTE]
    # (no flow is KSC agent traffic: no advice built on other programs' DNS or ports, newcomer 28 F4)
    dns_blocked = summary.counts.get(("dns", "blocked"), 0) if not headline else 0
    undocumented = summary.counts.get(("", "unexpected"), 0) if not headline else 0
    if len(todo) or dns_blocked or undocumented:
        console.print(Text("What to change:", style="bold"))
    for r in todo.itertuples(index=False):
        # (not the status note: the advice begins with what it says)
        print_entry(console, escape_terminal(f"{r.rule} ({_status_reasons(summary, r.rule, r.status, r.reasons)}): {r.fix}"))
    if dns_blocked:
        why, fix = _dns_advice(summary)
        print_entry(console, escape_terminal(f"dns (blocked: {', '.join(why)}): {fix}"))
    if undocumented:
        why = sorted(summary.reasons.get("", ()))
        print_entry(console, escape_terminal(f"{NO_PURPOSE} (unexpected: {', '.join(why)}): {undocumented_fix(undocumented)}"))
    if len(nothing):
        # (unexpected for the purpose, but Kaspersky's other services: newcomer s60 #11)
        console.print(Text("Nothing to change:", style="bold"))
    for r in nothing.itertuples(index=False):
        print_entry(console, escape_terminal(f"{r.rule} ({_status_reasons(summary, r.rule, r.status, r.reasons)}): {r.fix}"))
    seen = chk[(chk.status == "seen one-way") | (chk.status_note == JOINED_NOTE)
               | chk.status_note.map(to_verify).astype(bool)]
    if len(seen):
        # (newcomer 28 F3: what the HTML report's checklist says of them, the terminal says too;
        # nothing to change, what to check: not under "What to change")
        console.print(Text("To verify:", style="bold"))
    for r in seen.itertuples(index=False):
        print_entry(console, escape_terminal(f"{r.rule} ({r.status}): {r.fix}"))
    _print_dns_errors(summary, console)

    if summary.flagged_total and (console.width < FLAGGED_TABLE_MIN_WIDTH
                                  or _flagged_table_width(summary) > console.width):
        # (narrow, or the table's columns would cut an address or a name mid-token: newcomer 29 F9)
        _print_flagged_compact(summary, console, NOT_KSC_FLAGGED if headline else "", client=bool(headline))
    elif summary.flagged_total:
        # several captures: which one each flow is from (names escaped as packet names are)
        several = len(summary.captures) > 1
        f = Table(title=f"{_listed_title(summary)} ({summary.flagged_total}{summary.grouped_note()})"
                        f"{NOT_KSC_FLAGGED if headline else ''}",
                  title_justify="left")
        heading, times, _ = flagged_time_texts(summary)   # (the date when not today's: session 32)
        for col in (heading, *(("capture",) if several else ()), "client", "server", "name", "purpose",
                    "verdict", "reason", "detail"):
            f.add_column(col, overflow="fold")
        ranks = summary.flagged_rank.tolist()
        groups = flagged_groups_text(ranks, summary.flagged_group_total, summary.flagged_shown().tolist())
        if groups:   # (the groups marked: a line between them, the order said under, newcomer 31 F12)
            f.caption, f.caption_justify = groups, "left"
        # (no flow is KSC agent traffic: "the client", not "the agent", newcomer s60 #12)
        details = summary.flagged_details(bool(headline))
        for i, (t, r, detail) in enumerate(zip(times, summary.flagged.itertuples(index=False), details)):
            f.add_row(t,
                      *((Text(escape_terminal(r.capture)),) if several else ()),
                      Text(escape_terminal(endpoint_text(r.orig_h, r.orig_p))),
                      Text(f"{r.proto} {escape_terminal(endpoint_text(r.resp_h, r.resp_p))}"),
                      Text(escape_terminal(r.server_name or r.query)),
                      Text(r.purpose or NO_PURPOSE),
                      Text(r.verdict, style=_VERDICT_STYLE.get(r.verdict, "")),
                      Text(r.reason), Text(escape_terminal(detail)),
                      end_section=bool(groups) and i + 1 < len(ranks) and ranks[i + 1] != ranks[i])
        console.print(f)
        if summary.flagged_more():
            console.print(summary.flagged_more())
    vc: dict[str, int] = {}
    for (_, v), n in summary.counts.items():
        vc[v] = vc.get(v, 0) + n
    copies = copies_text(summary.nat_copies, summary.total)
    console.print(Text(f"{summary.total} flow{'s' if summary.total != 1 else ''}: " + ", ".join(f"{vc.get(v, 0)} {v}" for v in
                                                             ("ok", "blocked", "unexpected", "unclassified"))
                       + (f" ({escape_terminal(copies)})" if copies else "")))
    if len(summary.captures) > 1:
        console.print(Text("Captures: " + ", ".join(f"{escape_terminal(c)} ({n} flow{'s' if n != 1 else ''})"
                                                    for c, n in summary.captures.items())))


#: after the flagged flows' title when no flow is KSC agent traffic (the headline): their verdicts
#: are the rules', about other programs' traffic
NOT_KSC_FLAGGED = ": other programs' flows, not KSC agent traffic (see the headline)"

#: after the flows per purpose's title when no flow is KSC agent traffic (the headline): the
#: counts are of other programs' flows on the ports of the purposes (newcomer 31 F3)
NOT_KSC_PURPOSES = ": other programs' flows on the purposes' ports, not KSC agent traffic (see the headline)"


def nat_copy_rows(flows: pd.DataFrame) -> int:
    """The rows of ``flows`` whose ``detail`` says they are a NAT's translated copy of another
    listed connection (:func:`nat_copy_mask`), any verdict; 0 without ``detail``."""
    return int(np.count_nonzero(nat_copy_mask(flows)))


def nat_copy_mask(flows: pd.DataFrame) -> np.ndarray:
    """Per row of ``flows`` (bool array): its ``detail`` says it is a NAT's translated copy of
    another listed connection (:data:`~kscc_traffic.classify.NAT_OUTSIDE_COPY`, not in a name from
    the packets quoted there: :func:`unquoted_details`), any verdict; all False without ``detail``.
    (Each distinct detail checked once: a batch's details repeat.) The checklist and the flows per
    purpose count each such connection once, by its inside copy (newcomer s62 leftovers)."""
    out = np.zeros(len(flows), bool)
    if "detail" not in flows or not len(flows):
        return out
    codes, uniq = pd.factorize(flows["detail"].to_numpy(dtype=object), use_na_sentinel=False)
    hit = np.array([NAT_OUTSIDE_COPY in str(d) for d in uniq.tolist()], bool)
    if not hit.any():
        return out
    at = np.flatnonzero(hit[codes])
    said = [NAT_OUTSIDE_COPY in d for d in unquoted_details(flows.iloc[at])]
    out[at[np.asarray(said, bool)]] = True
    return out


def nat_copies_note(copies: dict[str, int], where: str = "here nor in the checklist") -> str:
    """The line under the flows per purpose (and the checklist) that leave out ``copies`` (purpose
    -> the flows that are a NAT's translated copies of others, :func:`nat_copy_mask`): ``NAT copies
    not counted here nor in the checklist: 3 flows (agent_connection 3) are the NAT's translated
    copies of connections counted (…)``, ``where`` naming the counts; '' when there are none."""
    copies = {p: n for p, n in copies.items() if n > 0}
    if not copies:
        return ""
    k = sum(copies.values())
    each = ", ".join(f"{p or NO_PURPOSE} {n}" for p, n in sorted(copies.items()))
    return (f"NAT copies not counted {where}: {k} flow{'s' if k != 1 else ''} ({each}) "
            f"{'is the' if k == 1 else 'are the'} NAT's translated cop{'y' if k == 1 else 'ies'} of connections "
            "counted (both sides of a NAT captured: each connection counted once)")


def flagged_groups_text(ranks: Iterable[int], totals: Sequence[int] | None = None,
                        stands: Sequence[int] | None = None) -> str:
    """The line under the flagged flows when they are listed in more than one group of
    :func:`flagged_rank` (``ranks``: the rank of each row listed, in list order, 0-2): the groups
    in order with their counts of rows listed, ``In groups (a line between them): KSC agent
    traffic (4), then other flows (1); time order inside each group``, so that a later group's
    earlier time does not read as a list out of time order (newcomer 31 F12); '' for one group.
    ``totals`` (per rank 0-2, the flows of the group, listed or not:
    :attr:`TableSummary.flagged_group_total`): a group the list cut says both, ``other flows
    (32 of 75 shown)`` (session 32). ``stands``: per row listed, the flows it stands for (a group
    of repeated attempts: :meth:`TableSummary.flagged_shown`; None: one each): the counts are of
    flows."""
    counts: dict[int, int] = {}
    ranks = list(ranks)
    for k, w in zip(ranks, stands if stands is not None else [1] * len(ranks)):
        counts[int(k)] = counts.get(int(k), 0) + int(w)
    if len(counts) < 2:
        return ""

    def count(k: int, n: int) -> str:
        total = int(totals[k]) if totals is not None and k < len(totals) else n
        return f"{n} of {total} shown" if total > n else str(n)
    parts = ", then ".join(f"{FLAGGED_RANKS[k]} ({count(k, n)})" for k, n in sorted(counts.items()))
    return f"In groups (a line between them): {parts}; time order inside each group"


def one_way_ok_note(chk: pd.DataFrame, per: dict[str, dict[str, int]]) -> str:
    """The line under the flows per purpose when a purpose the checklist says ``seen one-way``
    has ``ok`` flows (``chk``: :func:`readiness`'s table; ``per``: purpose -> verdict -> flows):
    ``ok`` is the rules' verdict on each flow (sent as documented), the checklist's status is
    about the purpose (nothing came back, the capture cannot show the flows were received), so the
    two do not contradict (newcomer 31 F13); '' when no such purpose."""
    names = [r for r, st in zip(chk["rule"].tolist(), chk["status"].tolist())
             if st == "seen one-way" and per.get(r, {}).get("ok", 0)] if len(chk) else []
    if not names:
        return ""
    return (f"{', '.join(names)}: ok = each flow is as the rules document it; the checklist's seen one-way = the "
            "capture holds one direction only, so it cannot show that the other side received them (see To verify)")

#: terminals narrower than this get the flagged flows one block per flow instead of a table of 8
#: columns, whose cells would break addresses and names mid-token (an 80-column console: newcomer 23 F17);
#: wider ones too when the table's columns would still cut a value (:func:`_flagged_table_width`:
#: IPv6 addresses and long names at 125-170 columns, newcomer 29 F9)
FLAGGED_TABLE_MIN_WIDTH = 120


def flagged_time_texts(summary: TableSummary, today: str | None = None) -> tuple[str, list[str], list[str]]:
    """``(heading, times, dates)`` of the flagged flows listed (``summary.flagged``), UTC, as the
    table report shows them: ``times`` per row ``HH:MM:SS.mmm`` (:func:`time_texts`) and
    ``dates`` per row its ISO date, ``2026-03-02`` ('' each when not shown), heading ``time (UTC)``.

    The date is shown (Wireshark's "Date and Time of Day" is what its users read a time with)
    unless all the flows added (``ts_first_ns`` … ``ts_last_ns``) are of one day, ``today``
    (ISO date; default: today's UTC date): the listed rows all of one date, the heading holds it
    on a second line (``time (UTC)\n2026-03-02``, the column no wider); of several, each time is
    ``2026-03-02 11:06:44.074``."""
    full = time_texts(summary.flagged["ts_ns"], "%Y-%m-%d %H:%M:%S.%f") if len(summary.flagged) else []
    times, days = [t[11:] for t in full], [t[:10] for t in full]
    today = today or dt.datetime.now(dt.timezone.utc).date().isoformat()
    ends = set(days) if summary.ts_first_ns is None else \
        {t[:10] for t in time_texts([summary.ts_first_ns, summary.ts_last_ns], "%Y-%m-%d %H:%M:%S.%f")}
    if not days or ends | set(days) == {today}:
        return "time (UTC)", times, [""] * len(times)
    if len(set(days)) == 1:
        return f"time (UTC)\n{days[0]}", times, days
    return "time (UTC)", full, days


def _flagged_table_width(summary: TableSummary) -> int:
    """The terminal columns the flagged flows' table needs for no value but the detail to be cut:
    every other column as wide as its longest value (the widest of them would be shrunk first,
    cutting it mid-token: ``eu1.ksc.kasper|sky.com``, ``[2001:db8:fff|f::10]``), the detail at
    least as wide as they are and its longest word, and the borders (3 a column, and 1)."""
    from rich.cells import cell_len
    several = len(summary.captures) > 1
    heading, times, _ = flagged_time_texts(summary)
    heads = [heading, *(("capture",) if several else ()), "client", "server", "name", "purpose",
             "verdict", "reason"]
    widths = [max(map(cell_len, h.split("\n"))) for h in heads]
    longest_word = cell_len("detail")
    for t, r in zip(times, summary.flagged.itertuples(index=False)):
        cells = [t, *((escape_terminal(r.capture),) if several else ()),
                 escape_terminal(endpoint_text(r.orig_h, r.orig_p)),
                 f"{r.proto} {escape_terminal(endpoint_text(r.resp_h, r.resp_p))}",
                 escape_terminal(r.server_name or r.query), r.purpose or NO_PURPOSE, r.verdict, r.reason]
        widths = [max(w, cell_len(c)) for w, c in zip(widths, cells)]
        longest_word = max([longest_word, *map(cell_len, escape_terminal(r.detail).split())])
    return sum(widths) + max(longest_word, *widths) + 3 * (len(widths) + 1) + 1


def _listed_title(summary: TableSummary) -> str:
    """The title of the flows listed: ``Flagged flows``, or ``Flagged and unclassified flows``
    when a ``--verdict`` filter asked for more (:attr:`TableSummary.listed`)."""
    more = [v for v in summary.listed if v not in ("blocked", "unexpected")]
    return f"Flagged and {' and '.join(more)} flows" if more else "Flagged flows"


def _print_flagged_compact(summary: TableSummary, console: Console, note: str = "", client: bool = False) -> None:
    """The flagged flows for a narrow terminal: per flow a line ``time  client -> proto server
    name`` (and the capture when there are several), then, indented, purpose, verdict and reason,
    and the detail, each wrapped at spaces by the console; packet texts escaped. ``client``: no
    flow is KSC agent traffic (the headline): the details as :func:`client_details` words them."""
    from rich.padding import Padding
    from rich.text import Text

    several = len(summary.captures) > 1
    _, times, days = flagged_time_texts(summary)
    # (times of today's flows carry no date line, whose "(UTC)" then said nothing: the title says it;
    # newcomer s55 #2)
    utc = ", times in UTC" if not all(days) else ""
    console.print(Text(f"{_listed_title(summary)} ({summary.flagged_total}{summary.grouped_note()}){utc}{note}",
                       style="italic"))
    ranks = summary.flagged_rank.tolist()
    groups = flagged_groups_text(ranks, summary.flagged_group_total, summary.flagged_shown().tolist())
    if groups:   # (the order of the groups, then each group's name before its first flow)
        console.print(Text(groups.replace(" (a line between them)", ""), style="italic"))
    times = [t[-12:] for t in times]   # (the date on a line of its own, below)
    day = ""
    details = summary.flagged_details(client)
    for i, (t, r, detail) in enumerate(zip(times, summary.flagged.itertuples(index=False), details)):
        if groups and (i == 0 or ranks[i] != ranks[i - 1]):
            console.print(Text(f"— {FLAGGED_RANKS[ranks[i]]} —", style="bold"))
            day = ""
        if days[i] != day:   # (the date when not today's, once per group and where it changes)
            day = days[i]
            console.print(Text(f"{day} (UTC)", style="bold"))
        lead = f"{t}  " + (f"[{escape_terminal(r.capture)}]  " if several else "")
        pair = (f"{escape_terminal(endpoint_text(r.orig_h, r.orig_p))} -> {r.proto} "
                f"{escape_terminal(endpoint_text(r.resp_h, r.resp_p))}")
        name = r.server_name or r.query
        named = f"  {escape_terminal(name)}" if name else ""
        for line in _flow_head_lines(lead, pair, named, console.width):
            console.print(Text(line, overflow="fold"))
        what = Text("    ")
        what.append(r.purpose or NO_PURPOSE)
        what.append("  ")
        what.append(r.verdict, style=_VERDICT_STYLE.get(r.verdict, ""))
        if r.reason:
            what.append(f"  {r.reason}")
        console.print(what)
        if detail:   # (indented, wrapped at spaces; a token longer than the line folded)
            console.print(Padding(Text(escape_terminal(detail), overflow="fold"), (0, 0, 0, 4), expand=False))
    if summary.flagged_more():
        console.print(summary.flagged_more())


def _flow_head_lines(lead: str, pair: str, named: str, width: int) -> list[str]:
    """The first line of a flagged flow in the narrow list (``lead``: its time and capture,
    ``pair``: ``orig -> proto resp``, ``named``: ``  name`` or ''), as the lines to print at
    ``width`` columns: one when it fits; else the 5-tuple kept whole on a line of its own and the
    name on the next, those lines indented by 4 as the flow's other lines are (newcomer s55 #1: a
    wrap inside the 5-tuple began the next line at column 0, as a new flow would)."""
    from rich.cells import cell_len

    if cell_len(lead + pair + named) <= width:
        return [lead + pair + named]
    lines = [lead + pair] if cell_len(lead + pair) <= width else [lead.rstrip(), "    " + pair]
    if named:
        lines.append("    " + named.strip())
    return lines


def _print_dns_errors(summary: TableSummary, console: Console) -> None:
    """The DNS names answered with an error (at most :data:`MAX_DNS_ERRORS_SHOWN`, most flows
    first), names escaped as every packet-derived text; nothing when there are none."""
    from rich.table import Table
    from rich.text import Text

    errs = summary.dns_errors()
    if not len(errs):
        return
    total = int(errs["flows"].sum()) + summary.dns_errors_dropped
    t = Table(title=f"DNS names answered with an error ({total} flow{'s' if total != 1 else ''})",
              title_justify="left")
    for col in ("name", "answer", "flows", "meaning"):
        t.add_column(col, justify="right" if col == "flows" else "left", overflow="fold")
    for r, meaning in zip(errs.head(MAX_DNS_ERRORS_SHOWN).itertuples(index=False), dns_error_meanings(errs)):
        t.add_row(Text(escape_terminal(r.name) if r.name else "(no question)"), Text(escape_terminal(r.rcode)),
                  str(r.flows), Text(meaning))
    console.print(t)
    more = len(errs) - MAX_DNS_ERRORS_SHOWN
    if more > 0 or summary.dns_errors_dropped:
        extra = f"{more} more name{'s' if more != 1 else ''}" if more > 0 else "more names"
        console.print(Text(f"… {extra} answered with an error (column dns_rcode: use --format csv or jsonl)"))
