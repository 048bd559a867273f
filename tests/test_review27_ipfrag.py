"""Session 27 review of IPv6 reassembly (RFC 5722 / RFC 8200 §4.5, as Linux): a fragment that
reaches past the end the last fragment sets drops the datagram, in either order (it completed,
cut at the last fragment's end); IPv4 keeps the first copy of each byte as before."""
from __future__ import annotations

import pytest

from kscc_traffic.capture._ipfrag import Reassembler


@pytest.mark.parametrize("last_first", [False, True], ids=["last-after", "last-before"])
def test_fragment_past_the_last_fragments_end_drops_an_ipv6_datagram(last_first):
    """Bytes 24-32 (More Fragments set) and a last fragment ending at 16: no overlap, but past the
    end; the first fragment after them does not complete the datagram."""
    r = Reassembler()
    past, last = (24, True, 8, b"c" * 8, "r2", None), (8, False, 8, b"b" * 8, "r1", None)
    frags = [last, past] if last_first else [past, last]
    got = [r.add(("k",), 1, off, more, ln, data, row, head, drop_overlaps=True)
           for off, more, ln, data, row, head in frags]
    assert got == [None, None]
    assert r.overlap_dropped == 1 and sorted(r.flushed) == ["r1", "r2"]
    assert r.add(("k",), 1, 0, True, 8, b"a" * 8, "r0", "head", drop_overlaps=True) is None


def test_fragment_past_the_end_completes_nothing_after_it():
    """In order: the first fragment, the one past the end, then the last: no datagram."""
    r = Reassembler()
    assert r.add(("k",), 1, 0, True, 8, b"a" * 8, "r0", "head", drop_overlaps=True) is None
    assert r.add(("k",), 1, 24, True, 8, b"c" * 8, "r2", None, drop_overlaps=True) is None
    assert r.add(("k",), 1, 8, False, 8, b"b" * 8, "r1", None, drop_overlaps=True) is None
    assert r.overlap_dropped == 1 and r.reassembled == 0


def test_ipv4_still_reassembles_with_a_fragment_past_the_end():
    r = Reassembler()
    assert r.add(("k",), 1, 0, True, 8, b"a" * 8, "r0", "head") is None
    assert r.add(("k",), 1, 24, True, 8, b"c" * 8, "r2", None) is None
    done = r.add(("k",), 1, 8, False, 8, b"b" * 8, "r1", None)
    assert done is not None and done.data == b"a" * 8 + b"b" * 8 and done.total == 16


def test_ipv6_in_order_fragments_still_complete():
    r = Reassembler()
    assert r.add(("k",), 1, 0, True, 8, b"a" * 8, "r0", "head", drop_overlaps=True) is None
    done = r.add(("k",), 1, 8, False, 8, b"b" * 8, "r1", None, drop_overlaps=True)
    assert done is not None and done.data == b"a" * 8 + b"b" * 8 and r.overlap_dropped == 0
