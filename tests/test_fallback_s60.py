"""Session 60: the IPv6 -> IPv4 fallback rule's leftovers (classify.family_fallbacks): a router's
own IPv6 reset on its ``tcpdump -i any`` capture (compared with the IPv4 fallback's SYN-ACK as
the copies that left the router, like for like, as on the agent's capture)."""
from __future__ import annotations

import shutil
import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from chunkcmp import assert_same
from pcapbuild import pcap_bytes, tcp_session, udp
from test_breakit_s58_real import V4_HOST, V6_HOST, _dns
from test_newcomer_s58_verdicts import NAME, SRV4, SRV6

from kscc_traffic.classify import FALLBACK_CLEARED, REJ_DETAIL
from kscc_traffic.inspect import REFUSED_NEARER

#: interface indexes of the router's two sides (SLL2 records them)
AGENT_SIDE, SERVER_SIDE = 3, 4


def _sll2(pkttype: int, ip, ifindex: int) -> bytes:
    """A LINUX_SLL2 (276) record of the IP packet ``ip`` (scapy): interface ``ifindex``, packet
    type ``pkttype`` (0 to the host / came in, 4 outgoing)."""
    proto = 0x86DD if IPv6 in ip else 0x0800
    return struct.pack(">HHIHBB8s", proto, 0, ifindex, 1, pkttype, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00") + bytes(ip)


def _lower(ip):
    """``ip`` (scapy) as a router forwards it: TTL (hop limit) one lower, checksum redone."""
    out = ip.copy()
    if IPv6 in out:
        out[IPv6].hlim -= 1
    else:
        out[IP].ttl -= 1
        del out[IP].chksum
    return out


def _ip(frame):
    """The IP layer of an Ethernet frame built by pcapbuild, TTL / hop limit 64 (as sent)."""
    ip = frame.payload.copy()
    if IPv6 in ip:
        ip[IPv6].hlim = 64
    else:
        ip[IP].ttl = 64
        del ip[IP].chksum
    return ip


def _event(reset: str):
    """The agent V6_HOST / V4_HOST resolves NAME (A SRV4, AAAA SRV6), tries [SRV6]:80 at 1000.01,
    refused by a reset with hop limit 64 as sent, and 1 ms later connects to SRV4:80 (an HTTP GET
    with Host NAME), the server answering with TTL 64 as sent: [(t, ip packet, from the agent's
    side, forwarded, pkttype override)] as a router between them sees it. ``reset``: ``router``,
    the router's own (``reject with tcp reset``: the SYN not forwarded, the reset leaving on the
    agent's side only); ``server``, the server's own, forwarded as its other packets."""
    out = []
    for t, frame in _dns(NAME, [SRV4, SRV6], 1000.0, 40001, 1):
        out.append((t, _ip(frame), frame[IP].src == V4_HOST, True))
    syn = IPv6(src=V6_HOST, dst=SRV6, hlim=64) / TCP(sport=45000, dport=80, flags="S", seq=7)
    rst = IPv6(src=SRV6, dst=V6_HOST, hlim=64) / TCP(sport=80, dport=45000, flags="RA", seq=0, ack=8)
    out.append((1000.01, syn, True, reset == "server"))
    out.append((1000.0105, rst, False, reset == "server"))
    for t, frame in tcp_session((V4_HOST, 46000), (SRV4, 80), t0=1000.011,
                                c_data=f"GET /x.crl HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode(),
                                s_data=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"):
        out.append((t, _ip(frame), frame[IP].src == V4_HOST, True))
    # (DNS-like filler every 0.25 s, so that small chunks split the event)
    for k in range(16):
        _, frame = udp((V4_HOST, 41000 + k), ("198.51.100.53", 53), b"x" * 40, t=1000.5 + 0.25 * k)
        out.append((1000.5 + 0.25 * k, _ip(frame), True, True))
    return out


def _router_capture(tmp_path, reset: str):
    """:func:`_event` as ``tcpdump -i any`` on the router writes it (SLL2): a forwarded packet
    captured as it came in (type 0, as sent) and as it left (type 4, one lower); the router's own
    reset only as it left (type 4, 64); the SYN it refused only as it came in."""
    recs = []
    for t, ip, from_agent, fwd in _event(reset):
        came, left = (AGENT_SIDE, SERVER_SIDE) if from_agent else (SERVER_SIDE, AGENT_SIDE)
        if not fwd and not from_agent:      # (the router's own reset: sent, never received)
            recs.append((t, _sll2(4, ip, AGENT_SIDE)))
            continue
        recs.append((t, _sll2(0, ip, came)))
        if fwd:
            recs.append((t + 0.00001, _sll2(4, _lower(ip), left)))
    path = tmp_path / f"router_{reset}.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=276))
    return path


def _agent_capture(tmp_path, reset: str):
    """:func:`_event` on the agent's own segment (Ethernet): the server's packets one lower (the
    router forwarded them), the router's own reset as sent."""
    from pcapbuild import eth
    recs = []
    for t, ip, from_agent, fwd in _event(reset):
        if from_agent:
            recs.append((t, eth(ip)))
        else:
            recs.append((t, eth(_lower(ip) if fwd else ip, src="02:00:00:00:00:01", dst="02:00:00:00:00:10")))
    path = tmp_path / f"agent_{reset}.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path


def _port80(flows):
    return flows[(flows.proto == "tcp") & (flows.resp_p == 80)].sort_values("ts_ns").reset_index(drop=True)


def _cli_rows(path, extra):
    import json

    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    out = CliRunner().invoke(app, ["analyze", str(path), "-f", "jsonl", *extra])
    return [json.loads(x) for x in out.output.splitlines() if x.startswith("{")], out.exit_code


def _nearer_detail(uid: str) -> str:
    return (f"{REJ_DETAIL}; the reset came from a device 1 hop {REFUSED_NEARER}hop limit 64 vs TTL 63 on its answer "
            f"over IPv4 to the same name and port, {uid}): a firewall refuses the port over IPv6 (the IPv4 connection "
            "that followed passed that device: only IPv6 is refused there)")


def test_a_routers_own_ipv6_reset_on_its_any_capture_is_no_fallback(tmp_path, monkeypatch):
    """Real s59 #1 (newcomer s59 newc2 #3): on the router's ``tcpdump -i any`` the router's own
    IPv6 reset (leaving with hop limit 64) was compared with the IPv4 SYN-ACK's copy that came in
    (64, the one duplicate removal keeps): no hop between them, the client "fell back", ok, exit
    0, while the agent's capture of the same event said blocked. Now the two copies that left the
    router are compared (64 vs 63): blocked, the nearer device's hint, the same words as the
    agent's capture; whole file, small chunks, the live session, and the CLI (builtin,
    --chunk-mib 1, tshark)."""
    from chunkcmp import RULES
    from kscc_traffic.live.session import LiveSession
    from test_live_session import _replay
    router = _router_capture(tmp_path, "router")
    agent = _agent_capture(tmp_path, "router")
    codes = set()
    for path in (router, agent):
        t = _port80(assert_same(path, [256, 512, 1024]))
        assert t.resp_h.tolist() == [SRV6, SRV4], path.name
        assert t.conn_state.tolist() == ["REJ", "SF"], path.name
        assert t.verdict.tolist() == ["blocked", "ok"] and t.reason[0] == "rejected", (path.name, t.detail[0])
        assert t.detail[0] == _nearer_detail(t.uid[1]), (path.name, t.detail[0])
        s = LiveSession(RULES, name=path.name)
        _replay(path, s, step=3)
        live = _port80(s.final())
        assert live.verdict.tolist() == ["blocked", "ok"] and live.detail[0] == t.detail[0], (path.name, live.detail[0])
        engines = [[], ["--chunk-mib", "1"]] + ([["--engine", "tshark"]] if shutil.which("tshark") else [])
        for extra in engines:
            rows, code = _cli_rows(path, extra)
            rej = [r for r in rows if r["conn_state"] == "REJ"]
            assert [(r["verdict"], r["detail"]) for r in rej] == [("blocked", t.detail[0])], (path.name, extra)
            codes.add(code)
    # (the same exit status from either capture, every engine: 0 here, the headline's No KSC agent
    # traffic, cert_check alone; it was so before too, the verdict is what changed)
    assert codes == {0}


def test_the_servers_own_ipv6_reset_forwarded_by_the_router_is_still_a_fallback(tmp_path):
    """The contrast on the same router: the server's own reset, forwarded (came in with 64, left
    with 63, as the IPv4 SYN-ACK): no hop between the copies that left, the client fell back (ok),
    on the router's capture and on the agent's."""
    for path in (_router_capture(tmp_path, "server"), _agent_capture(tmp_path, "server")):
        t = _port80(assert_same(path, [512]))
        assert t.verdict.tolist() == ["ok", "ok"], (path.name, t.detail[0])
        assert t.detail[0].startswith(f"{FALLBACK_CLEARED}00:16:40.010 UTC, the client fell back to IPv4"), \
            (path.name, t.detail[0])


@pytest.mark.parametrize("reset", ["router", "server"])
def test_resp_ttl_out_is_the_copy_that_left(tmp_path, reset):
    """The internal column resp_ttl_out: the responder's first packet as it left the router (the
    reset: 64 its own, 63 the server's forwarded; the IPv4 SYN-ACK: 63) beside resp_ttl (the copy
    kept: 64 both), and -1 on the agent's Ethernet capture (no direction recorded)."""
    import pandas as pd

    from chunkcmp import RULES
    from kscc_traffic.analyze import analyze_batch
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.flows import RESP_TTL, RESP_TTL_OUT

    def table(path):
        b = analyze_batch(decode(read_frames(path)), RULES, path.name)
        return _port80(pd.concat([b.flows, b.internal], axis=1))
    t = table(_router_capture(tmp_path, reset))
    assert t[RESP_TTL].tolist() == [64, 64]
    assert t[RESP_TTL_OUT].tolist() == [64 if reset == "router" else 63, 63]
    t = table(_agent_capture(tmp_path, reset))
    assert t[RESP_TTL].tolist() == [64 if reset == "router" else 63, 63]
    assert t[RESP_TTL_OUT].tolist() == [-1, -1]


def _checklist_rows(rows):
    import pandas as pd

    from chunkcmp import RULES
    from kscc_traffic.report import TableSummary, readiness
    flows = pd.DataFrame(rows, columns=["purpose", "verdict", "reason", "server_name", "resp_h", "detail"])
    whole = readiness(flows, RULES).set_index("rule")
    chunked = TableSummary.of(flows.assign(ts_ns=0)).readiness(RULES).set_index("rule")
    assert whole.equals(chunked)
    return whole


def test_the_nearer_devices_advice_for_an_ipv6_only_refusal_says_over_ipv6():
    """Newcomer s59 newc2 #2: the checklist of a router rejecting IPv6 (the IPv4 connections pass
    it) ended "a firewall refuses the port: allow outbound TCP 23100-23199 to *.ksc.kaspersky.com",
    unqualified while IPv4 already passes: the firewall advice now names the family whose path is
    blocked. The same for a rule of one port (discovery), and none where the families are not
    split (an IPv4 refusal beside an ok IPv4 connection)."""
    name = "eu1.ksc.kaspersky.com"
    nearer = (f"{REJ_DETAIL}; the reset came from a device 1 hop {REFUSED_NEARER}hop limit 64 vs 63 on the "
              "server's packets on other connections): a firewall refuses the port")
    rows = [("agent_connection", "ok", "", name, SRV4, ""),
            ("agent_connection", "blocked", "rejected", name, SRV6, nearer),
            ("discovery", "ok", "", name, SRV4, ""),
            ("discovery", "blocked", "rejected", name, SRV6, nearer)]
    chk = _checklist_rows(rows)
    split = ("1 of 2 flows ok, 1 blocked (all blocked over IPv6, the ok ones over IPv4: the IPv6 path is blocked; "
             "allow the ports for IPv6 too, or check its routes; a dual-stack agent tries IPv6 first): this connection "
             "attempt was answered by a TCP reset from a device nearer than the server (fewer hops than the server's "
             "own packets on other connections): a firewall refuses the port: ")
    assert chk.loc["agent_connection", "fix"] == split + (
        "allow outbound TCP 23100-23199 over IPv6 to *.ksc.kaspersky.com (the whole range and any address in the "
        "mask; both can change)")
    assert chk.loc["discovery", "fix"] == split + (
        "allow outbound HTTPS (TCP 443) over IPv6 to *.ksc.kaspersky.com (any address in the mask)")
    # (both over IPv4: no family named)
    chk = _checklist_rows([("agent_connection", "ok", "", name, SRV4, ""),
                           ("agent_connection", "blocked", "rejected", name, "198.51.100.12", nearer)])
    assert "over IPv6" not in chk.loc["agent_connection", "fix"]
    assert chk.loc["agent_connection", "fix"].endswith(
        "a firewall refuses the port: allow outbound TCP 23100-23199 to *.ksc.kaspersky.com (the whole range and any "
        "address in the mask; both can change)")


def test_ip_family_fix_of_a_rule_that_reads_otherwise():
    """A rule whose advice does not read "allow outbound … to …" keeps it whole, the family after it."""
    from types import SimpleNamespace

    from kscc_traffic.report import ip_family_fix
    assert ip_family_fix(SimpleNamespace(fix="ask the network team"), "IPv6") == \
        "ask the network team (over IPv6: IPv4 passes already)"
    assert ip_family_fix(SimpleNamespace(fix="allow outbound TCP 1443 to Kaspersky Security Network"), "IPv4") == \
        "allow outbound TCP 1443 over IPv4 to Kaspersky Security Network"


def _gateway_recs(second: float | None, second_client: str = "192.0.2.77", filler: int = 0):
    """The DNS answer for NAME (A and AAAA); V6_HOST's attempt to [SRV6]:80 at 1000.01 refused by a
    reset of hop limit 63 (nothing else of SRV6's); V4_HOST's IPv4 connection to SRV4:80 (Host NAME)
    1 ms later; ``second`` s after the attempt (None: none) another connection to it from
    ``second_client``; ``filler`` DNS-like datagrams every 0.25 s."""
    from test_newcomer_s58_verdicts import _refused6
    recs = _dns(NAME, [SRV4, SRV6], 1000.0, 40001, 1) + _refused6(1000.01, 63)
    get = f"GET /x.crl HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode()
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    recs += tcp_session((V4_HOST, 46000), (SRV4, 80), t0=1000.011, c_data=get, s_data=ok)
    if second is not None:
        recs += tcp_session((second_client, 47000), (SRV4, 80), t0=1000.01 + second, c_data=get, s_data=ok)
    recs += [udp((V4_HOST, 41000 + k), ("198.51.100.53", 53), b"x" * 40, t=1000.5 + 0.25 * k) for k in range(filler)]
    return sorted(recs, key=lambda r: r[0])


def test_the_fallback_detail_names_the_ipv4_flow_as_the_table_shows_it(tmp_path):
    """Newcomer s59 #5: the detail named the IPv4 connection by its uid alone, which the table and
    the HTML report do not show: now by its endpoints as the table shows them, the uid kept."""
    from chunkcmp import write
    path = write(tmp_path, _gateway_recs(None, filler=8))
    t = _port80(assert_same(path, [512]))
    assert t.verdict.tolist() == ["ok", "ok"]
    assert t.detail[0].startswith(
        f"{FALLBACK_CLEARED}00:16:40.010 UTC, the client fell back to IPv4 0.001 s later (192.0.2.10:46000 -> "
        f"198.51.100.11:80, uid {t.uid[1]}): {REJ_DETAIL}, and a connection to the same server name and port over "
        "IPv4 followed and connected (a dual-stack client's fallback, happy eyeballs): most likely"), t.detail[0]


def test_another_ipv4_client_in_the_window_hedges_the_fallback(tmp_path, monkeypatch):
    """Newcomer s59 newc2 #4 (a gateway's capture): where another client's IPv4 connection to the name
    and port began in the attempt's window too, the first one is not said to be this client's
    fallback as a fact: ok still (the server's host took IPv4, refused IPv6 itself), the detail
    hedged. The same whole, in small chunks, live; no hedge when the other client came after the
    window (2.5 s), or when the second connection is the same client's."""
    from chunkcmp import RULES, write
    from kscc_traffic.classify import FALLBACK_MEANS, FALLBACK_SHARED
    from kscc_traffic.live.session import LiveSession
    from test_live_session import _replay, assert_live_same
    path = write(tmp_path, _gateway_recs(0.3, filler=16), name="g.pcap")
    t = _port80(assert_same(path, [256, 512, 1024]))
    assert t.orig_h.tolist() == [V6_HOST, V4_HOST, "192.0.2.77"]
    assert t.verdict.tolist() == ["ok", "ok", "ok"]
    assert t.detail[0] == (
        f"{FALLBACK_CLEARED}00:16:40.010 UTC, a connection over IPv4 to the same server name and port followed 0.001 s "
        f"later and connected (192.0.2.10:46000 -> 198.51.100.11:80, uid {t.uid[1]}), most likely this client's "
        f"fallback (happy eyeballs), but {FALLBACK_SHARED}: {REJ_DETAIL}: {FALLBACK_MEANS}"), t.detail[0]
    assert "other clients connected to that name and port over IPv4 then too" in t.detail[0]
    assert_live_same(path, monkeypatch, step=3)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    assert _port80(s.final()).detail[0] == t.detail[0]
    for second, client in ((2.5, "192.0.2.77"), (0.3, V4_HOST)):
        path = write(tmp_path, _gateway_recs(second, client, filler=16), name=f"n{second}{client}.pcap")
        t = _port80(assert_same(path, [512]))
        assert t.detail[0].startswith(f"{FALLBACK_CLEARED}00:16:40.010 UTC, the client fell back to IPv4 0.001 s "
                                      "later (192.0.2.10:46000 -> "), (second, client, t.detail[0])


def test_other_client_after():
    from kscc_traffic.classify import endpoints_text, other_client_after
    assert other_client_after([]) == []
    assert other_client_after(["a"]) == [-1]
    assert other_client_after(["a", "a", "b", "b", "a"]) == [2, 2, 4, 4, -1]
    assert endpoints_text("192.0.2.10", 43112, "198.51.100.10", 23101) == "192.0.2.10:43112 -> 198.51.100.10:23101"
    assert endpoints_text("2001:db8::1", 1, "2001:db8::2", None) == "[2001:db8::1]:1 -> [2001:db8::2]:?"


def test_the_fallback_holder_keeps_another_clients_connection_when_it_forgets():
    """_FamilyFallbacks forgets the IPv4 connections no waiting attempt can take (review s59 #8),
    but keeps, after each attempt's first one, the first of another client: 400 connections of one
    client, one of another among them, inside the attempt's window: the attempt released with the
    first one and the hedge (shared), as the whole-file rule finds it."""
    import numpy as np
    import pandas as pd

    from kscc_traffic.chunked import _FamilyFallbacks
    from kscc_traffic.classify import FALLBACK
    from test_guard_s59 import _rows
    t0 = 1_000 * 10**9
    waiting = _rows([t0], True).assign(orig_h=V6_HOST, orig_p=45000)
    h = _FamilyFallbacks()
    ts = t0 + 10**6 + np.arange(400) * 10**6              # (one every 1 ms from 1 ms on)
    v4 = _rows(ts, False, 1).assign(orig_h=V4_HOST, orig_p=np.arange(400) + 46000)
    # (the other client's among the first batch's, which is forgotten down to the first and it)
    other = _rows([t0 + 150_500_000], False, 900).assign(orig_h="192.0.2.77", orig_p=47000)
    for batch in (pd.concat([v4.iloc[:200], other], ignore_index=True).sort_values("ts_ns"), v4.iloc[200:]):
        assert len(h.hold(batch, elsewhere=[waiting])) == len(batch)
    assert h.pruned > 300
    assert len(h.retries[(NAME, 80, 0)]) <= _FamilyFallbacks.SLACK + 2 + 1
    assert len(h.hold(waiting)) == 0
    out = h.release(pd.DataFrame(), [], None, True)
    (fb,) = out[FALLBACK].tolist()
    assert fb[:2] == (t0 + 10**6, "C000001") and fb[4:] == (f"{V4_HOST}:46000 -> {SRV4}:80", True)


KSC = "eu1.ksc.kaspersky.com"
KSC4, KSC6 = "198.51.100.10", "2001:db8:c::10"


def _dropped_recs(v4_after: float | None = 0.2, tail: float = 0.3, second: str | None = None):
    """s58 he_drop6: the DNS answer for KSC (A and AAAA); V6_HOST's SYN to [KSC6]:23101 at 1000.01,
    nothing answering it; ``v4_after`` s later (None: never) V4_HOST's IPv4 connection to
    KSC4:23101 (a handshake and a close); the capture ends ``tail`` s after that connection began
    (a DNS-like datagram); ``second``: another client's IPv4 connection to it 0.1 s after the first."""
    from pcapbuild import eth
    recs = _dns(KSC, [KSC4, KSC6], 1000.0, 40001, 1)
    syn = IPv6(src=V6_HOST, dst=KSC6, hlim=64) / TCP(sport=45000, dport=23101, flags="S", seq=7)
    recs.append((1000.01, eth(syn)))
    start = 1000.01 + (v4_after if v4_after is not None else 0.2)
    if v4_after is not None:
        recs += tcp_session((V4_HOST, 46000), (KSC4, 23101), t0=start)
    if second is not None:
        recs += tcp_session((second, 47000), (KSC4, 23101), t0=start + 0.1)
    recs.append(udp((V4_HOST, 41999), ("198.51.100.53", 53), b"x" * 40, t=start + tail))
    return sorted(recs, key=lambda r: r[0])


def _agent_rows(flows):
    return flows[(flows.proto == "tcp") & (flows.resp_p == 23101)].sort_values("ts_ns").reset_index(drop=True)


def test_an_ipv6_attempt_dropped_then_ipv4_at_once_says_so_not_capture_longer(tmp_path, monkeypatch):
    """Newcomer s59 #4 (s58 he_drop6): the IPv6 SYN dropped, IPv4 to the same name and port worked
    0.2 s later, the capture ending 0.3 s after: the IPv6 attempt was "unanswered when the capture
    ended … maybe before an answer could come", and the checklist said to capture longer. The
    client stopped waiting (it fell back): blocked/no_answer still (a drop is the IPv6 path's,
    as a nearer device's reset), its detail names the fallback and the silent drop, and the
    checklist advises the IPv6 path; whole file, small chunks, live and the table summary alike."""
    import pandas as pd

    from chunkcmp import RULES, write
    from kscc_traffic.classify import DROPPED_FALLBACK
    from kscc_traffic.live.session import LiveSession
    from kscc_traffic.report import TableSummary, readiness
    from test_live_session import _replay, assert_live_same
    path = write(tmp_path, _dropped_recs(), name="drop.pcap")
    flows = assert_same(path, [256, 512])
    t = _agent_rows(flows)
    assert t.resp_h.tolist() == [KSC6, KSC4] and t.conn_state.tolist() == ["S0", "SF"]
    assert (t.verdict[0], t.reason[0]) == ("blocked", "no_answer")
    assert t.detail[0] == (
        f"SYN sent 1 time, no answer; the client fell back to IPv4 0.2 s later (192.0.2.10:46000 -> "
        f"198.51.100.10:23101, uid {t.uid[1]}), which connected: {DROPPED_FALLBACK} (a firewall on the way; only "
        "IPv6: the IPv4 connection passed)"), t.detail[0]
    assert "maybe before an answer could come" not in t.detail[0]
    chk = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert (chk.status, chk.status_note) == ("blocked", "")
    assert chk.fix == (
        "1 of 2 flows ok, 1 blocked (all blocked over IPv6, the ok ones over IPv4: the IPv6 path is blocked; allow "
        "the ports for IPv6 too, or check its routes; a dual-stack agent tries IPv6 first): allow outbound TCP "
        "23100-23199 over IPv6 to *.ksc.kaspersky.com (the whole range and any address in the mask; both can change); "
        "after it the client fell back to IPv4 at once, which worked: IPv6 to the server is dropped silently on the "
        "way (no reset, no ICMP error), and the client does not wait for it: capturing longer shows nothing more")
    assert "Capture longer" not in chk.fix
    summary = TableSummary.of(flows)
    assert summary.readiness(RULES).set_index("rule").loc["agent_connection"].fix == chk.fix
    assert_live_same(path, monkeypatch, step=3)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    assert _agent_rows(s.final()).detail[0] == t.detail[0]
    del pd


@pytest.mark.parametrize("case", ["no_ipv4", "too_late", "other_client"])
def test_a_dropped_ipv6_attempt_without_its_own_fallback_keeps_its_detail(tmp_path, case):
    """No IPv4 connection, one 2.5 s later (beyond FALLBACK_S), or two clients' in the window (the
    one after it may be another's): the detail is as before (the capture's end note where due)."""
    from chunkcmp import write
    recs = {"no_ipv4": lambda: _dropped_recs(None),
            "too_late": lambda: _dropped_recs(2.5),
            "other_client": lambda: _dropped_recs(0.2, second="192.0.2.77")}[case]()
    t = _agent_rows(assert_same(write(tmp_path, recs, name=f"{case}.pcap"), [512]))
    assert (t.verdict[0], t.reason[0]) == ("blocked", "no_answer")
    assert t.detail[0].startswith("SYN sent 1 time, no answer") and "fell back" not in t.detail[0], t.detail[0]
