"""The tshark engine reads with Wireshark's defaults, not the personal settings of whoever runs
the analysis (~/.config/wireshark: disabled protocols, Decode As, preferences)."""
from __future__ import annotations

import os
import shutil

import pytest
from scapy.all import IP, TCP, Ether, wrpcap

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark is not installed (apt-get install tshark)")

RULES = load_rules()


def _handshake(path):
    c, s = "198.18.0.10", "203.0.113.20"
    pkts = [Ether() / IP(src=c, dst=s) / TCP(sport=50000, dport=23101, flags="S", seq=100),
            Ether() / IP(src=s, dst=c) / TCP(sport=23101, dport=50000, flags="SA", seq=900, ack=101),
            Ether() / IP(src=c, dst=s) / TCP(sport=50000, dport=23101, flags="A", seq=101, ack=901),
            Ether() / IP(src=c, dst=s) / TCP(sport=50000, dport=23101, flags="FA", seq=101, ack=901),
            Ether() / IP(src=s, dst=c) / TCP(sport=23101, dport=50000, flags="FA", seq=901, ack=102),
            Ether() / IP(src=c, dst=s) / TCP(sport=50000, dport=23101, flags="A", seq=102, ack=902)]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i * 0.01
    wrpcap(str(path), pkts)


def test_personal_wireshark_settings_do_not_change_the_engine(tmp_path, monkeypatch):
    cap = tmp_path / "hs.pcap"
    _handshake(cap)
    conf = tmp_path / "home" / ".config" / "wireshark"
    conf.mkdir(parents=True)
    (conf / "disabled_protos").write_text("tcp\n")       # a user who switched TCP dissection off
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.delenv("WIRESHARK_CONFIG_DIR", raising=False)
    flows = analyze_file(cap, RULES, engine="tshark").flows
    builtin = analyze_file(cap, RULES).flows
    assert len(flows) == 1 and flows["proto"].tolist() == ["tcp"]
    assert flows["conn_state"].tolist() == builtin["conn_state"].tolist() == ["SF"]
    assert flows["history"].tolist() == builtin["history"].tolist()
    assert flows["resp_p"].tolist() == [23101]
    # (the caller's own environment is left as it was)
    assert "WIRESHARK_CONFIG_DIR" not in os.environ
