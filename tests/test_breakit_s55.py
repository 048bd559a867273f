"""Session 55: leftovers of the session 54 break-it passes and this session's findings."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session, udp  # noqa: E402

RULES = load_rules()


def _write(tmp_path, recs, name="c.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return str(path)


def _ksc(t0=1001.0):
    from test_newcomer30_findings import _hello
    return tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=t0, c_data=_hello(b"eu1.ksc.kaspersky.com"))


@pytest.mark.parametrize("group,snooping", [("ff05::1:2", "(MLD snooping)"), ("239.255.1.2", "(IGMP snooping)")])
def test_multicast_seen_one_way_names_the_family_snooping(tmp_path, group, snooping):
    # (s54 v6 #7: an IPv6 distribution point's multicast seen one-way was advised IGMP snooping)
    src = "2001:db8::5" if ":" in group else "192.0.2.5"
    recs = [udp((src, 15001), (group, 15001), b"k" * 60, t=1000 + i) for i in range(3)] + _ksc()
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = readiness(flows, RULES).set_index("purpose").loc["dp_multicast"]
    assert row.status == "seen one-way"
    assert row.fix.endswith(f"let the multicast cross the switches {snooping}")

def test_mixed_families_name_both(tmp_path):
    recs = ([udp(("2001:db8::5", 15001), ("ff05::1:2", 15001), b"k" * 60, t=1000)]
            + [udp(("192.0.2.5", 15001), ("239.255.1.2", 15001), b"k" * 60, t=1000.5)] + _ksc())
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = readiness(flows, RULES).set_index("purpose").loc["dp_multicast"]
    assert row.fix.endswith("(IGMP/MLD snooping)")
