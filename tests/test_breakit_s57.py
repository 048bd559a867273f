"""Session 57: leftovers of the s56 notes (public CA refused with no name asked, …)."""
import pytest


def _ip_literal_refusal(tmp_path, org, cn, code):
    """A TLS 1.2 flow to 203.0.113.10:23101 whose ClientHello's SNI is the address itself (no name
    asked, no DNS in the capture), the server's flight with a certificate issued by ``org``/``cn``,
    and the client's fatal alert ``code``; its one flow row."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from test_breakit_s54 import _refused_flights, _tcp
    from test_newcomer30_findings import _hello

    from kscc_traffic import analyze_file
    _, server, _ = _refused_flights(tmp_path, org, cn)
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, code])
    path = tmp_path / f"ip_sni_{code}.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", _hello(b"203.0.113.10"))] + [("s", r) for r in server] + [("c", alert)])))
    return analyze_file(path).flows.iloc[0]


@pytest.mark.parametrize("code,word", [(42, "bad_certificate"), (43, "unsupported_certificate"),
                                       (46, "certificate_unknown"), (48, "unknown_ca")])
def test_a_public_cas_certificate_refused_with_no_name_asked_is_no_proxys(tmp_path, code, word):
    """s56 note: with an address in the SNI (no name asked) a DigiCert certificate refused as
    unknown_ca (or bad/unsupported/unknown certificate) was ``tls_intercepted`` "a TLS-inspecting
    proxy whose CA the client does not trust?": a proxy re-signs with its own CA, not a public one;
    told as with a name asked, the device's root certificates."""
    row = _ip_literal_refusal(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", code)
    assert (row.verdict, row.reason) == ("blocked", "tls_failed"), row.detail
    assert f"({word} ({code}))" in row.detail, row.detail
    assert "(a public CA, DigiCert, not a TLS-inspection product)" in row.detail, row.detail
    assert "does not trust DigiCert's root" in row.detail, row.detail
    assert "TLS-inspecting proxy whose CA" not in row.detail


def test_a_private_cas_certificate_refused_with_no_name_asked_is_still_a_proxys(tmp_path):
    """The contrast: the same refusal of a certificate from a CA that is no public one stays
    ``tls_intercepted``."""
    row = _ip_literal_refusal(tmp_path, "Example Corp", "Example Corp Issuing CA", 48)
    assert (row.verdict, row.reason) == ("blocked", "tls_intercepted"), row.detail
    assert "a TLS-inspecting proxy whose CA the client does not trust?" in row.detail, row.detail


def _gz_cut_in_first_record(tmp_path):
    """A gzip capture (stored, level 0) of one record of 70 bytes (86 with its header), cut so that its first 58 bytes
    decompress: the pcap header and 34 bytes of the record."""
    import gzip

    from pcapbuild import eth, ip_of, pcap_bytes
    from scapy.layers.inet import TCP
    raw = pcap_bytes([(1000.0, eth(ip_of("192.0.2.10", "203.0.113.10") / TCP(dport=23101, flags="S")
                                   / (b"x" * 16)))])
    assert len(raw) == 24 + 16 + 70
    packed = gzip.compress(raw, compresslevel=0, mtime=0)
    path = tmp_path / "e.pcap.gz"
    path.write_bytes(packed[:10 + 5 + 58])         # gzip header, stored block header, 58 bytes
    return path


def test_a_compressed_capture_cut_in_its_first_record_says_the_stream_was_cut(tmp_path):
    """Break-it s56 link #10: the error gave an offset of the decompressed data (24 in a file of
    73 bytes) without the line that says the gzip stream was cut."""
    import subprocess
    import sys
    path = _gz_cut_in_first_record(tmp_path)
    for args, stdin in (([str(path)], None), (["-"], path.read_bytes())):
        run = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *args], input=stdin,
                             capture_output=True, timeout=120)
        err = run.stderr.decode()
        assert run.returncode == 2, err
        assert err.count("\n") == 1 and err.startswith("Error: "), err
        assert "no packet could be read: " in err and "at offset 24: 34 of 86 bytes present" in err, err
        assert err.rstrip().endswith("; gzip stream ends before its end marker (file cut short); "
                                     "capture data ends at offset 58"), err


def test_later_fragments_of_overlapping_datagrams_name_the_overlap_as_a_cause(tmp_path):
    """Break-it s56 v6 #9: the row of the later fragments of an IPv6 datagram whose fragments
    overlapped (dropped whole, RFC 5722, as the warning says) named only a lost fragment or the
    capture's edges as why it was never captured whole."""
    import warnings

    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment

    from kscc_traffic import analyze
    c, s = "2001:db8:10::25", "2001:db8:a5::10"
    seg = bytes(TCP(sport=50710, dport=23101, flags="PA", seq=1, ack=1) / (b"\x16\x03\x01" + b"A" * 61))
    first = IPv6(src=c, dst=s, nh=44) / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=77) / seg[:48]
    over = IPv6(src=c, dst=s, nh=44) / IPv6ExtHdrFragment(nh=6, offset=3, m=0, id=77) / seg[24:]
    path = tmp_path / "v6overlap.pcap"
    path.write_bytes(pcap_bytes([(1000.0, eth(first)), (1000.001, eth(over))]))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        flows = analyze(str(path))
    assert any("1 IPv6 datagram had overlapping fragments and was dropped whole" in str(w.message) for w in seen), \
        [str(w.message) for w in seen]
    tails = flows[flows["orig_p"] == -1]
    assert len(tails) == 1, flows[["orig_p", "resp_p", "detail"]]
    assert "overlapping fragments dropped whole (RFC 5722" in tails.iloc[0]["detail"]
    assert tails.iloc[0]["verdict"] == "unclassified"
