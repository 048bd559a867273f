"""pcapng blocks written without their padding (a block length that is not a multiple of 4, the
trailing length repeating it: some writers give the body's own length, §3.1 asks for padding to
32 bits). Wireshark refuses such a file ("appears to be damaged or corrupt"); the reader used to
stop at the first such block as damage and resynchronise, losing every packet but those it found
again by chance. Now a block is read by its length when its trailing length repeats it and a
well-framed block (or the file's end) follows it, with one warning counting them."""
from __future__ import annotations

import struct

import pytest

from kscc_traffic.analyze import analyze
from kscc_traffic.capture.files import read_frames
from test_resync import _records, _same_in_chunks

SHB = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)


def _block(btype: int, body: bytes, pad: bool) -> bytes:
    body += b"\0" * (-len(body) % 4 if pad else 0)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _idb(pad: bool, name: bytes = b"") -> bytes:
    # an if_name option whose value is not padded either when `pad` is False
    opts = (struct.pack("<HH", 2, len(name)) + name + (b"\0" * (-len(name) % 4) if pad else b"")
            + struct.pack("<HH", 0, 0)) if name else b""
    return _block(1, struct.pack("<HHI", 1, 0, 65535) + opts, pad)


def _epb(ts_us: int, data: bytes, pad: bool) -> bytes:
    return _block(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(data), len(data)) + data, pad)


def _file(recs, pad: bool, idb_name: bytes = b"") -> tuple[bytes, list[int]]:
    out, offs, pos = [SHB, _idb(pad, idb_name)], [], 0
    pos = sum(map(len, out))
    for t, p in recs:
        b = _epb(round(t * 1e6), bytes(p), pad)
        offs.append(pos)
        out.append(b)
        pos += len(b)
    return b"".join(out), offs


def _unpadded_offsets(recs, offs) -> list[int]:
    return [o for o, (_, p) in zip(offs, recs) if len(bytes(p)) % 4]


@pytest.mark.parametrize("idb_name", [b"", b"eth0.5"])
def test_every_packet_of_an_unpadded_pcapng_is_read(idb_name):
    recs = _records()
    padded, _ = _file(recs, True, idb_name)
    data, offs = _file(recs, False, idb_name)
    odd = _unpadded_offsets(recs, offs)
    assert len(data) < len(padded) and len(odd) > 20      # (the test's premise: many odd lengths)
    ref, fr = read_frames(padded), read_frames(data)
    assert [fr.data(i) for i in range(len(fr))] == [bytes(p) for _, p in recs]
    assert fr.ts_ns.tolist() == ref.ts_ns.tolist()
    st = fr.stats
    assert st.damage_offset is None and st.skipped_bytes == 0 and st.skipped_records == 0
    assert st.bytes_read == len(data)
    first = len(SHB) if idb_name else odd[0]    # ("eth0" + 2 + ... : the IDB itself is unpadded)
    k = len(odd) + (1 if idb_name else 0)
    assert st.warnings == [f"<bytes>: {k} blocks without the padding pcapng asks for (a length that is not a "
                           f"multiple of 4, first at offset {first}) read by their length, as the blocks after "
                           "them are well framed (the tool that wrote the file leaves the padding out; "
                           "Wireshark refuses such a file)"]
    _same_in_chunks(data, fr, sizes=(64, 97, 333, 700, 1500, 4096))


def test_the_flows_of_an_unpadded_pcapng_are_those_of_the_padded_one(tmp_path):
    recs = _records()
    (tmp_path / "padded.pcapng").write_bytes(_file(recs, True)[0])
    (tmp_path / "unpadded.pcapng").write_bytes(_file(recs, False)[0])
    cols = ["orig_h", "orig_p", "resp_h", "resp_p", "conn_state", "history", "orig_bytes", "resp_bytes",
            "orig_pkts", "resp_pkts", "verdict", "purpose"]
    a = analyze(str(tmp_path / "padded.pcapng"))[cols]
    with pytest.warns(Warning, match=r"^unpadded.pcapng: \d+ blocks without the padding"):
        b = analyze(str(tmp_path / "unpadded.pcapng"))[cols]
    assert len(a) == 12 and a.equals(b)
    assert set(a["conn_state"]) == {"SF"}


