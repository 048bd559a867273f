"""Port rules: which documented KSC Cloud Console port a flow belongs to.

The rules live in TOML files (format: ``rules/README.md``); the bundled set is
``rules/kscc-cloud.toml``, shipped as ``kscc_traffic.rulesdata/kscc-cloud.toml``. It has one rule per
row of the three port tables of the vendor page "Von Kaspersky Security Center Cloud Console
verwendete Ports" (German original ``shared/seed/kscc-cloud-ports.de.txt``, English digest
``shared/docs/kscc-ports.md``). Section names are ours:

* ``§A`` ports open on client devices for their Internet connection (outbound to the cloud)
* ``§B`` ports open on client devices with the Administration Agent installed (inbound)
* ``§C`` ports used by an Administration Agent acting as a distribution point (inbound on the DP)

API::

    rs = load_rules()                      # bundled rules; or load_rules("site.toml"), a directory, a list
    rs.match("tcp", 23150)                 # -> Rule 'agent_connection'
    rs.match("udp", 15000, "broadcast")    # -> Rule 'agent_broadcast'
    rs.by_id("ksn").port_text              # -> "1443"
    rs.is_documented_port("udp", 1443)     # -> False
    bpf_filter(rs)                         # capture filter for tcpdump / dumpcap / Wireshark

Every problem with a rules file raises :class:`kscc_traffic.errors.RulesError` with ONE line that
names the file, the rule (``rule 'id'``, or ``rule #n`` counted from 1 when the id is missing) and the
field, e.g. ``rules.toml: rule 'ksn': field 'ports': 70000 is not a port (1-65535)``.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import re
import tomllib
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from kscc_traffic.errors import RulesError

__all__ = [
    "APP_PROTOCOLS",
    "BUNDLED_RULES",
    "CASTS",
    "FLOW_CASTS",
    "OPENERS",
    "TRANSPORTS",
    "Rule",
    "RuleSet",
    "RuleSetMeta",
    "bpf_filter",
    "bundled_rules_path",
    "load_rules",
]

#: file name of the bundled rule set (inside ``kscc_traffic.rulesdata`` / the repo's ``rules/``)
BUNDLED_RULES = "kscc-cloud.toml"

Transport = Literal["tcp", "udp"]
AppProtocol = Literal["tls", "https", "http", "tcp", "udp"]
Opener = Literal["client_to_cloud", "inbound_to_agent", "agent_to_dp"]
Cast = Literal["unicast", "broadcast", "multicast", "any"]

TRANSPORTS: tuple[str, ...] = ("tcp", "udp")
APP_PROTOCOLS: tuple[str, ...] = ("tls", "https", "http", "tcp", "udp")
OPENERS: tuple[str, ...] = ("client_to_cloud", "inbound_to_agent", "agent_to_dp")
#: values of ``Rule.cast``
CASTS: tuple[str, ...] = ("unicast", "broadcast", "multicast", "any")
#: values a *flow's* cast can take in :meth:`RuleSet.match`
FLOW_CASTS: tuple[str, ...] = ("unicast", "broadcast", "multicast")

_ENUMS: dict[str, tuple[str, ...]] = {
    "transport": TRANSPORTS,
    "app_protocol": APP_PROTOCOLS,
    "opener": OPENERS,
    "cast": CASTS,
}
_IP_PROTO = {6: "tcp", 17: "udp"}

_ID_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_RANGE_RE = re.compile(r"(\d+)-(\d+)\Z")
_SECTION_RE = re.compile(r"§[A-Z][A-Za-z0-9.]*\Z")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_MASK_RE = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)+[a-z]{{2,63}}\Z")


def _parse_ports(value: Any) -> tuple[int, int]:
    """``1443`` -> (1443, 1443); ``"23100-23199"`` -> (23100, 23199); anything else raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(
            f"{value!r} is not a port or range (write a port as an integer, 1443, or a range as a string, \"23100-23199\")"
        )
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is not a port (1-65535)")
        return value, value
    m = _RANGE_RE.match(value)
    if not m:
        if value.strip().isdigit():
            if not 1 <= int(value) <= 65535:  # the hint below would be invalid too
                raise ValueError(f"{value!r} is not a port (1-65535)")
            raise ValueError(f"{value!r} is a string; write a single port as an integer (ports = {value.strip()})")
        raise ValueError(f"{value!r} is not a port range (write it as \"23100-23199\": two ports and a '-', no spaces)")
    lo, hi = int(m.group(1)), int(m.group(2))
    for p in (lo, hi):
        if not 1 <= p <= 65535:
            raise ValueError(f"{p} is not a port (1-65535)")
    if lo > hi:
        raise ValueError(f"{value!r} is a reversed range (start {lo} > end {hi})")
    if lo == hi:
        raise ValueError(f"{value!r} is a one-port range; write a single port as an integer (ports = {lo})")
    return lo, hi


