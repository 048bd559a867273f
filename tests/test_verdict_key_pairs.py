"""classify's verdict key (classify._verdict_keys, narrowed in session 31: the Host, history,
duration and responder of plain HTTP only where _proxy_answer reads them, client_head /
client_binary only on a TLS purpose or through a proxy; break-it 31's window_closed, start_lost,
tls_hrr): flows that differ in one column the judgement may read are judged as judging each
row alone judges them, grouped and through a JudgementCache shared by two tables.

Review 31 (second read): pairs of rows differing in one column, the columns and values where the
key was narrowed. Dropping window_closed, start_lost or client_head from the key, keying the
Host or the responder of plain HTTP never, or an unknown client port as an undocumented one
(the bug ee661f1 fixed), fails it."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from conftest import ROOT
from kscc_traffic import load_rules

C = importlib.import_module("kscc_traffic.classify")
A = importlib.import_module("kscc_traffic.analyze")
RULES = load_rules()
SAMPLES = ROOT / "samples" / "captures"

#: per column, values the narrowed parts of the key turn on (documented HTTP / TLS ports, a
#: proxy, 2xx/3xx answers against refusals, durations either side of the printed precision, the
#: new internal columns of break-it 31)
VALUES = {
    "resp_p": [80, 443, 23101, 13000, 1443, 8080, -1],
    "orig_p": [50000, 23101, 53, -1],
    "proxy_target": ["", "", "eu1.ksc.kaspersky.com:443", "http://crl3.digicert.com/x.crl"],
    "client_proto": ["http", "tls", "", "other"],
    "server_proto": ["http", "tls", ""],
    "http_status": ["", "200", "301", "304", "403", "404", "502"],
    "tunnel_http_status": ["", "200", "403"],
    "tunnel_close_s": [-1.0, -1.0, 0.001, 2.9, 3.0, 5.0],
    "http_host": ["", "crl3.digicert.com", "evil.example:8080"],
    "resp_h": ["203.0.113.10", "198.51.100.7", "192.0.2.1"],
    "duration": [0.0, 0.0003, 0.25, 3.0, 25.0],
    "history": ["ShADadfF", "ShADr", "S", "ShAF", "ShADadR"],
    "client_head": ["", "GET / HTTP/1.1", "abc"],
    "client_binary": ["", "16 03 01 00 00"],
    "window_closed": ["", "", "16.0", "0.5"],
    "start_lost": ["", "", "orig", "both", "resp"],
    "tls_hrr": [False, False, True],
    "partial": [False, False, True],
    "payload_cut": [False, False, True],
    "resp_bytes": [0, 0, 7, 5000],
    "resp_pkts": [0, 1, 1, 4],
    "quiet_s": [0.0, 20.0],
    "service": ["", "ssl", "http"],
    # (DNS: a truncated answer with some address for a needed name, s39-net2's note)
    "query": ["eu1.ksc.kaspersky.com", "eu2.ksc.kaspersky.com", "www.example.org"],
    "dns_answers": ["203.0.113.7", "203.0.113.7", "", "0.0.0.0"],
    "dns_asked": [1, 1 | C.DNS_TRUNCATED, 1 | C.DNS_TRUNCATED],
    "dns_rcode": ["NOERROR", "NOERROR", "SERVFAIL", ""],
}

#: what a row starts as before its random values: plain HTTP to a documented HTTP port, a
#: request through a proxy, plain HTTP not answered, a ClientHello the snaplen cut (the capture lost its start), each
#: with the columns that lead _judge there
SCENARIOS = [
    {"proto": "tcp", "resp_p": 80, "client_proto": "http", "partial": False, "proxy_target": "",
     "http_status": "403"},
    {"proto": "tcp", "resp_p": 80, "client_proto": "http", "partial": False, "proxy_target": "",
     "http_status": "", "resp_bytes": 0, "history": "ShADadfF"},
    {"proto": "tcp", "resp_p": 3128, "proxy_target": "eu1.ksc.kaspersky.com:443", "partial": False,
     "http_status": "200", "client_proto": "http", "client_head": "GET / HTTP/1.1"},
    {"proto": "tcp", "resp_p": 23101, "payload_cut": True, "service": "", "client_proto": "",
     "server_proto": "", "partial": False, "proxy_target": "", "resp_bytes": 0, "resp_pkts": 1,
     "duration": 25.0, "history": "ShADad", "orig_bytes": 300, "start_lost": "orig",
     "tls_established": False},
    # (a client reset after the server's HelloRetryRequest, its answer served: _who_closed)
    {"proto": "tcp", "resp_p": 23101, "service": "ssl", "client_proto": "tls", "server_proto": "tls",
     "partial": False, "proxy_target": "", "payload_cut": False, "resp_bytes": 120, "resp_pkts": 2,
     "history": "ShADadR", "conn_state": "RSTO", "tls_established": False, "tls_alert": "",
     "tls_close": "client RST", "tls_close_wait_s": -1.0, "tls_close_served": 120, "tls_hrr": True,
     "start_lost": "", "window_closed": "", "duration": 0.25},
    {"proto": "udp", "resp_p": 53, "service": "dns", "partial": False, "proxy_target": "", "resp_pkts": 1,
     "query": "eu1.ksc.kaspersky.com", "dns_rcode": "NOERROR", "dns_answers": "203.0.113.7",
     "dns_asked": 1 | C.DNS_TRUNCATED, "cast": "unicast", "client_proto": "", "server_proto": ""},
]


def base_table() -> pd.DataFrame:
    """TCP/UDP flows of three samples as classify gets them, with the internal columns the
    file's table lacks added empty."""
    t = pd.concat([A.analyze_file(SAMPLES / n, RULES).flows.drop(columns=list(C.CLASS_COLUMNS))
                   for n in ("baseline_agent.pcap", "blocked_agent.pcap", "unexpected_agent.pcap")],
                  ignore_index=True)
    t = t[t["proto"].isin(["tcp", "udp"])].reset_index(drop=True)
    for c in ("client_head", "client_binary", "window_closed", "start_lost", "tunnel_http_status", "tls_close"):
        t[c] = pd.Series([""] * len(t), dtype=object)
    t["tls_close_wait_s"] = np.full(len(t), -1.0)
    t["tunnel_close_s"] = np.full(len(t), -1.0)
    t["tls_close_served"] = np.zeros(len(t), np.int64)
    t["tls_hrr"] = np.zeros(len(t), bool)
    t["quiet_s"] = np.zeros(len(t), float)
    t["dns_asked"] = np.zeros(len(t), np.int64)
    assert set(VALUES) | {k for s in SCENARIOS for k in s} <= set(t.columns)
    return t


