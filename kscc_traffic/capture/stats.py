"""What a capture reader read and what it skipped."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..text import escape_terminal

#: original (wire) lengths at or above this (2**31 - 1, bytes) are a damaged length field,
#: clamped to it (the int32 ``wirelen`` column; Wireshark's ``frame.len`` too), not a snaplen cut
WIRELEN_CLAMP = (1 << 31) - 1
#: original lengths at or above this (128 MiB) and below :data:`WIRELEN_CLAMP` are a damaged
#: length field too, kept as read: Wireshark's pcap reader takes "any file claiming 128MB in a
#: single packet" as probably corrupt when it guesses a file's format (no link layer, GSO or
#: jumbogram comes near); such a record is not counted as cut by the snaplen, and a line counts it
WIRELEN_DAMAGED = 1 << 27


def wirelen_damaged_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` records whose original length is
    :data:`WIRELEN_DAMAGED` or more but below :data:`WIRELEN_CLAMP` (both engines)."""
    return (f"{k} record{'s' if k != 1 else ''} with an original length of {WIRELEN_DAMAGED} bytes "
            "or more (a damaged length field: kept as read, not counted as cut by the snaplen)")


#: IP packets from which one timestamp for all of them is warned about (ReadStats.warn_frozen_clock)
FROZEN_CLOCK_PACKETS = 100
#: TCP flows seen in one direction only (:meth:`ReadStats.warn_one_way`) from which a capture
#: none of whose TCP flows has packets both ways is said to hold one direction only
ONE_WAY_MIN_FLOWS = 2


