"""Verdicts against labels: our samples (labels written by samples/generate.py) and the shared
real-stack corpus (../shared/corpus/ksc). Each label names one flow and what must be said of it."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import ROOT, SHARED
from kscc_traffic import analyze

SAMPLES = ROOT / "samples" / "captures"

PURPOSE = {"discovery_https": "discovery", "cert_check_http": "cert_check",
           "agent_broadcast_udp": "agent_broadcast", "dp_multicast_udp": "dp_multicast"}
VERDICT = {  # label verdict -> (verdict, reason) the analyzer must give; None = any reason
    "ok": ("ok", None), "ok_partial_capture": ("ok", "partial"),
    "blocked_no_answer": ("blocked", "no_answer"), "blocked_rejected_rst": ("blocked", "rejected"),
    "blocked_icmp": ("blocked", "icmp_unreachable"), "unexpected_host": ("unexpected", "host_mismatch"),
    "unexpected_protocol": ("unexpected", "not_tls"), "tls_failed": ("blocked", "tls_failed"),
    "unexpected_undocumented_port": ("unexpected", "undocumented_port"),
    "unexpected_wrong_direction": ("unexpected", "wrong_direction"), "unclassified": ("unclassified", ""),
}


def _label_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.labels.json")) + sorted(folder.rglob("*.extra-labels.json"))


def _capture_of(label_file: Path) -> Path:
    return label_file.with_name(label_file.name.replace(".extra-labels.json", "").replace(".labels.json", ""))


@lru_cache(maxsize=None)
def _flows(capture: str):
    return analyze(capture)


def _cases(folder: Path):
    out = []
    for lf in _label_files(folder):
        for i, label in enumerate(json.loads(lf.read_text())):
            out.append(pytest.param(lf, i, id=f"{_capture_of(lf).name}#{i}-{label['expected_verdict']}"))
    return out


def _check(label_file: Path, index: int) -> None:
    label = json.loads(label_file.read_text())[index]
    flows = _flows(str(_capture_of(label_file)))
    m = flows[(flows.orig_h == label["client_ip"]) & (flows.resp_h == label["server_ip"])
              & (flows.resp_p == label["server_port"]) & (flows.proto == label["transport"])]
    if label.get("client_port") is not None:
        m = m[m.orig_p == label["client_port"]]
    assert len(m) == 1, f"{len(m)} flows match {label}"
    row = m.iloc[0]
    assert row.purpose == PURPOSE.get(label["expected_purpose"], label["expected_purpose"])
    want = label.get("expected_reason")
    if label["expected_verdict"] == "tls_intercepted":
        # (blocked/tls_intercepted: the client refused the proxy's certificate, newcomer 23 F2)
        assert (row.verdict, row.reason) in {("unexpected", "tls_intercepted"), ("blocked", "tls_failed"),
                                             ("blocked", "tls_intercepted")}
        if want:
            assert row.reason == want
    else:
        verdict, reason = VERDICT[label["expected_verdict"]]
        assert row.verdict == verdict
        if reason is not None:
            assert row.reason == reason
    name = label.get("sni_or_host")
    if name:
        got = row.query if row.purpose == "dns" else row.server_name
        assert got.lower() == name.lower()


@pytest.mark.parametrize("label_file,index", _cases(SAMPLES))
def test_sample_label(label_file, index):
    _check(label_file, index)


KSC = SHARED / "corpus" / "ksc"


@pytest.mark.parametrize("label_file,index", _cases(KSC) if KSC.is_dir() else [
    pytest.param(None, None, marks=pytest.mark.skip(reason=f"{KSC} not present (shared corpus beside the checkout)"))])
def test_shared_corpus_label(label_file, index):
    _check(label_file, index)


@pytest.mark.parametrize("capture", sorted(p.name for p in KSC.glob("*.pcap*") if not p.name.endswith(".json"))
                         if KSC.is_dir() else [])
def test_shared_corpus_has_no_extra_flows(capture):
    """Every TCP/UDP flow of a labelled capture is a labelled one: nothing split or reversed."""
    labels = json.loads((KSC / f"{capture}.labels.json").read_text())
    flows = _flows(str(KSC / capture))
    flows = flows[flows.proto.isin(["tcp", "udp"])]
    keys = {(lb["client_ip"], lb["client_port"], lb["server_ip"], lb["server_port"], lb["transport"]) for lb in labels}
    got = set(zip(flows.orig_h, flows.orig_p, flows.resp_h, flows.resp_p, flows.proto))
    assert got == keys
