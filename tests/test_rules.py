"""Tests for kscc_traffic.rules and the bundled rules/kscc-cloud.toml."""
from __future__ import annotations

import re
import shutil
import subprocess
import textwrap

import pytest

from kscc_traffic.errors import RulesError
from kscc_traffic.rules import Rule, RuleSet, bpf_filter, bundled_rules_path, load_rules

EXPECTED = {
    # id: (transport, ports text, section, cast)
    "agent_connection": ("tcp", "23100-23199", "§A", "unicast"),
    "mobile_connection": ("tcp", "23700-23799", "§A", "unicast"),
    "activation": ("tcp", "27200-27299", "§A", "unicast"),
    "klsctunnel": ("tcp", "29200-29299", "§A", "unicast"),
    "discovery": ("tcp", "443", "§A", "unicast"),
    "ksn": ("tcp", "1443", "§A", "unicast"),
    "cert_check": ("tcp", "80", "§A", "unicast"),
    "gateway_udp": ("udp", "15000", "§B", "unicast"),
    "agent_broadcast": ("udp", "15000", "§B", "broadcast"),
    "dp_multicast": ("udp", "15001", "§B", "multicast"),
    "dp_agent_connection": ("tcp", "13000", "§C", "unicast"),
    "dp_ksn_proxy_tcp": ("tcp", "13111", "§C", "unicast"),
    "dp_push": ("tcp", "13295", "§C", "unicast"),
    "dp_ksn_proxy_udp": ("udp", "15111", "§C", "unicast"),
    "dp_ksn_proxy_https": ("tcp", "17111", "§C", "unicast"),
}
OPENER = {"§A": "client_to_cloud", "§B": "inbound_to_agent", "§C": "agent_to_dp"}


@pytest.fixture(scope="module")
def rs() -> RuleSet:
    return load_rules()


# ---------------------------------------------------------------------------------------------
# the bundled file
# ---------------------------------------------------------------------------------------------


def test_bundled_has_exactly_the_15_ids(rs):
    assert rs.ids == list(EXPECTED)
    assert rs.meta is not None and rs.meta.name == "kscc-cloud" and rs.meta.source_title


@pytest.mark.parametrize("rid", list(EXPECTED))
def test_bundled_rule_fields(rs, rid):
    transport, ports, section, cast = EXPECTED[rid]
    r = rs.by_id(rid)
    assert (r.transport, r.port_text, r.section, r.cast) == (transport, ports, section, cast)
    assert r.opener == OPENER[section]
    assert r.purpose.strip() and r.purpose_de.strip() and r.fix.strip()
    assert ports in r.fix or ports.replace("-", "–") in r.fix


@pytest.mark.parametrize("rid", list(EXPECTED))
def test_purpose_de_is_copied_from_the_seed(rs, rid):
    seed = bundled_rules_path().resolve().parents[2] / "shared" / "seed" / "kscc-cloud-ports.de.txt"
    if not seed.exists():
        pytest.skip("seed text not available outside the project workspace")
    text = " ".join(seed.read_text(encoding="utf-8").split())
    for sentence in re.split(r"(?<=\.) ", rs.by_id(rid).purpose_de):
        assert sentence in text


@pytest.mark.parametrize(
    "rid,app,mask,has_condition",
    [
        ("agent_connection", "tls", "*.ksc.kaspersky.com", False),
        ("mobile_connection", "tls", "*.ksc.kaspersky.com", True),
        ("discovery", "https", "*.ksc.kaspersky.com", False),
        ("ksn", "tcp", None, False),
        ("cert_check", "http", "*.digicert.com", False),
        ("gateway_udp", "udp", None, True),
        ("agent_broadcast", "udp", None, False),
        ("dp_multicast", "udp", None, True),
        ("dp_ksn_proxy_tcp", "tcp", None, True),
        ("dp_push", "tls", None, True),
        ("dp_ksn_proxy_https", "https", None, True),
    ],
)
def test_bundled_protocol_mask_condition(rs, rid, app, mask, has_condition):
    r = rs.by_id(rid)
    assert r.app_protocol == app
    assert r.host_mask == mask
    assert (r.condition is not None) == has_condition