@dataclass
class ReadStats:
    """Counters for one capture file.

    All counts are numbers of records (frames) unless named ``*_bytes``; byte counts are bytes of
    the file: ``bytes_read`` those read as headers and records, ``skipped_bytes`` those skipped as
    damage (a damaged region read past, where whole records start again, and everything after a
    place where reading stopped); together the file's size once it is read. ``damage_offset``
    is the file offset (bytes) where reading stopped because of damage, ``None`` when the file
    was read to its end (damage read past included). ``warnings`` holds one-line human-readable
    messages, each naming what was skipped (records, bytes, offset). ``cut_frames``: records
    whose captured length is more than 4 bytes short of their length on the wire (cut by the
    snaplen; 4 bytes short is a frame check sequence left out), ``cut_caplen``: the longest
    captured length among them (bytes; about the snaplen). A record whose original length is
    :data:`WIRELEN_DAMAGED` or more (a damaged length field; from :data:`WIRELEN_CLAMP` on
    clamped to it by the reader, and by Wireshark) is not counted as cut: no frame is that long,
    its bytes are likely all there.
    """

    records: int = 0
    bytes_read: int = 0
    #: a compressed file read by :func:`~kscc_traffic.capture.files.iter_frames`: the bytes of
    #: the file itself (compressed) read so far, for a progress bar against its size; else None
    file_bytes_read: int | None = None
    ip_packets: int = 0
    non_ip: int = 0
    malformed: int = 0
    skipped_records: int = 0
    skipped_bytes: int = 0
    damage_offset: int | None = None
    unsupported_linktypes: dict[int, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cut_frames: int = 0
    cut_caplen: int = 0
    #: records whose captured length is 1 to 4 bytes short of their original length: taken as a
    #: frame check sequence left off, not counted in ``cut_frames`` (:meth:`warn_short_packets`
    #: says so when IP packets are cut in a capture without snaplen cuts)
    fcs_short: int = 0
    #: records that hold no byte at all (captured length 0: a writer's or a filter's doing, e.g.
    #: pcapng Enhanced Packet Blocks of length 0; not a snaplen cut, not counted in ``cut_frames``)
    empty_records: int = 0
    #: non-IP frames (also in ``non_ip``) whose own warning line already says why they were not
    #: read: encrypted or compressed (802.11 Protected, MACsec, PPP CCP/ECP: MPPE), Van Jacobson
    #: TCP; when they are all of the non-IP frames, :meth:`warn_no_ip` does not blame the interface
    sealed: int = 0
    #: epoch ns until which the capture ran by its own account (a pcapng Interface Statistics
    #: Block's ``isb_endtime``, else its timestamp: written when the capture stopped), None when
    #: the file does not say; may be later than its last packet
    end_ns: int | None = None
    #: epoch ns of the latest frame with a time, IP or not (an ARP request or a frame of a link
    #: type not decoded shows the capture still ran after the last IP packet); None: no frame
    last_frame_ns: int | None = None
    #: epoch ns of the earliest frame with a time after 1970 (records stamped 0, a NIC without
    #: hardware time, are left out), IP or not, among the first records read that have one (the
    #: built-in reader: its first chunk); None: no such frame
    first_frame_ns: int | None = None
    #: the capture's first candidate SYNs for pairing with another capture's (the two sides of a
    #: NAT given apart: :meth:`kscc_traffic.natpairs.NatWatch.sample`,
    #: :func:`kscc_traffic.natpairs.across_captures`); None: none, or not looked for
    nat_syns: dict | None = None
    #: the file (the last of a file set) ends inside a record or block (cut mid-record: a copy
    #: stopped, a capture killed): that record, skipped, came after every packet read
    #: (:func:`kscc_traffic.classify.classify` says an unanswered attempt at the end may have had
    #: its answer there)
    cut_end: bool = False

    def warn(self, message: str) -> None:
        """Record one warning line (control characters shown as ``\\xNN`` text, so the line stays
        one line and cannot drive a terminal: name any file with :func:`kscc_traffic.text.name_text`)."""
        self.warnings.append(escape_terminal(message))

    def stream_problem(self) -> str | None:
        """The warning line about the compressed stream a capture was read from (cut short,
        corrupt, followed by other bytes: the one that ends ``; capture data ends at offset N``,
        N in the decompressed data), None when there is none: what an error about the capture's
        first record adds, its offset being one of the decompressed data (break-it s56 link #10)."""
        return next((w for w in self.warnings if "; capture data ends at offset " in w), None)

    def count_cut(self, caplen: int, wirelen: int) -> None:
        """Count one record that kept ``caplen`` of its ``wirelen`` bytes when the snaplen cut it
        (more than a 4-byte frame check sequence short, and ``wirelen`` below
        :data:`WIRELEN_DAMAGED`; else nothing). A record of ``caplen`` 0 is counted as an empty
        record (``empty_records``), not as cut."""
        if caplen <= 0:
            self.empty_records += 1
        elif wirelen - caplen > 4 and wirelen < WIRELEN_DAMAGED:
            self.cut_frames += 1
            self.cut_caplen = max(self.cut_caplen, caplen)
        elif wirelen > caplen:
            self.fcs_short += 1

    def warn_cut(self, name: str) -> None:
        """The one warning line about the records cut by the snaplen (``cut_frames``), if any."""
        k = self.cut_frames
        if k:
            self.warn(f"{name}: {_of_frames(k, self.records)} cut by the "
                      f"snaplen (at most {self.cut_caplen} bytes kept of a frame): TLS, HTTP and DNS "
                      "checks see only the bytes kept (column payload_cut)")

    def warn_empty_records(self, name: str) -> None:
        """The one warning line about the records that hold no byte (``empty_records``), if any."""
        k = self.empty_records
        if k:
            self.warn(f"{name}: {_of_frames(k, self.records)} {'empty records' if k != 1 else 'an empty record'} "
                      "(captured length 0: no byte of the packet kept by the tool that wrote the file; not a snaplen "
                      f"cut): nothing in {'them' if k != 1 else 'it'} to analyse")

    def warn_empty(self, name: str) -> None:
        """The one warning line about a capture that holds no packet at all (a header-only pcap,
        a pcapng without packet blocks: a capture filter that matched nothing, a capture stopped
        at once), if so; nothing when records were skipped as damaged or packet blocks as
        malformed (``malformed``: that warning says it; there were packets, none readable)."""
        if (not self.records and not self.skipped_records and not self.malformed
                and self.damage_offset is None):
            self.warn(f"{name + ': ' if name else ''}no packets in the capture: nothing to analyse "
                      "(a capture filter that matched nothing, or a capture stopped at once?)")

    def warn_no_ip(self, name: str) -> None:
        """The one warning line about a capture whose frames hold no IP packet at all (a capture on
        the wrong interface, a link type written wrong in the header), if so. When reading stopped
        early at damage (``damage_offset``), the frames read before it are no sign of the wrong
        interface (the damage line says what was not read): the line says so, without that hint."""
        if self.non_ip and not self.ip_packets:
            k = self.records
            bad = f", {self.malformed} malformed" if self.malformed else ""
            frames = f"{k} frame{'s' if k != 1 else ''}"
            if self.damage_offset is not None:
                self.warn(f"{name}: no IP packet among the {frames} read before the damage at offset "
                          f"{self.damage_offset} ({self.non_ip} non-IP{bad}): nothing to analyse")
                return
            sealed = min(self.sealed, self.non_ip)
            if sealed == self.non_ip:       # (each non-IP frame's line says why: not the interface)
                self.warn(f"{name}: no readable IP packet among its {frames} ({self.non_ip} encrypted or "
                          f"compressed, as said above{bad}): nothing to analyse")
                return
            why = f", {sealed} of them encrypted or compressed" if sealed else ""
            self.warn(f"{name}: no IP packet among its {frames} ({self.non_ip} non-IP{why}{bad}): "
                      "nothing to analyse (a capture on the wrong interface, or of another link type?)")

    def warn_short_packets(self, name: str, short: int) -> None:
        """The one warning line about ``short`` IP packets whose captured bytes stop before the
        end their IP length gives, in a capture whose frames do not say they were cut (original
        length = captured length: pktmon's 128-byte default, a tool that truncates without
        saying so, or a bad IP length), if so; the snaplen warning (:meth:`warn_cut`) covers
        frames that say it."""
        if short and not self.cut_frames:
            k = self.fcs_short
            claim = ("claim to be whole" if not k else
                     f"claim to be whole or at most 4 bytes short ({k:,} frame{'s' if k != 1 else ''}: taken as an FCS "
                     "left off, not a snaplen cut)")
            self.warn(f"{name}: {short} IP packet{'s' if short != 1 else ''} captured shorter than {'their' if short != 1 else 'its'} "
                      f"IP length says, though the frames {claim} (cut by the capturing tool without saying so"
                      f"{', a snaplen just 4 bytes short of the packets' if k else ''}, pktmon's 128-byte default?, or a "
                      "bad IP length): TLS, HTTP and DNS checks see only the bytes kept (column payload_cut)")

    def warn_lone_stamps(self, name: str, k: int) -> None:
        """The one warning line about ``k`` records whose stamp cannot be right among the records
        around them, which agree (:mod:`kscc_traffic.stamps`), analysed at the time of the
        record before them, if any."""
        if k:
            self.warn(f"{name}: {k} record{'s' if k != 1 else ''} stamped where no packet of {'their' if k != 1 else 'its'} "
                      f"place can be (more than 60 s ahead of the records around {'them' if k != 1 else 'it'}, which "
                      "agree, a day behind them, or before 2000: a damaged timestamp, or a NIC that stamped 0): "
                      f"analysed at the time of the record before {'them' if k != 1 else 'it'}, in file order, as "
                      "Wireshark shows them")

    def warn_steps_back(self, name: str, k: int, step_ns: int) -> None:
        """The one warning line about ``k`` places where a record is stamped more than ``step_ns``
        (ns) before the one before it, if any."""
        if k:
            self.warn(f"{name}: the timestamps go back by more than {step_ns / 1e9:g} s at {k} "
                      f"place{'s' if k != 1 else ''} (the capturing host's clock stepped back, a damaged "
                      "timestamp, captures appended one after the other, or several interfaces or TAP ports "
                      "written in batches, each in its own time order): packets are analysed in time "
                      "order, so a flow across such a step may show an odd history, or split")

    def warn_jumps_forward(self, name: str, k: int, jump_ns: int, largest_ns: int) -> None:
        """The one warning line about ``k`` places where a record is stamped more than ``jump_ns``
        (ns) after every record before it (``largest_ns``: the largest such jump), if any."""
        if k:
            self.warn(f"{name}: the timestamps jump forward by more than {_span(jump_ns)} at {k} "
                      f"place{'s' if k != 1 else ''} (the largest: {_span(largest_ns)}; the capturing host's "
                      "clock was set forward, a suspended machine, a damaged timestamp, or nothing captured "
                      "for that long): a connection across such a jump is split in two flows (the idle "
                      "timeout passed), the second seen from its middle")

    def warn_frozen_clock(self, name: str, packets: int, span_ns: int) -> None:
        """The one warning line when ``packets`` (at least :data:`FROZEN_CLOCK_PACKETS`) IP packets
        all have one timestamp (``span_ns``, last minus first, is 0): a writer that stamped none
        (text2pcap without a time, a tool's or a fuzzer's output). (A few packets within one tick
        of a coarse clock are no sign of it.)"""
        if packets >= FROZEN_CLOCK_PACKETS and span_ns == 0:
            self.warn(f"{name}: all {packets:,} packets have the same timestamp: durations are 0 and the "
                      "time rules (3 s without an answer, idle timeouts, the 5 s close delay) cannot apply; "
                      "no flow ends by time, so a large capture's flows are all held in memory")

    def warn_one_way(self, name: str, tcp: int, both: int, one_way: int) -> None:
        """The one warning line about a capture of ``tcp`` TCP flows, ``both`` of them with
        packets both ways and ``one_way`` with only one side's packets, which acknowledge the
        other side's (``acked_unseen``: the capture missed them), when none had both and at least
        :data:`ONE_WAY_MIN_FLOWS` were seen one way: a mirror or tap that sees one direction, or
        asymmetric routing (then an attempt without an answer here may have had one)."""
        if both == 0 and one_way >= ONE_WAY_MIN_FLOWS:
            self.warn(f"{name}: every TCP flow ({tcp:,}) shows one direction only, {one_way:,} of them "
                      "acknowledging packets of the other side that are not in the capture: a mirror port or tap "
                      "that sees one direction, or asymmetric routing? Attempts without an answer here may have "
                      "had one (a DNS query's answer too); capture both directions (on the agent itself) to judge them")

    def merge(self, other: "ReadStats") -> "ReadStats":
        """Add another file's counters into this one (in place) and return self."""
        for name in ("records", "bytes_read", "ip_packets", "non_ip", "malformed",
                     "skipped_records", "skipped_bytes", "cut_frames", "empty_records", "sealed", "fcs_short"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cut_caplen = max(self.cut_caplen, other.cut_caplen)
        for lt, n in other.unsupported_linktypes.items():
            self.unsupported_linktypes[lt] = self.unsupported_linktypes.get(lt, 0) + n
        self.warnings.extend(other.warnings)
        if self.damage_offset is None:
            self.damage_offset = other.damage_offset
        self.cut_end = other.cut_end        # (the later file's end is the capture's)
        for name in ("end_ns", "last_frame_ns"):
            theirs, mine = getattr(other, name), getattr(self, name)
            if theirs is not None:
                setattr(self, name, theirs if mine is None else max(mine, theirs))
        if other.first_frame_ns is not None:
            mine = self.first_frame_ns
            self.first_frame_ns = other.first_frame_ns if mine is None else min(mine, other.first_frame_ns)
        return self

    def saw_frame(self, ns: int) -> None:
        """Count a frame time (epoch ns) into ``last_frame_ns``, and into ``first_frame_ns`` when
        after 1970 and none is set yet or it is earlier."""
        if ns > 0 and (self.first_frame_ns is None or ns < self.first_frame_ns):
            self.first_frame_ns = ns
        if self.last_frame_ns is None or ns > self.last_frame_ns:
            self.last_frame_ns = ns


def _of_frames(k: int, n: int) -> str:
    """``k`` of ``n`` frames as the subject of a warning, with its verb: "2 of the 6 frames
    were", "all 3 frames were", "the only frame was", "1 of the 6 frames was"."""
    if k == n:
        return "the only frame was" if n == 1 else f"all {n} frames were"
    return f"{k} of the {n} frames {'were' if k != 1 else 'was'}"


def _span(ns: int) -> str:
    """A duration of ``ns`` nanoseconds in words: "1 day", "3650 days", "5.5 h"."""
    days = ns / 86_400e9
    if days >= 1:
        return f"{days:.0f} day{'s' if round(days) != 1 else ''}" if days >= 10 or days == int(days) \
            else f"{days:.1f} days"
    return f"{ns / 3600e9:.1f} h"
