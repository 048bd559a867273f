"""The JSON Lines writer tells a text cell of a NUL from an empty one (session 28: the writer's
factorizing compared with the column's first cell as a numpy string, which drops trailing NULs, so
``"\\x00"`` and ``""`` were one value; found by test_report_fast's generated tables)."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from kscc_traffic.report import write_jsonl


@pytest.mark.parametrize("cells", [["\x00", ""], ["", "\x00"], ["a\x00", "a", "a\x00\x00"], ["\x00"] * 3 + [""]])
def test_nul_ended_text_is_not_the_empty_text(cells):
    buf = io.StringIO()
    write_jsonl(pd.DataFrame({"server_name": pd.Series(cells, dtype=object)}), buf)
    assert [json.loads(line)["server_name"] for line in buf.getvalue().splitlines()] == cells