def test_bundled_loads_from_explicit_path():
    rs2 = load_rules(bundled_rules_path())
    assert rs2.ids == list(EXPECTED)


# ---------------------------------------------------------------------------------------------
# match / lookups
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transport,port,cast,expected",
    [
        ("tcp", 23150, "unicast", "agent_connection"),
        ("tcp", 23100, "unicast", "agent_connection"),
        ("tcp", 23199, "unicast", "agent_connection"),
        ("tcp", 23200, "unicast", None),
        ("udp", 15000, "broadcast", "agent_broadcast"),
        ("udp", 15000, "unicast", "gateway_udp"),
        ("udp", 15001, "multicast", "dp_multicast"),
        ("udp", 15001, "unicast", "dp_multicast"),
        ("udp", 15001, "broadcast", "dp_multicast"),
        ("udp", 15000, "multicast", "agent_broadcast"),   # group delivery: not the unicast rule
        ("tcp", 443, "unicast", "discovery"),
        ("udp", 1443, "unicast", None),
        ("udp", 443, "unicast", None),
        ("tcp", 15000, "unicast", None),
        ("TCP", 1443, "unicast", "ksn"),
        (6, 80, "unicast", "cert_check"),
        (17, 15111, "unicast", "dp_ksn_proxy_udp"),
        (1, 0, "unicast", None),
        ("tcp", -1, "unicast", None),
    ],
)
def test_match(rs, transport, port, cast, expected):
    r = rs.match(transport, port, cast)
    assert (r.id if r else None) == expected


def test_match_exact_cast(rs):
    assert rs.match("udp", 15001, "unicast", exact_cast=True) is None
    assert rs.match("udp", 15000, "broadcast", exact_cast=True).id == "agent_broadcast"


@pytest.mark.parametrize("args", [("sctp", 1), ("tcp", 1, "anycast")])
def test_match_rejects_bad_names(rs, args):
    with pytest.raises(ValueError):
        rs.match(*args)


@pytest.mark.parametrize(
    "transport,port,expected",
    [("tcp", 27250, True), ("udp", 15000, True), ("udp", 1443, False), ("tcp", 53, False), ("tcp", 13295, True)],
)
def test_is_documented_port(rs, transport, port, expected):
    assert rs.is_documented_port(transport, port) is expected


def test_by_id_unknown(rs):
    with pytest.raises(KeyError):
        rs.by_id("nope")


@pytest.mark.parametrize("ports,lo,hi,text", [(1443, 1443, 1443, "1443"), ("23100-23199", 23100, 23199, "23100-23199")])
def test_rule_ports(rs, ports, lo, hi, text):
    r = rs.by_id("ksn").model_copy(update={"ports": ports})
    r = Rule.model_validate(r.model_dump())
    assert (r.port_lo, r.port_hi, r.port_text) == (lo, hi, text)
    assert r.contains(lo) and r.contains(hi) and not r.contains(lo - 1) and not r.contains(hi + 1)


@pytest.mark.parametrize(
    "name,expected",
    [("eu1.ksc.kaspersky.com", True), ("a.b.ksc.kaspersky.com.", True), ("ksc.kaspersky.com", False),
     ("evilksc.kaspersky.com", False), (None, None)],
)
def test_matches_host(rs, name, expected):
    assert rs.by_id("agent_connection").matches_host(name) is expected


def test_priority_resolves_deliberate_overlap(tmp_path):
    p = _write(tmp_path, _rule("discovery", ports=443) + _rule("site_proxy", ports='"400-500"', extra="priority = 5"))
    rs = load_rules(p)
    assert rs.match("tcp", 443).id == "site_proxy"
    assert rs.match("tcp", 450).id == "site_proxy"


def test_several_files_form_one_set(tmp_path):
    extra = _write(tmp_path, _rule("site_rdp", ports=3389), name="site.toml")
    rs = load_rules([bundled_rules_path(), extra])
    assert rs.match("tcp", 3389).id == "site_rdp" and len(rs.rules) == 16 and len(rs.metas) == 2


# ---------------------------------------------------------------------------------------------
# validation errors: one line naming file, rule and field
# ---------------------------------------------------------------------------------------------

META = textwrap.dedent(
    """\
    [meta]
    name = "test"
    version = "1"
    source = "unit test"
    """
)


