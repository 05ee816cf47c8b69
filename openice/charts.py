"""Charts in the reports (model report, monitoring report, quarterly report, investor report): matplotlib figures
drawn off-screen and embedded as base64 PNG, so a report is one self-contained file that never reaches the network;
`pdf_of` prints such a page with WeasyPrint allowed to fetch only `data:` URLs."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: modules that hold a report start without matplotlib
    from matplotlib.figure import Figure

__all__ = ["figure", "pdf_of", "png"]


def figure(width: float, height: float) -> Figure:
    """A figure of its own (not pyplot's global state, so reports may be drawn from several threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def png(fig: Figure, dpi: int = 100) -> str:
    """The figure as base64 PNG, for `<img src="data:image/png;base64,...">`."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def pdf_of(html: str) -> bytes:
    """WeasyPrint, allowed to read only the `data:` URLs the HTML embeds."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    pdf: bytes = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)).write_pdf()
    return pdf