class Rule(BaseModel):
    """One documented port (or port range): one row of a port table of the vendor page.

    Fields (all from the TOML ``[[rule]]`` table; unknown fields are an error):

    ``id``
        Unique name, ``[a-z][a-z0-9_]*`` (e.g. ``agent_connection``). Used in reports and ``by_id``.
    ``section``
        Where the row comes from: ``§A`` (client devices → cloud, outbound), ``§B`` (client devices with
        the Administration Agent, inbound), ``§C`` (Administration Agent acting as distribution point,
        inbound on the DP). Any ``§`` + capital letter (+ letters/digits/dots) is accepted for other sets.
    ``transport``
        ``tcp`` or ``udp`` (the doc's "TCP", "TCP/TLS", "HTTPS" are TCP; "UDP", "UDP-Broadcast" are UDP).
    ``ports``
        A single port as an integer (``1443``) or an inclusive range as a string ``"23100-23199"``;
        ports 1-65535, start < end.
    ``app_protocol``
        What the doc says runs on top: ``tls`` (TCP/TLS), ``https`` (HTTPS), ``http`` (the certificate
        check on 80), ``tcp`` (plain "TCP", e.g. KSN 1443), ``udp`` (UDP).
    ``opener``
        Who opens the connection: ``client_to_cloud`` (§A, a managed device to the Kaspersky cloud),
        ``inbound_to_agent`` (§B, to a device running the Administration Agent), ``agent_to_dp`` (§C,
        a managed device to its distribution point).
    ``cast``
        Destination kind the doc describes: ``unicast``, ``broadcast`` (§B "UDP-Broadcast"),
        ``multicast`` (§B 15001 "Multicast-Anfragen"), or ``any``.
    ``host_mask``
        Optional DNS mask of the far end, e.g. ``*.ksc.kaspersky.com``, ``*.digicert.com``; absent when the
        doc names none. Lower case; ``*.`` matches any depth of sub-domains (not the bare domain).
    ``condition``
        Optional: when the port is needed at all ("only if mobile devices are managed"); absent when
        the port is always needed.
    ``purpose`` / ``purpose_de``
        What the port is for, in English (our digest) and the German sentence copied from the vendor page.
    ``fix``
        What to tell an administrator when the port is blocked ("allow outbound TCP 23100-23199 to …").
    ``priority``
        Optional integer, default 0. Only for deliberately overlapping rules (same transport, sharing a
        port, casts that can both apply): they must have *different* priorities, and the higher one wins
        in :meth:`RuleSet.match`. Overlaps with equal priority are an error.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    section: str
    transport: Transport
    ports: int | str
    app_protocol: AppProtocol
    opener: Opener
    cast: Cast
    host_mask: str | None = None
    condition: str | None = Field(default=None, min_length=1)
    purpose: str = Field(min_length=1)
    purpose_de: str = Field(min_length=1)
    fix: str = Field(min_length=1)
    priority: int = 0

    _lo: int = PrivateAttr(default=0)
    _hi: int = PrivateAttr(default=0)
    _file: str | None = PrivateAttr(default=None)

    @field_validator("id", mode="before")
    @classmethod
    def _check_id(cls, v: Any) -> Any:
        if isinstance(v, str) and not _ID_RE.match(v):
            raise ValueError(f"{v!r} is not a valid id (lower-case letters, digits and '_', starting with a letter)")
        return v

    @field_validator("section", mode="before")
    @classmethod
    def _check_section(cls, v: Any) -> Any:
        if isinstance(v, str) and not _SECTION_RE.match(v):
            raise ValueError(f"{v!r} is not a section reference (write it like \"§A\")")
        return v

    @field_validator("ports", mode="before")
    @classmethod
    def _check_ports(cls, v: Any) -> Any:
        _parse_ports(v)
        return v

    @field_validator("host_mask", mode="before")
    @classmethod
    def _check_host_mask(cls, v: Any) -> Any:
        if isinstance(v, str) and not _HOST_MASK_RE.match(v):
            raise ValueError(f"{v!r} is not a host mask (lower-case DNS name, optionally starting with '*.', e.g. \"*.ksc.kaspersky.com\")")
        return v

    @field_validator("priority", mode="before")
    @classmethod
    def _check_priority(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{v!r} is not an integer")
        return v

    def model_post_init(self, __context: Any) -> None:
        self._lo, self._hi = _parse_ports(self.ports)

    # -- ports ---------------------------------------------------------------------------------
    @property
    def port_lo(self) -> int:
        """First port of the rule (inclusive)."""
        return self._lo

    @property
    def port_hi(self) -> int:
        """Last port of the rule (inclusive; equals ``port_lo`` for a single port)."""
        return self._hi

    @property
    def port_range(self) -> tuple[int, int]:
        """``(port_lo, port_hi)``, inclusive."""
        return self._lo, self._hi

    @property
    def is_range(self) -> bool:
        """Whether the rule covers more than one port (``ports = "23100-23199"``)."""
        return self._hi > self._lo

    @property
    def port_text(self) -> str:
        """``"23100-23199"`` for a range, ``"1443"`` for a single port."""
        return f"{self._lo}-{self._hi}" if self.is_range else str(self._lo)

    @property
    def file(self) -> str | None:
        """The rules file the rule was loaded from (None when built in code)."""
        return self._file

    def contains(self, port: int) -> bool:
        """True when ``port`` lies in the rule's port or range."""
        return self._lo <= port <= self._hi

    def accepts_cast(self, cast: str) -> bool:
        """True when a flow of this cast (unicast/broadcast/multicast) is what the rule describes."""
        return self.cast == "any" or self.cast == cast

    def overlaps(self, other: Rule) -> bool:
        """Same transport, a shared port, and casts that can both apply to one flow."""
        return (
            self.transport == other.transport
            and self._lo <= other._hi
            and other._lo <= self._hi
            and (self.cast == other.cast or "any" in (self.cast, other.cast))
        )

    def matches_host(self, name: str | None) -> bool | None:
        """Does the DNS name fit ``host_mask``? None when the rule has no mask or the name is unknown.

        ``*.ksc.kaspersky.com`` matches ``a.ksc.kaspersky.com`` and ``a.b.ksc.kaspersky.com``, not
        ``ksc.kaspersky.com``; comparison ignores case and a trailing dot.
        """
        if self.host_mask is None or not name:
            return None
        n = name.lower().rstrip(".")
        if self.host_mask.startswith("*."):
            return n.endswith(self.host_mask[1:])
        return n == self.host_mask

    def label(self) -> str:
        """``transport port_text`` plus the cast when it is not unicast/any, e.g. ``udp 15000 broadcast``."""
        extra = f" {self.cast}" if self.cast in ("broadcast", "multicast") else ""
        return f"{self.transport} {self.port_text}{extra}"

    def __repr__(self) -> str:
        return f"Rule({self.id!r}, {self.label()}, {self.section})"


