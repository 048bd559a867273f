"""Session 59: a Linux cooked capture (``tcpdump -i any``, LINUX_SLL / LINUX_SLL2) of a host with
a monitor-mode Wi-Fi interface: its records carry ARPHRD type 803 (radiotap) and the protocol
ETH_P_802_2, and hold a radiotap header and the 802.11 frame. The builtin engine read them as
LLC and found no IP packet ("a capture on the wrong interface?"), where Wireshark, and so the
tshark engine, reads the 802.11 frames and their connections."""
import shutil
import struct

import pytest
from scapy.layers.dot11 import Dot11, RadioTap
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import LLC, SNAP

from pcapbuild import pcap_bytes

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules

AGENT, DP = "192.0.2.10", "192.0.2.1"
AP, STA = "02:00:00:00:00:01", "02:00:00:00:00:10"
ARPHRD_ETHER, ARPHRD_RADIOTAP = 1, 803
ETH_P_802_2 = 0x0004


def _wifi(ip, to_ds: bool, fcs_flags: int | None = None) -> bytes:
    """A radiotap header (with a Flags field when ``fcs_flags`` is given) and an 802.11 data
    frame carrying ``ip`` (LLC/SNAP)."""
    rt = RadioTap() if fcs_flags is None else RadioTap(present="Flags", Flags=fcs_flags)
    src, dst = (STA, AP) if to_ds else (AP, STA)
    frame = Dot11(type=2, subtype=0, FCfield=1 if to_ds else 2, addr1=AP if to_ds else STA,
                  addr2=src, addr3=dst) / LLC() / SNAP() / ip
    return bytes(rt / frame)


def _sll(hatype: int, proto: int, payload: bytes, pkttype: int = 0) -> bytes:
    """A LINUX_SLL (113) record: packet type, ARPHRD type ``hatype``, a 6-byte address, protocol."""
    return struct.pack(">HHH8sH", pkttype, hatype, 6, b"\x02\x00\x00\x00\x00\x10\x00\x00", proto) + payload


def _sll2(hatype: int, proto: int, payload: bytes, pkttype: int = 0) -> bytes:
    """A LINUX_SLL2 (276) record: protocol, interface 5, ARPHRD type ``hatype``, packet type."""
    return struct.pack(">HHIHBB8s", proto, 0, 5, hatype, pkttype, 6, b"\x02\x00\x00\x00\x00\x10\x00\x00") + payload


def _capture(tmp_path, link: str, bad_fcs_on_data: bool = False):
    """``tcpdump -i any`` of a monitor interface: an agent's connection to a distribution point's
    TCP 13000 (handshake, 30 bytes each way, FIN both ways) as 802.11 data frames in radiotap,
    behind a LINUX_SLL (``link`` "sll") or LINUX_SLL2 ("sll2") header of ARPHRD type 803; with
    ``bad_fcs_on_data`` the client's data frame has the radiotap bad-FCS flag (0x40) set."""
    wrap, lt = (_sll, 113) if link == "sll" else (_sll2, 276)
    up = lambda **kw: IP(src=AGENT, dst=DP) / TCP(sport=50100, dport=13000, **kw)  # noqa: E731
    dn = lambda **kw: IP(src=DP, dst=AGENT) / TCP(sport=13000, dport=50100, **kw)  # noqa: E731
    pkts = [(True, up(flags="S", seq=100)), (False, dn(flags="SA", seq=500, ack=101)),
            (True, up(flags="A", seq=101, ack=501)), (True, up(flags="PA", seq=101, ack=501) / (b"q" * 30)),
            (False, dn(flags="PA", seq=501, ack=131) / (b"r" * 30)), (True, up(flags="FA", seq=131, ack=531)),
            (False, dn(flags="FA", seq=531, ack=132)), (True, up(flags="A", seq=132, ack=532))]
    recs = []
    for i, (to_ds, ip) in enumerate(pkts):
        flags = 0x40 if bad_fcs_on_data and i == 3 else None
        # (the capturing host's own injected frames are OUTGOING, packet type 4: still read)
        recs.append((1000.0 + i * 0.01, wrap(ARPHRD_RADIOTAP, ETH_P_802_2, _wifi(ip, to_ds, flags),
                                             pkttype=4 if i == 7 else 0)))
    path = tmp_path / f"any_{link}.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=lt))
    return path


