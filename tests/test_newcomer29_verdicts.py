"""Newcomer 29's findings F2, F5, F6, on captures built here with scapy:

- F2: a SYN answered by a reset (REJ) is told by the reset's TTL against the server's packets on
  other connections whether those came before or after it (an agent tries 23101 first and 443
  later): whole file, chunked (the refused flow held until the server's packet comes) and live
  analyses alike (inspect._refused_hints, chunked._Refused, LiveSession._refused_wait);
- F5: a CONNECT or attempt on a connection both sides closed gets no "the capture ended … maybe
  before an answer could come" note (nothing more can come on it), nor the checklist's
  "blocked (the capture ended before an answer could come)"; a proxy's 403 to a CONNECT to an IP
  address names that address in the advice;
- F6: a ClientHello split across segments whose later segment the server never acknowledged
  (it acknowledged the first) says so: a path dropping that segment."""
from __future__ import annotations

import pytest
from scapy.all import IP, TCP, UDP

from chunkcmp import assert_same, whole, write
from kscc_traffic import load_rules, readiness
from kscc_traffic.report import TableSummary
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth

AGENT, SERVER = "192.0.2.10", "203.0.113.10"
RULES = load_rules()


def _up(t, sport, dport, data=b"", dst=SERVER, **kw):
    return t, bytes(eth(IP(src=AGENT, dst=dst, ttl=64) / TCP(sport=sport, dport=dport, **kw) / data))


def _dn(t, sport, dport, ttl, data=b"", src=SERVER, **kw):
    return t, bytes(eth(IP(src=src, dst=AGENT, ttl=ttl) / TCP(sport=sport, dport=dport, **kw) / data,
                        src=SERVER_MAC, dst=CLIENT_MAC))


def _refused(t, sport, ttl):
    """A SYN to 23101 answered by a reset with TTL ``ttl``."""
    return [_up(t, sport, 23101, flags="S", seq=900), _dn(t + .001, 23101, sport, ttl, flags="RA", seq=0, ack=901)]


def _session(t, sport, ttl):
    """A short working connection to 443 whose server's packets come with TTL ``ttl``."""
    return [_up(t, sport, 443, flags="S", seq=100),
            _dn(t + .01, 443, sport, ttl, flags="SA", seq=500, ack=101),
            _up(t + .02, sport, 443, flags="A", seq=101, ack=501),
            _dn(t + .04, 443, sport, ttl, b"x" * 10, flags="PA", seq=501, ack=101),
            _up(t + .05, sport, 443, flags="FA", seq=101, ack=511),
            _dn(t + .06, 443, sport, ttl, flags="FA", seq=511, ack=102),
            _up(t + .07, sport, 443, flags="A", seq=102, ack=512)]


def _filler(t0, t1):
    """A datagram a second from the agent to an undocumented port between ``t0`` and ``t1``: packets
    that move a chunked reading's clock, so that a refused flow leaves before a later session."""
    return [(t, bytes(eth(IP(src=AGENT, dst="198.51.100.7") / UDP(sport=5000, dport=9999) / b"f")))
            for t in range(int(t0), int(t1))]


OWN = ("the SYN was answered by a TCP reset; the reset came with the server's own TTL (52, as its packets on other "
       "connections): most likely the server's own answer: nothing listens on this port there (a wrong port? the "
       "service down?), or its host firewall rejects it (a firewall on the path that copies the server's TTL "
       "looks the same)")
NEARER = ("the SYN was answered by a TCP reset; the reset came from a device 13 hops nearer than the server (TTL 254 "
          "vs 50 on the server's packets on other connections): a firewall refuses the port")


def _details(flows, port=23101):
    return flows.loc[flows["resp_p"] == port, "detail"].tolist()


@pytest.mark.parametrize("later", [False, True], ids=["server-heard-first", "server-heard-later"])
def test_reset_hint_does_not_depend_on_packet_order(tmp_path, later):
    """The same packets, the 443 session before or after the two refused SYNs (newcomer 29 F2:
    s12 vs s14): the same hint, the same advice, whole and in chunks that let the refused flows
    leave before the session is read."""
    s = 60.0 if later else 1.0
    r = 1.0 if later else 60.0
    recs = sorted(_session(s, 40000, 52) + _refused(r, 40001, 52) + _refused(r + 1, 40002, 52) + _filler(3, 58))
    path = write(tmp_path, recs)
    flows = assert_same(path, [300, 700, 1500])
    assert _details(flows) == [OWN, OWN]
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert "nothing listens on this port there (a wrong port? the service down?), or its host firewall rejects it" \
        in fix, fix


def test_nearer_device_told_by_a_later_packet(tmp_path):
    """A firewall's reset (TTL 254) before any packet of the server (TTL 50, later): a device
    13 hops nearer, in every reading."""
    recs = sorted(_refused(1.0, 40001, 254) + _session(30.0, 40000, 50) + _filler(2, 28))
    flows = assert_same(write(tmp_path, recs), [300, 700])
    assert _details(flows) == [NEARER]


def test_reset_from_an_address_never_heard_otherwise(tmp_path):
    """A reset from an address that sent nothing else: no hint (held to the capture's end in a
    chunked reading, then let go as it was)."""
    recs = sorted(_refused(1.0, 40001, 52) + _filler(2, 28))
    flows = assert_same(write(tmp_path, recs), [200, 500])
    assert _details(flows) == ["the SYN was answered by a TCP reset"]


def test_live_session_gives_the_later_hint(tmp_path, monkeypatch):
    """A live session (ticks between the packets, the refused flows' close timeout passing before
    the server's session) gives analyze's rows."""
    from test_live_session import assert_live_same
    recs = sorted(_refused(1.0, 40001, 52) + _refused(2.0, 40002, 52) + _session(60.0, 40000, 52))
    path = write(tmp_path, recs)
    flows, _ = whole(path)
    assert _details(flows) == [OWN, OWN]
    assert_live_same(path, monkeypatch, step=2)
