"""docs/scoring.md lists the columns `openice model score` adds to its input, in order, and no other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from openice.scoring.loaded_model import Scorer

DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"


def test_documented_batch_columns_are_the_output(scorer: Scorer, credit: Any) -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("writes the input columns followed by these", 1)[1].split("\n\n", 2)[1]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)
    assert list(scorer.score_frame(credit.frame.head(20)).columns) == documented