def _runs(path):
    """{mode: flows}: whole, chunked (a few records a chunk), and the tshark engine when installed."""
    import pandas as pd

    from kscc_traffic.chunked import ChunkedAnalysis
    rules = load_rules()
    out = {"whole": analyze_file(path, rules).flows}
    run = ChunkedAnalysis(path, rules, path.name, chunk_bytes=512)
    out["chunked"] = pd.concat(list(run.batches()), ignore_index=True)
    if shutil.which("tshark"):
        out["tshark"] = analyze_file(path, rules, engine="tshark").flows
    return out


@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_a_monitor_interface_in_a_cooked_capture_is_read_as_802_11(tmp_path, link):
    """The frames were "3 non-IP … a capture on the wrong interface?"; they are the connection
    (the fast path leaves them to the slow path, which reads them: both give the same rows)."""
    from decodecheck import decoded
    path = _capture(tmp_path, link)
    p = decoded(path)
    assert len(p) == 8 and p.stats.non_ip == 0
    for mode, flows in _runs(path).items():
        assert len(flows) == 1, (mode, flows)
        row = flows.iloc[0]
        assert (row.orig_h, row.orig_p, row.resp_h, row.resp_p, row.proto) == (AGENT, 50100, DP, 13000, "tcp"), mode
        assert (row.conn_state, row.history) == ("SF", "ShADdFf"), mode
        assert (row.orig_pkts, row.orig_bytes, row.resp_pkts, row.resp_bytes) == (5, 30, 3, 30), mode
        assert (row.purpose, row.vlan, row.cast) == ("dp_agent_connection", 0, "unicast"), mode


@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_a_bad_fcs_frame_behind_a_cooked_header_is_skipped_as_damaged(tmp_path, link):
    """The radiotap bad-FCS flag counts as it does under link type 127: the frame is skipped and said."""
    a = analyze_file(_capture(tmp_path, link, bad_fcs_on_data=True), load_rules())
    (row,) = a.flows.itertuples()
    assert (row.orig_pkts, row.resp_pkts, row.resp_bytes) == (4, 3, 30)
    assert any("1 frame" in w and "damaged" in w for w in a.warnings), a.warnings


def test_other_cooked_records_keep_their_protocol_field(tmp_path):
    """An Ethernet interface's records (ARPHRD_ETHER) are read by their protocol field as before:
    a record whose protocol is ETH_P_802_2 is LLC, not radiotap."""
    ip = bytes(IP(src=AGENT, dst=DP) / TCP(sport=50100, dport=13000, flags="S"))
    path = tmp_path / "eth.pcap"
    path.write_bytes(pcap_bytes([(1000.0, _sll(ARPHRD_ETHER, 0x0800, ip)),
                                 (1000.1, _sll(ARPHRD_ETHER, ETH_P_802_2, _wifi(ip, True)))], linktype=113))
    a = analyze_file(path, load_rules())
    assert len(a.flows) == 1 and a.flows.iloc[0].orig_pkts == 1
    assert a.stats[str(path)].non_ip == 1


@pytest.mark.parametrize("proto, rows, malformed", [(0x0019, 1, 0), (0x0800, 0, 1)])
def test_a_monitor_record_is_radiotap_only_under_a_linux_protocol_type(tmp_path, proto, rows, malformed):
    """As Wireshark's sll.hatype table: ARPHRD 803 means radiotap when the protocol field is a Linux
    protocol type (below 0x600: ETH_P_802_2, ETH_P_80211_RAW 0x0019); an ethertype there is read
    as one (0x0800 over radiotap bytes: "Bogus IPv4 version", malformed), both paths alike."""
    from decodecheck import decoded
    ip = IP(src=AGENT, dst=DP) / TCP(sport=50100, dport=13000, flags="S")
    path = tmp_path / "mon.pcap"
    path.write_bytes(pcap_bytes([(1000.0, _sll(ARPHRD_RADIOTAP, proto, _wifi(ip, True)))], linktype=113))
    p = decoded(path)
    assert (len(p), p.stats.malformed) == (rows, malformed)