def test_an_odd_length_whose_trailing_length_differs_is_still_damage():
    """Not a writer's missing padding: the trailing length does not repeat the leading one, or no
    well-framed block follows: damage as before (stop, resynchronise on the next whole blocks)."""
    recs = _records()
    data, offs = _file(recs, True)
    at = offs[30]
    (blen,) = struct.unpack_from("<I", data, at + 4)
    # the leading length 2 bytes longer (not a multiple of 4): its trailing length is 2 bytes before
    bad = data[:at + 4] + struct.pack("<I", blen + 2) + data[at + 8:]
    fr = read_frames(bad)
    assert "damaged Enhanced Packet Block at offset" in fr.stats.warnings[0]
    assert "not a multiple of 4" in fr.stats.warnings[0]
    assert fr.stats.skipped_records == 1 and len(fr) == len(recs) - 1
    # trailing length repeated, but garbage after it: damage too
    body = data[at + 8:offs[31] - 4]
    garbage = struct.pack("<II", 6, len(body) + 13) + body + b"\x77" + struct.pack("<I", len(body) + 13)
    bad = data[:at] + garbage + b"\xde\xad\xbe\xef" * 3 + data[offs[31]:]
    fr = read_frames(bad)
    assert "not a multiple of 4" in fr.stats.warnings[0] and fr.stats.skipped_records >= 1
    assert not any("without the padding" in w for w in fr.stats.warnings)


def test_an_unpadded_last_block_before_the_end_of_the_file():
    recs = _records()[:5]
    data, offs = _file(recs, True)
    last = _epb(1_700_000_000_000_000, b"\x01\x02\x03\x04\x05", pad=False)
    fr = read_frames(data + last)
    assert len(fr) == 6 and fr.data(5) == b"\x01\x02\x03\x04\x05"
    assert fr.stats.damage_offset is None and "1 block without the padding" in fr.stats.warnings[0]
    # cut in the middle of that block: a cut file, said so
    fr = read_frames(data + last[:-3])
    assert len(fr) == 5 and fr.stats.skipped_records == 1


def _rounded_file(recs) -> tuple[bytes, list[int]]:
    """Padded blocks whose two length fields hold the unpadded length (break-it s51 fuzz #1)."""
    out, offs = [SHB, _idb(True)], []
    pos = sum(map(len, out))
    for t, p in recs:
        data = bytes(p)
        ts = round(t * 1e6)
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data
        n = 12 + len(body)
        blk = struct.pack("<II", 6, n) + body + b"\0" * (-len(body) % 4) + struct.pack("<I", n)
        offs.append(pos)
        out.append(blk)
        pos += len(blk)
    return b"".join(out), offs


def test_padded_blocks_with_unpadded_lengths_are_read_rounded_up():
    """A writer that pads each block but writes its length unpadded (both length fields, the
    trailing one at the padded end): Wireshark reads it by the length rounded up to 4, every
    packet; the reader stopped at the first such block as damage ("block length 99 is not a
    multiple of 4", the packet lost). Read likewise now, with one warning counting them, the
    same in chunks of any size."""
    recs = _records()
    padded, _ = _file(recs, True)
    data, offs = _rounded_file(recs)
    odd = _unpadded_offsets(recs, offs)
    assert len(data) == len(padded) and len(odd) > 20
    fr = read_frames(data)
    assert [fr.data(i) for i in range(len(fr))] == [bytes(p) for _, p in recs]
    assert fr.ts_ns.tolist() == read_frames(padded).ts_ns.tolist()
    st = fr.stats
    assert st.damage_offset is None and st.skipped_bytes == 0 and st.skipped_records == 0
    assert st.warnings == [f"<bytes>: {len(odd)} blocks whose block length is not a multiple of 4 though the block "
                           f"is padded to one (first at offset {odd[0]}) read by their length rounded up, as "
                           "Wireshark reads them: the blocks after them are well framed"]
    _same_in_chunks(data, fr, sizes=(64, 97, 333, 700, 1500, 4096))