def put(t: pd.DataFrame, i: int, column: str, value) -> None:
    t.at[i, column] = value


def pairs(seed: int, n: int = 240, copies: int = 6) -> pd.DataFrame:
    """``n`` rows with random values of :data:`VALUES`, then ``copies`` times each row with
    one column changed (to a value of :data:`VALUES`)."""
    rng = np.random.default_rng(seed)
    base = base_table()
    t = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    columns = list(VALUES)
    for i in range(n):
        for c, v in SCENARIOS[i % len(SCENARIOS)].items():
            put(t, i, c, v)
    for c in columns:
        for i in np.flatnonzero(rng.random(n) < 0.15).tolist():
            put(t, i, c, VALUES[c][int(rng.integers(0, len(VALUES[c])))])
    out = [t]
    for _ in range(copies):
        u = t.copy()
        for i in range(n):
            c = columns[int(rng.integers(0, len(columns)))]
            put(u, i, c, VALUES[c][int(rng.integers(0, len(VALUES[c])))])
        out.append(u)
    return pd.concat(out, ignore_index=True)


def row_by_row(t: pd.DataFrame) -> list[tuple]:
    needed = [c for c in C._JUDGE_COLUMNS if c in t.columns]
    series = C._judge_columns(t)
    values = [series[c].tolist() for c in needed]
    return [tuple(C._judge(dict(zip(needed, v)), RULES)) for v in zip(*values)]


def test_one_column_apart_is_judged_as_each_row_alone():
    cache = C.JudgementCache()
    tables = [pairs(31), pairs(32)]
    keyed = 0
    for t in tables:
        assert C._verdict_keys(t, RULES) is not None      # (the grouped path, not the fallback)
        keyed += int(C._verdict_groups(t, RULES).max()) + 1
        want = row_by_row(t)
        for got in (C._judge_all(t, RULES), C._judge_all(t, RULES, cache)):
            bad = [i for i in range(len(t)) if tuple(got[i]) != want[i]]
            assert not bad, (t.iloc[bad[0]].to_dict(), tuple(got[bad[0]]), want[bad[0]])
    # (groups of more than one row: the pairs do test the key's grouping)
    assert keyed < sum(len(t) for t in tables)
    assert cache.hits > 0
    # (the values matter: the narrowed verdicts are among the results)
    details = {d for t in tables for _, _, _, d in row_by_row(t)}
    assert any("window stayed closed" in d for d in details)
    assert any(d.startswith(C.CLIENT_CLEARTEXT) for d in details)
    assert any("http://crl3.digicert.com" in d for d in details)
    assert any("lost by the capture" in d for d in details)
    assert any("HelloRetryRequest" in d for d in details)
    assert any(d.startswith(C.DNS_TRUNCATED_UDP) and "holding part of the addresses" in d for d in details)
