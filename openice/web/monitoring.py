"""The console's monitoring of the champion model: score stability (PSI against the training reference in its
package) by month of decision, and, where loans came of the decisions, bad rate and AUC by month against the training
figures; computed by `scoring.monitor.by_month` from one read of the decisions the champion scored."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openice.decisioning import queries as lending
from openice.scoring.monitor import ACT, WATCH, by_month, training_figures
from openice.scoring.package import read_json
from openice.storage.days import from_day
from openice.tenancy import Scope
from openice.web.i18n import Words

__all__ = ["Monitoring", "champion", "csv_text"]


@dataclass
class Monitoring:
    """The champion's months (as `by_month` gives them) and the training figures they are compared with."""

    months: list[dict[str, Any]]
    training: dict[str, Any] | None
    watch = WATCH
    act = ACT

    @property
    def labels(self) -> list[str]:
        return [m["group"] for m in self.months]

    @property
    def known(self) -> bool:
        """Whether any month has outcomes: the outcome charts are drawn only then."""
        return any(m["outcomes"] for m in self.months)

    def psi_series(self, t: Words) -> list[dict[str, Any]]:
        n = len(self.months)
        return [
            {"name": t("monitor.psi"), "values": [round(m["score_psi"], 4) for m in self.months]},
            {"name": t("monitor.watch_line", value=WATCH), "values": [WATCH] * n},
            {"name": t("monitor.act_line", value=ACT), "values": [ACT] * n},
        ]

    def outcome_series(self, t: Words, key: str, scale: float) -> list[dict[str, Any]]:
        """One outcome figure by month (None where unknown), and the training figure as a flat line."""
        values = [None if not m["outcomes"] or m["outcomes"][key] is None else m["outcomes"][key] * scale for m in self]
        series = [{"name": t(f"monitor.{key}"), "values": values}]
        if self.training:
            series.append({"name": t("monitor.training"), "values": [self.training[key] * scale] * len(values)})
        return series

    def __iter__(self) -> Any:
        return iter(self.months)


def champion(scope: Scope, registry: str, package_path: str, package_hash: str) -> Monitoring | None:
    """The champion's monitoring; None when its package holds no training reference (nothing to compare with)."""
    metadata_file = Path(registry) / package_path / "metadata.json"
    metadata = read_json(metadata_file) if metadata_file.exists() else {}
    if "reference" not in metadata:
        return None
    rows = lending.model_outcomes(scope, package_hash)
    months = [from_day(r.decided_day).isoformat()[:7] for r in rows]
    bad = [-1 if r.bad is None else int(r.bad) for r in rows]
    found = by_month(metadata, months, [r.score for r in rows], [r.pd for r in rows], bad)
    return Monitoring(found, training_figures(metadata))


def plain(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def csv_text(monitoring: Monitoring) -> str:
    """The page's monitoring table: figures as decimals, empty where a month has no outcome."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "decisions", "score_psi", "status", "loans_with_outcome", "bad_rate", "auc"])
    for m in monitoring:
        o = m["outcomes"] or {}
        writer.writerow(
            [m["group"], m["n"], plain(m["score_psi"]), m["score_status"], o.get("n", 0)]
            + [plain(o.get("bad_rate")), plain(o.get("auc"))]
        )
    return out.getvalue()
