"""flows.isin_texts: the same bool array as np.isin, by pandas' hash table or a set."""
import numpy as np
import pytest

from kscc_traffic import flows

CASES = [
    (np.array(["S1", "x", None, float("nan"), "SF", "", "S1"], dtype=object), ("S1", "SF", "")),
    (np.array(["tls", "http", "other", ""], dtype=object), ("tls", "http")),
    (np.array(["a", "b"], dtype=object), ()),
    (np.array([], dtype=object), ("a",)),
    (np.array(["a", "b", "a"]), ("a",)),                     # a numpy text array: np.isin
    (np.array([1, 2, 3]), ("1",)),
    (np.array([[1], "S1", (2,)], dtype=object), ("S1",)),    # an unhashable cell: np.isin
    (np.array([1, "1", b"1"], dtype=object), ("1",)),
]


@pytest.mark.parametrize("hashed", [True, False])
@pytest.mark.parametrize("values, texts", CASES)
def test_isin_texts_is_np_isin(monkeypatch, hashed, values, texts):
    if not hashed:
        monkeypatch.setattr(flows, "_ISMEMBER", None)
    got = flows.isin_texts(values, texts)
    want = np.isin(values, list(texts))
    assert got.dtype == bool and got.shape == values.shape
    assert got.tolist() == want.tolist()


def test_isin_texts_values():
    got = flows.isin_texts(np.array(["SF", "S0", "REJ", "SF"], dtype=object), frozenset({"SF", "REJ"}))
    assert got.tolist() == [True, False, True, True]