class RuleSetMeta(BaseModel):
    """The ``[meta]`` header table of a rules file.

    ``name`` (short name, e.g. ``kscc-cloud``), ``version`` (string, e.g. ``"1.0.0"``), ``source`` (where
    the facts come from), ``source_title`` (title of the source page, optional), ``date`` (TOML date of
    the transcription, optional), ``description`` (optional).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    source: str = Field(min_length=1)
    source_title: str | None = Field(default=None, min_length=1)
    date: _dt.date | None = None
    description: str | None = None


class _Problem(ValueError):
    """A cross-rule problem (duplicate id, overlap): which rule, which field, what."""

    def __init__(self, rule: Rule, field: str, text: str) -> None:
        self.rule, self.field, self.text = rule, field, text
        super().__init__(f"rule {rule.id!r}: field {field!r}: {text}")


def _cross_check(rules: Sequence[Rule]) -> None:
    seen: dict[str, Rule] = {}
    for r in rules:
        if r.id in seen:
            first = seen[r.id]
            where = f" in {Path(first.file).name}" if first.file and first.file != r.file else ""
            raise _Problem(r, "id", f"duplicate id (already used by rule #{_index_of(rules, first) + 1}{where})")
        seen[r.id] = r
    for j, r in enumerate(rules):
        for q in rules[:j]:
            if q.overlaps(r) and q.priority == r.priority:
                where = f"{Path(q.file).name}, " if q.file and q.file != r.file else ""
                raise _Problem(
                    r,
                    "ports",
                    f"{r.transport} {r.port_text} ({r.cast}) overlaps rule {q.id!r} ({where}{q.transport} {q.port_text}, {q.cast})"
                    f" with the same priority {r.priority}; give one of them a different 'priority' if the overlap is deliberate",
                )


def _index_of(rules: Sequence[Rule], rule: Rule) -> int:
    return next(i for i, r in enumerate(rules) if r is rule)


class RuleSet(BaseModel):
    """The loaded rules: ``rules`` in file order, ``meta`` of each file (``metas``), ``files`` loaded.

    Treat it as immutable (``match`` results are cached); build a new RuleSet to change rules.
    Constructing one directly also checks duplicate ids and overlaps (raises ``ValueError`` /
    pydantic ``ValidationError``); :func:`load_rules` reports the same as :class:`RulesError`.
    """

    model_config = ConfigDict(frozen=True)

    rules: list[Rule]
    metas: list[RuleSetMeta] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)

    _by_id: dict[str, Rule] = PrivateAttr(default_factory=dict)
    _order: list[Rule] = PrivateAttr(default_factory=list)
    _cache: dict[tuple[str, int, str, bool], Rule | None] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> RuleSet:
        try:
            _cross_check(self.rules)
        except _Problem as e:
            raise ValueError(str(e)) from None
        return self

    def model_post_init(self, __context: Any) -> None:
        self._by_id = {r.id: r for r in self.rules}
        pos = {id(r): i for i, r in enumerate(self.rules)}
        self._order = sorted(self.rules, key=lambda r: (-r.priority, pos[id(r)]))

    @property
    def meta(self) -> RuleSetMeta | None:
        """The ``[meta]`` of the first file (the only one for a single file)."""
        return self.metas[0] if self.metas else None

    @property
    def ids(self) -> list[str]:
        """The rules' ids, in file order (the first file's rules first)."""
        return [r.id for r in self.rules]

    def by_id(self, id: str) -> Rule:
        """The rule with this id; KeyError when there is none."""
        try:
            return self._by_id[id]
        except KeyError:
            raise KeyError(f"no rule with id {id!r} (known: {', '.join(self._by_id)})") from None

    def match(self, transport: str | int, port: int, cast: str = "unicast", *, exact_cast: bool = False) -> Rule | None:
        """The rule for a flow to ``port`` over ``transport`` ("tcp"/"udp", or IP protocol 6/17).

        ``cast`` is the flow's destination kind: ``unicast``, ``broadcast`` or ``multicast``.
        Among rules on this transport whose port or range contains ``port``, the first found wins:

        1. a rule whose ``cast`` equals the flow's cast,
        2. a rule with ``cast = "any"``,
        3. unless ``exact_cast``: any other rule on the port (the port is documented, the cast is not
           the one the doc describes; e.g. a unicast to UDP 15001 is still ``dp_multicast``), a
           group-delivery rule first for a group-delivery flow (a multicast to UDP 15000 is
           ``agent_broadcast``, not the unicast ``gateway_udp``).

        Within a step the higher ``priority`` wins, then file order. Ports outside 1-65535 (e.g. -1
        for "not captured") and other IP protocols give None. Unknown transport / cast names raise
        ValueError.
        """
        t = _norm_transport(transport)
        if cast not in FLOW_CASTS:
            raise ValueError(f"cast {cast!r} is not one of: {', '.join(FLOW_CASTS)}")
        if t is None:
            return None
        port = int(port)
        key = (t, port, cast, exact_cast)
        try:
            return self._cache[key]
        except KeyError:
            pass
        cands = [r for r in self._order if r.transport == t and r.contains(port)]
        group = _GROUP_SIBLING.get(cast)
        found = (
            next((r for r in cands if r.cast == cast), None)
            or next((r for r in cands if r.cast == "any"), None)
            or (None if exact_cast else (next((r for r in cands if r.cast == group), None)
                                         or next(iter(cands), None)))
        )
        self._cache[key] = found
        return found

    def is_documented_port(self, transport: str | int, port: int) -> bool:
        """True when any rule (whatever its cast) covers ``port`` on ``transport``."""
        t = _norm_transport(transport)
        return t is not None and any(r.transport == t and r.contains(int(port)) for r in self.rules)

    def rules_for(self, transport: str | int, port: int) -> list[Rule]:
        """All rules covering ``port`` on ``transport`` (any cast), highest priority first."""
        t = _norm_transport(transport)
        return [r for r in self._order if t is not None and r.transport == t and r.contains(int(port))]


#: broadcast and multicast are both delivery to a group: the one stands in for the other
_GROUP_SIBLING = {"broadcast": "multicast", "multicast": "broadcast"}


def _norm_transport(transport: str | int) -> str | None:
    if isinstance(transport, bool):
        raise ValueError(f"transport {transport!r} is not tcp or udp")
    if isinstance(transport, int):
        return _IP_PROTO.get(transport)
    t = str(transport).lower()
    if t not in TRANSPORTS:
        raise ValueError(f"transport {transport!r} is not one of: {', '.join(TRANSPORTS)}")
    return t


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------

_RULE_FIELDS = tuple(Rule.model_fields)
_META_FIELDS = tuple(RuleSetMeta.model_fields)
_TOP_KEYS = ("meta", "rule")


def _describe(err: dict[str, Any], fields: tuple[str, ...]) -> tuple[str, str]:
    """One pydantic error -> (field name, one-line text)."""
    loc = err.get("loc") or ("?",)
    field = str(loc[0])
    typ = err.get("type", "")
    val = err.get("input")
    if typ == "missing":
        return field, "missing (required)"
    if typ == "extra_forbidden":
        close = difflib.get_close_matches(field, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(fields)})"
        return field, f"unknown field{hint}"
    if typ == "literal_error" and field in _ENUMS:
        return field, f"{val!r} is not one of: {', '.join(_ENUMS[field])}"
    if typ == "value_error":
        ctx = err.get("ctx") or {}
        return field, str(ctx.get("error", err.get("msg", "")))
    if typ == "string_too_short":
        return field, "must not be empty"
    msg = str(err.get("msg", typ))
    msg = msg[:1].lower() + msg[1:]
    return field, f"{msg} (got {type(val).__name__} {val!r})"


def _first_error(e: ValidationError) -> dict[str, Any]:
    errs = e.errors()
    # a misspelt field also shows up as a missing one: report the unknown field first
    return next((x for x in errs if x.get("type") == "extra_forbidden"), errs[0])


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_toml(name: str, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RulesError(_one_line(f"{name}: not TOML: not UTF-8 text (byte {e.start})")) from None
    except tomllib.TOMLDecodeError as e:
        # tomllib puts the position in the message: "... (at line 3, column 7)"
        raise RulesError(_one_line(f"{name}: not TOML: {e}")) from None


def _parse_file(name: str, doc: dict[str, Any]) -> tuple[RuleSetMeta, list[Rule]]:
    for key in doc:
        if key not in _TOP_KEYS:
            close = difflib.get_close_matches(key, _TOP_KEYS, n=1)
            hint = f"did you mean {'[[rule]]' if close == ['rule'] else '[meta]'}?" if close else "allowed: [meta] and [[rule]]"
            raise RulesError(f"{name}: top-level key {key!r}: unknown ({hint})")
    if "meta" not in doc:
        raise RulesError(f"{name}: [meta]: missing (required: name, version, source)")
    if not isinstance(doc["meta"], dict):
        raise RulesError(f"{name}: [meta]: must be a table, got {type(doc['meta']).__name__}")
    try:
        meta = RuleSetMeta.model_validate(doc["meta"])
    except ValidationError as e:
        field, text = _describe(_first_error(e), _META_FIELDS)
        raise RulesError(_one_line(f"{name}: [meta]: field {field!r}: {text}")) from None
    raw = doc.get("rule")
    if raw is None:
        raise RulesError(f"{name}: no rules (add [[rule]] tables)")
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise RulesError(f"{name}: 'rule' must be an array of tables, written as [[rule]]")
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        rid = item.get("id")
        label = f"rule {rid!r}" if isinstance(rid, str) and rid else f"rule #{i + 1}"
        try:
            rule = Rule.model_validate(item)
        except ValidationError as e:
            field, text = _describe(_first_error(e), _RULE_FIELDS)
            raise RulesError(_one_line(f"{name}: {label}: field {field!r}: {text}")) from None
        rule._file = name
        rules.append(rule)
    return meta, rules


def bundled_rules_path() -> Path:
    """Path of the bundled ``kscc-cloud.toml`` (installed package data, else the source tree's rules/)."""
    try:
        res = resources.files("kscc_traffic.rulesdata").joinpath(BUNDLED_RULES)
        if res.is_file():
            return Path(str(res))
    except (ModuleNotFoundError, TypeError, FileNotFoundError):
        pass
    return Path(__file__).resolve().parent.parent / "rules" / BUNDLED_RULES


def _expand(path: str | Path | Iterable[str | Path] | None) -> list[Path]:
    if path is None:
        return [bundled_rules_path()]
    if isinstance(path, (str, Path)):
        p = Path(path)
        if p.is_dir():
            files = sorted(x for x in p.glob("*.toml") if x.is_file())
            if not files:
                raise RulesError(f"{p}: no *.toml rules files in this directory")
            return files
        return [p]
    out: list[Path] = []
    for item in path:
        out.extend(_expand(item))
    if not out:
        raise RulesError("no rules files given")
    return out


def load_rules(path: str | Path | Iterable[str | Path] | None = None) -> RuleSet:
    """Load and validate rules.

    ``path``: None for the bundled ``kscc-cloud.toml``; a file; a directory (all its ``*.toml``, sorted
    by name); or a list of those. Several files form one RuleSet: ids must be unique across them and
    overlaps are checked across them (use ``priority`` to let a site file override a bundled rule).

    Raises :class:`RulesError` (one line: file, rule, field) for a missing/unreadable file, text that is
    not TOML (with the line/column tomllib reports) or any validation problem.
    """
    metas: list[RuleSetMeta] = []
    rules: list[Rule] = []
    names: list[str] = []
    for p in _expand(path):
        name = str(p)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise RulesError(f"{name}: no such rules file") from None
        except OSError as e:
            raise RulesError(_one_line(f"{name}: cannot read: {e.strerror or e}")) from None
        meta, file_rules = _parse_file(name, _read_toml(name, data))
        metas.append(meta)
        rules.extend(file_rules)
        names.append(name)
    try:
        _cross_check(rules)
    except _Problem as e:
        raise RulesError(_one_line(f"{e.rule.file}: {e}")) from None
    return RuleSet(rules=rules, metas=metas, files=names)


# ------------------------------------------------------------------------------------------------
# capture filter
# ------------------------------------------------------------------------------------------------


#: the VPN tunnels' packets :func:`bpf_filter` keeps (``vpn``): IPsec ESP (IPv4 and IPv6 protocol
#: 50), IKE and NAT-T (UDP 500, 4500), OpenVPN (UDP and TCP 1194), WireGuard (UDP 51820), L2TP (UDP
#: 1701), PPTP (TCP 1723 and GRE, IP protocol 47, whose other tunnels the analyzer opens): a capture
#: outside a tunnel the agent's connections go into shows only these, and the analyzer says so
#: (:mod:`kscc_traffic.lookups`, which names the same ones, and the ESP warning)
VPN_FILTER = ("ip proto 50", "ip6 proto 50", "udp port 500", "udp port 4500", "udp port 1194", "tcp port 1194",
              "udp port 51820", "udp port 1701", "tcp port 1723", "ip proto 47")


def bpf_filter(ruleset: RuleSet, *, vlan_depth: int = 2, dns: bool = True, icmp: bool = True,
               proxy_ports: Iterable[int] = (), fragments: bool = True, vpn: bool = True) -> str:
    """A libpcap capture filter (tcpdump, dumpcap/Wireshark ``-f``) for everything the rules cover.

    One ``tcp|udp port N`` / ``tcp|udp portrange A-B`` per distinct rule port (sorted), plus DNS
    (``udp port 53 or tcp port 53``, for the name lookups of the host masks) and ``icmp or icmp6``
    (unreachable / fragmentation-needed errors explain blocked flows) ``or igmp`` (an IPv4 host
    joining a multicast group: the checklist's "joined a multicast group by IGMP/MLD" note; MLD
    is ICMPv6 behind a hop-by-hop header, passed by ``icmp6`` and the extension-header test);
    ``icmp=False`` leaves out all three. ``vpn`` (default): also the packets of the VPN tunnels in
    :data:`VPN_FILTER` (the analyzer says when the agent's connections may be inside one). ``port`` matches either
    direction, so replies are captured too. ``proxy_ports``: ``tcp port N`` each (an explicit
    HTTP proxy the agents CONNECT through, e.g. 3128 or 8080; sorted, duplicates dropped).

    ``fragments`` (default): also every non-first IPv4 fragment (``ip[6:2] & 0x1fff != 0``: it
    carries no ports, libpcap's ``port`` only looks at offset 0) and every IPv6 packet whose first
    next header is an extension header (hop-by-hop 0, routing 43, fragment 44, authentication
    51, destination options 60: libpcap's ``port`` reads the transport header only right after
    the fixed IPv6 header), and IPv4 with an authentication header (``ip proto 51``: the
    analyzer reads the TCP/UDP inside AH). Both are rare, unrelated ones are captured too; the analyzer reassembles fragments
    and walks extension headers. Not ``ip6 protochain``: it compiles to a loop (a backward jump)
    that the Linux kernel refuses to attach and that turns libpcap's optimiser off.

    ``vlan_depth``: 0 untagged only (the form for links without Ethernet headers: libpcap refuses
    ``vlan`` there); 1 also 802.1Q/802.1ad single-tagged frames, as ``(X) or (vlan and (X))``;
    2 (default) also double-tagged (QinQ: 802.1ad + 802.1Q, or 802.1Q twice) frames, nested:
    ``(X) or (vlan and ((X) or (vlan and (X))))``. libpcap's ``vlan`` shifts the offsets of everything
    after it in the whole expression by 4 bytes, hence the repeated, nested expression. On a live
    Linux interface the kernel strips the outer tag into the packet's metadata; libpcap's first
    ``vlan`` tests that metadata too, the second one the tag left in the frame. Size (libpcap
    1.10, bundled rules, with the VPN parts): 170 / 387 / 659 BPF instructions offline at depth
    0 / 1 / 2 (139 / 286 / 496 without them), about twice that on a live Linux handle at depth
    1 and 2 (the metadata test doubles the branches); the kernel's limit is 4096.
    Raises ValueError for another depth.
    """
    if vlan_depth not in (0, 1, 2):
        raise ValueError("vlan_depth must be 0, 1 or 2")
    proxies = sorted({int(p) for p in proxy_ports})
    bad = [p for p in proxies if not 1 <= p <= 65535]
    if bad:
        raise ValueError(f"proxy port {bad[0]} is not in 1-65535")
    parts: list[str] = []
    for t in TRANSPORTS:
        ranges = sorted({r.port_range for r in ruleset.rules if r.transport == t})
        for lo, hi in ranges:
            parts.append(f"{t} portrange {lo}-{hi}" if hi > lo else f"{t} port {lo}")
    tcp_ranges = [r.port_range for r in ruleset.rules if r.transport == "tcp"]
    for port in proxies:                    # a port a rule already covers adds nothing
        if not any(lo <= port <= hi for lo, hi in tcp_ranges):
            parts.append(f"tcp port {port}")
    if dns:
        for extra in ("udp port 53", "tcp port 53"):
            if extra not in parts:
                parts.append(extra)
    if icmp:
        parts.extend(["icmp", "icmp6", "igmp"])
    if vpn:
        parts.extend(p for p in VPN_FILTER if p not in parts)
    if fragments and parts:
        parts.append("(ip[6:2] & 0x1fff != 0)")
        parts.append("ip proto 51")
        parts.append("(ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 51 or ip6[6] == 60)")
    if not parts:
        raise ValueError("nothing to capture: the rule set is empty and dns/icmp are off")
    inner = "(" + " or ".join(parts) + ")"
    # libpcap: each `vlan` shifts the offsets for the REST of the whole expression (not just its
    # parenthesis), so the deeper level must be nested inside the shallower one, never a sibling.
    expr = inner
    for _ in range(vlan_depth):
        expr = f"{inner} or (vlan and ({expr}))" if expr != inner else f"{inner} or (vlan and {inner})"
    return expr