@pytest.mark.parametrize("linktype, said", [
    (290, "decode: 1 frame of link type 290 (Event Tracing for Windows events: no IP traffic) skipped"),
    (293, "decode: 1 frame of link type 293 (USB: no IP traffic) skipped"),
    (295, "decode: 1 frame of link type 295 (USB: no IP traffic) skipped"),
    # (ATSC ALP carries IP: not called "no IP traffic", nor USB)
    (289, "decode: 1 frame of unsupported link type 289 skipped (--engine tshark reads more link types)"),
    (291, "decode: 1 frame of unsupported link type 291 skipped (--engine tshark reads more link types)"),
])
def test_link_types_without_ip_are_named_by_what_they_are(tmp_path, linktype, said):
    """289-291 were all called USB (ATSC ALP, ETW, netANALYZER NG: tcpdump.org's list and
    Wireshark 4.0 give 290 as ETW), and the USB 2.0 low/full/high-speed types 293-295 got the
    hint that the tshark engine reads more link types (it reads them as USB, no IP)."""
    path = tmp_path / f"lt{linktype}.pcap"
    path.write_bytes(pcap_bytes([(1000.0, bytes(8))], linktype=linktype))
    a = analyze_file(path, load_rules())
    assert f"{path.name}: {said}" in a.stats[str(path)].warnings, a.stats[str(path)].warnings


ARPHRD_FRAD, ETH_P_HDLC = 770, 0x0019


def _fr(ip) -> bytes:
    """A Frame Relay frame (RFC 2427): Q.922 address of DLCI 100, UI control, NLPID IPv4."""
    return b"\x18\x41\x03\xcc" + bytes(ip)


@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_a_frame_relay_device_in_a_cooked_capture_is_read_as_frame_relay(tmp_path, link):
    """ARPHRD_FRAD (770) is in Wireshark's sll.hatype table too: the record holds the Frame Relay
    frame (read as under link type 107), not an LLC frame (it was "no IP packet")."""
    from decodecheck import decoded
    wrap, lt = (_sll, 113) if link == "sll" else (_sll2, 276)
    up = lambda **kw: IP(src=AGENT, dst=DP) / TCP(sport=50100, dport=13000, **kw)  # noqa: E731
    dn = lambda **kw: IP(src=DP, dst=AGENT) / TCP(sport=13000, dport=50100, **kw)  # noqa: E731
    pkts = [up(flags="S", seq=100), dn(flags="SA", seq=500, ack=101), up(flags="A", seq=101, ack=501)]
    bcast = IP(src=AGENT, dst="192.0.2.255") / UDP(sport=15000, dport=15000) / b"k"
    path = tmp_path / f"frad_{link}.pcap"
    path.write_bytes(pcap_bytes([(1000.0 + i * 0.01, wrap(ARPHRD_FRAD, ETH_P_HDLC, _fr(p)))
                                 for i, p in enumerate(pkts + [bcast])], linktype=lt))
    p = decoded(path)
    assert len(p) == 4 and p.stats.non_ip == 0
    for mode, flows in _runs(path).items():
        tcp = flows[flows.proto == "tcp"].iloc[0]
        assert (tcp.orig_h, tcp.resp_p, tcp.conn_state, tcp.history) == (AGENT, 13000, "S1", "ShA"), mode
        udp = flows[flows.proto == "udp"].iloc[0]
        # (no link-layer destination, as under link type 107: the subnet broadcast told by its address)
        assert (udp.resp_h, udp.cast, udp.purpose) == ("192.0.2.255", "broadcast", "agent_broadcast"), mode


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Wireshark) not installed: the tshark engine is compared here")
@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_the_engines_take_the_link_facts_of_the_kept_link_layer(tmp_path, link):
    """``l2_bcast``/``l2_out`` of a cooked record that keeps its device's link layer are that layer's,
    with both engines: an 802.11 frame to ff:ff:ff:ff:ff:ff is a broadcast whatever the cooked
    packet type (the tshark engine read the packet type: 0, not a broadcast), a Frame Relay frame
    records no destination (l2_out, as under link type 107; the tshark engine read packet type 0:
    not sent by the host)."""
    from decodecheck import decoded
    from kscc_traffic.engines.tshark import read_packets
    wrap, lt = (_sll, 113) if link == "sll" else (_sll2, 276)
    ip = IP(src=AGENT, dst=DP) / UDP(sport=15000, dport=15000) / b"k"
    wifi = _wifi(ip, True)
    wifi = wifi[:8 + 16] + b"\xff" * 6 + wifi[8 + 22:]          # (addr3, the DA of a to-DS frame)
    path = tmp_path / f"facts_{link}.pcap"
    path.write_bytes(pcap_bytes([(1000.0, wrap(ARPHRD_RADIOTAP, ETH_P_802_2, wifi)),
                                 (1000.1, wrap(ARPHRD_FRAD, ETH_P_HDLC, _fr(ip)))], linktype=lt))
    want = {"l2_bcast": [True, False], "l2_out": [False, True]}
    for engine, p in (("builtin", decoded(path)), ("tshark", read_packets(path))):
        for col, values in want.items():
            assert p.cols[col].tolist() == values, (engine, col)