def _rule(rid: str | None = "ksn", *, ports: object = 1443, transport: str = "tcp", cast: str = "unicast",
          extra: str = "", drop: str | None = None) -> str:
    fields = {
        "id": f'"{rid}"' if rid is not None else None,
        "section": '"§A"',
        "transport": f'"{transport}"',
        "ports": str(ports),
        "app_protocol": '"tcp"',
        "opener": '"client_to_cloud"',
        "cast": f'"{cast}"',
        "purpose": '"p"',
        "purpose_de": '"p"',
        "fix": '"f"',
    }
    lines = ["[[rule]]"] + [f"{k} = {v}" for k, v in fields.items() if v is not None and k != drop]
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n\n"


def _write(tmp_path, body: str, name: str = "rules.toml", meta: str = META):
    p = tmp_path / name
    p.write_text(meta + "\n" + body, encoding="utf-8")
    return p


def _error(p) -> str:
    with pytest.raises(RulesError) as ei:
        load_rules(p)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "body,expected",
    [
        (_rule(ports=70000), "rule 'ksn': field 'ports': 70000 is not a port (1-65535)"),
        (_rule(ports=0), "rule 'ksn': field 'ports': 0 is not a port (1-65535)"),
        (_rule(ports='"100-70000"'), "rule 'ksn': field 'ports': 70000 is not a port (1-65535)"),
        (_rule(ports='"200-100"'), "rule 'ksn': field 'ports': '200-100' is a reversed range (start 200 > end 100)"),
        (_rule(ports='"100-100"'), "rule 'ksn': field 'ports': '100-100' is a one-port range; write a single port as an integer (ports = 100)"),
        (_rule(ports='"1443"'), "rule 'ksn': field 'ports': '1443' is a string; write a single port as an integer (ports = 1443)"),
        # not the hint 'ports = 70000', itself invalid (newcomer 16 N11)
        (_rule(ports='"70000"'), "rule 'ksn': field 'ports': '70000' is not a port (1-65535)"),
        (_rule(ports='"0"'), "rule 'ksn': field 'ports': '0' is not a port (1-65535)"),
        (_rule(ports='"100 - 200"'), "rule 'ksn': field 'ports': '100 - 200' is not a port range (write it as \"23100-23199\": two ports and a '-', no spaces)"),
        (_rule(ports=1.5), "rule 'ksn': field 'ports': 1.5 is not a port or range (write a port as an integer, 1443, or a range as a string, \"23100-23199\")"),
        (_rule(transport="sctp"), "rule 'ksn': field 'transport': 'sctp' is not one of: tcp, udp"),
        (_rule(cast="anycast"), "rule 'ksn': field 'cast': 'anycast' is not one of: unicast, broadcast, multicast, any"),
        (_rule(extra='opener2 = "x"'), "rule 'ksn': field 'opener2': unknown field (did you mean 'opener'?)"),
        (_rule(extra='colour = "red"'), "rule 'ksn': field 'colour': unknown field (allowed: id, section, transport, ports, app_protocol, opener, cast, host_mask, condition, purpose, purpose_de, fix, priority)"),
        (_rule(drop="purpose_de"), "rule 'ksn': field 'purpose_de': missing (required)"),
        (_rule(drop="fix"), "rule 'ksn': field 'fix': missing (required)"),
        (_rule("a") + _rule(None), "rule #2: field 'id': missing (required)"),
        (_rule("Bad-Id"), "rule 'Bad-Id': field 'id': 'Bad-Id' is not a valid id (lower-case letters, digits and '_', starting with a letter)"),
        (_rule(extra='section = "A"').replace('section = "§A"\n', ""), "rule 'ksn': field 'section': 'A' is not a section reference (write it like \"§A\")"),
        (_rule(extra='host_mask = "*.KSC..com"'), "rule 'ksn': field 'host_mask': '*.KSC..com' is not a host mask (lower-case DNS name, optionally starting with '*.', e.g. \"*.ksc.kaspersky.com\")"),
        (_rule(extra='priority = "high"'), "rule 'ksn': field 'priority': 'high' is not an integer"),
        (_rule(extra='condition = ""'), "rule 'ksn': field 'condition': must not be empty"),
        (_rule("ksn") + _rule("ksn", ports=80), "rule 'ksn': field 'id': duplicate id (already used by rule #1)"),
        (_rule("a", ports=443) + _rule("b", ports='"400-500"'),
         "rule 'b': field 'ports': tcp 400-500 (unicast) overlaps rule 'a' (tcp 443, unicast) with the same priority 0; give one of them a different 'priority' if the overlap is deliberate"),
        (_rule("a", ports=15000, transport="udp", cast="any") + _rule("b", ports=15000, transport="udp", cast="broadcast"),
         "rule 'b': field 'ports': udp 15000 (broadcast) overlaps rule 'a' (udp 15000, any) with the same priority 0; give one of them a different 'priority' if the overlap is deliberate"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_validation_error_message(tmp_path, body, expected):
    p = _write(tmp_path, body)
    assert _error(p) == f"{p}: {expected}"


@pytest.mark.parametrize(
    "body",
    [
        _rule("a", ports=15000, transport="udp", cast="unicast") + _rule("b", ports=15000, transport="udp", cast="broadcast"),
        _rule("a", ports=443) + _rule("b", ports=443, transport="udp"),
        _rule("a", ports=443) + _rule("b", ports='"400-500"', extra="priority = -1"),
    ],
)
def test_allowed_overlaps(tmp_path, body):
    assert len(load_rules(_write(tmp_path, body)).rules) == 2


@pytest.mark.parametrize(
    "meta,expected",
    [
        ("", "[meta]: missing (required: name, version, source)"),
        ('[meta]\nname = "x"\nversion = "1"\n', "[meta]: field 'source': missing (required)"),
        ('[meta]\nname = "x"\nversion = 1\nsource = "s"\n', "[meta]: field 'version': input should be a valid string (got int 1)"),
        ('[meta]\nname = "x"\nversion = "1"\nsource = "s"\nauthor = "me"\n',
         "[meta]: field 'author': unknown field (allowed: name, version, source, source_title, date, description)"),
        (META + 'colour = "red"\n', "[meta]: field 'colour': unknown field (allowed: name, version, source, source_title, date, description)"),
    ],
)
def test_meta_errors(tmp_path, meta, expected):
    p = _write(tmp_path, _rule(), meta=meta)
    assert _error(p) == f"{p}: {expected}"


def test_unknown_top_level_key(tmp_path):
    p = _write(tmp_path, _rule(), meta="rules = 1\n" + META)
    assert _error(p) == f"{p}: top-level key 'rules': unknown (did you mean [[rule]]?)"


def test_rule_not_array_of_tables(tmp_path):
    p = _write(tmp_path, _rule().replace("[[rule]]", "[rule]"))
    assert _error(p) == f"{p}: 'rule' must be an array of tables, written as [[rule]]"


def test_no_rules(tmp_path):
    p = _write(tmp_path, "")
    assert _error(p) == f"{p}: no rules (add [[rule]] tables)"


def test_not_toml_names_file_and_position(tmp_path):
    p = _write(tmp_path, _rule() + "id ksn\n")
    msg = _error(p)
    assert msg.startswith(f"{p}: not TOML: ")
    assert re.search(r"line \d+, column \d+", msg)


def test_missing_file(tmp_path):
    p = tmp_path / "absent.toml"
    assert _error(p) == f"{p}: no such rules file"


def test_duplicate_id_across_files(tmp_path):
    a = _write(tmp_path, _rule("ksn", ports=1), name="a.toml")
    b = _write(tmp_path, _rule("ksn", ports=2), name="b.toml")
    assert _error(tmp_path) == f"{b}: rule 'ksn': field 'id': duplicate id (already used by rule #1 in a.toml)"
    assert load_rules(a).ids == ["ksn"]


def test_ruleset_constructor_checks_overlap():
    r = load_rules().by_id("discovery")
    with pytest.raises(ValueError, match="duplicate id"):
        RuleSet(rules=[r, r])


# ---------------------------------------------------------------------------------------------
# capture filter
# ---------------------------------------------------------------------------------------------


def _compile_bpf(expr: str) -> str | None:
    """Compile with the first available libpcap front end; return None when it compiles, else the error.

    Skips the test when no compiler is available.
    """
    try:
        from scapy.arch.common import compile_filter
        from scapy.data import DLT_EN10MB

        try:
            compile_filter(expr, linktype=DLT_EN10MB)
            return None
        except Exception as e:  # noqa: BLE001 - scapy raises Scapy_Exception; an absent libpcap raises others
            if "compile" in str(e).lower():
                return str(e)
    except ImportError:
        pass
    for cmd in (["dumpcap", "-d", "-f", expr, "-i", "lo"], ["tcpdump", "-d", "-y", "EN10MB", "-i", "lo", expr]):
        if shutil.which(cmd[0]):
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if res.returncode == 0 and "(000)" in res.stdout:
                return None
            if "filter" in res.stderr.lower() or "syntax" in res.stderr.lower():
                return res.stderr.strip()
    pytest.skip("no BPF compiler available (scapy+libpcap, dumpcap or tcpdump)")


def test_bpf_compiler_rejects_garbage():
    assert _compile_bpf("tcp port 70000") is not None


@pytest.mark.parametrize("vlan_depth", [0, 1, 2])
def test_bpf_filter_compiles(rs, vlan_depth):
    expr = bpf_filter(rs, vlan_depth=vlan_depth)
    assert _compile_bpf(expr) is None
    # libpcap's `vlan` shifts offsets for the rest of the expression: deeper levels are nested
    assert expr.count("(vlan and (") == vlan_depth
    assert "vlan and vlan" not in expr


@pytest.mark.parametrize("rid", list(EXPECTED))
def test_bpf_filter_covers_every_rule(rs, rid):
    r = rs.by_id(rid)
    expr = bpf_filter(rs)
    word = "portrange" if r.is_range else "port"
    assert f"{r.transport} {word} {r.port_text}" in expr


def test_bpf_filter_dns_icmp_vlan(rs):
    expr = bpf_filter(rs)
    for part in ("udp port 53", "tcp port 53", "icmp or icmp6", " or (vlan and ("):
        assert part in expr
    inner, _, tagged = expr.partition(" or (vlan and ")
    assert tagged == f"({inner} or (vlan and {inner})))"     # default: single tags and QinQ


def _offline_matcher(expr: str):
    """f(packet bytes) -> bool using libpcap's pcap_offline_filter on Ethernet; skip when unavailable."""
    import ctypes
    import ctypes.util

    lib_name = ctypes.util.find_library("pcap")
    if not lib_name:
        pytest.skip("libpcap not found")
    lib = ctypes.CDLL(lib_name)

    class BpfProgram(ctypes.Structure):
        _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]

    class PktHdr(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]

    lib.pcap_open_dead.restype = ctypes.c_void_p
    handle = ctypes.c_void_p(lib.pcap_open_dead(1, 65535))  # LINKTYPE_ETHERNET
    prog = BpfProgram()
    assert lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, 0xFFFFFFFF) == 0

    def match(pkt: bytes) -> bool:
        hdr = PktHdr(0, 0, len(pkt), len(pkt))
        return bool(lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(hdr), pkt))

    return match


@pytest.mark.parametrize(
    "layers,port,proto,depth,expected",
    [
        (0, 23150, "tcp", 1, True),
        (0, 23200, "tcp", 1, False),
        (1, 1443, "tcp", 1, True),
        (1, 1443, "udp", 1, False),
        (1, 15000, "udp", 1, True),
        (2, 15000, "udp", 1, False),
        (2, 15000, "udp", 2, True),
        (2, 1443, "udp", 2, False),
        (1, 53, "udp", 0, False),
        (0, 53, "tcp", 0, True),
    ],
)
def test_bpf_filter_matches_packets(rs, layers, port, proto, depth, expected):
    scapy_all = pytest.importorskip("scapy.all")
    pkt = scapy_all.Ether()
    for v in range(layers):
        pkt = pkt / scapy_all.Dot1Q(vlan=10 + v)
    l4 = scapy_all.TCP if proto == "tcp" else scapy_all.UDP
    pkt = pkt / scapy_all.IP(dst="192.0.2.1") / l4(sport=50000, dport=port)
    assert _offline_matcher(bpf_filter(rs, vlan_depth=depth))(bytes(pkt)) is expected
