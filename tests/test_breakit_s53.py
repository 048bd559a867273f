"""Session 53: fixes of leftovers noted in session 52 and of this session's break-it passes."""
import pytest

from kscc_traffic.classify import _close_wait_text
from kscc_traffic.report import dns_reason_texts

DROP = "the query got no answer: a firewall drops DNS"
MISMATCH = "responses came, but none matched its query (by transaction ID)"
FRAGS = "the answer came back as IP fragments"


@pytest.mark.parametrize("kinds, said", [
    ({"no_answer": 3}, [DROP]),
    ({"no_answer": 3, "mismatch_id": 3}, [MISMATCH]),
    ({"no_answer": 3, "mismatch_id": 1}, [DROP, MISMATCH]),
    ({"no_answer": 3, "fragments": 3}, [FRAGS]),
    ({"no_answer": 3, "fragments": 2}, [DROP, FRAGS]),
    ({"no_answer": 3, "mismatch_id": 1, "fragments": 2}, [MISMATCH, FRAGS]),
    ({"no_answer": 4, "mismatch_id": 1, "fragments": 2}, [DROP, MISMATCH, FRAGS]),
])
def test_dns_no_answer_text_names_each_cause_once_in_order(kinds, said):
    """The HTML report's reason for unanswered DNS queries: the drop, responses the client
    drops and fragments never all arriving, joined by '; or ', the drop left out when the other
    two explain every unanswered query (session 52 recovered one sentence by splitting another)."""
    text = dns_reason_texts(["no_answer"], kinds=kinds)["no_answer"]
    parts = text.split("; or ")
    assert len(parts) == len(said), text
    for part, start in zip(parts, said):
        assert part.startswith(start), (part, start)


@pytest.mark.parametrize("wait, text", [(0.0009, "0.001"), (0.0002, "less than 0.001"), (0.004, "0.004"),
                                        (0.0051, "0.01"), (0.57, "0.57"), (1.0, "1.00"), (0.0, "less than 0.001")])
def test_a_close_within_5_ms_of_the_client_hello_is_not_printed_as_zero(wait, text):
    """Session 52 (v6 pass #2): a transparent proxy's reset 0.9 ms after the ClientHello read
    "0.00 s after the ClientHello", hiding that it came far sooner than the server's round trip."""
    assert _close_wait_text(wait) == text
