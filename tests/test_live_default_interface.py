"""``live --list-interfaces`` says why its default interface is the default (newcomer 31 F4: in a
namespace without a default route the first interface up was labelled "(default route)").

Real namespaces (tests/netns.py): one with a veth and an on-link route only, one with a default
route added through it; addresses from 192.0.2.0/24."""
from __future__ import annotations

import os
import sys

import pytest

import netns
from conftest import ROOT

pytestmark = pytest.mark.skipif(netns.why_unavailable() is not None, reason=str(netns.why_unavailable()))


def _list(ns: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = netns.run_in(ns, [sys.executable, "-m", "kscc_traffic", "live", "--list-interfaces"], cwd=ROOT, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout.splitlines()


def test_default_interface_label_says_why():
    a, b = netns.new_ns("c"), netns.new_ns("s")
    try:
        netns._run(["ip", "link", "add", "kd0", "netns", a, "type", "veth", "peer", "name", "kd1", "netns", b])
        netns._run(["ip", "-n", a, "addr", "add", "192.0.2.10/24", "dev", "kd0"])
        netns._run(["ip", "-n", a, "link", "set", "kd0", "up"])
        netns._run(["ip", "-n", b, "link", "set", "kd1", "up"])
        # an on-link route only: no default route, kd0 is picked as the first interface up
        assert _list(a) == ["kd0  (default: no default route: the first interface up)", "lo"]
        netns._run(["ip", "-n", a, "route", "add", "default", "via", "192.0.2.1", "dev", "kd0"])
        assert _list(a) == ["kd0  (default: the default route)", "lo"]
        # nothing up but loopback
        netns._run(["ip", "-n", a, "link", "set", "kd0", "down"])
        # (session 32: an interface down is marked so, test_fixdetails_s32)
        assert _list(a) == ["kd0  (down)", "lo  (default: no default route, no other interface up)"]
    finally:
        for ns in (a, b):
            netns.kill_ns_processes(ns)
            netns.delete_ns(ns)
