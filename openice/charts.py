"""Charts in the reports (model report, monitoring report, quarterly report, investor report, stress grid):
matplotlib figures drawn off-screen and embedded as base64 PNG, so a report is one self-contained file that never
reaches the network; `pdf_of` prints such a page with WeasyPrint allowed to fetch only `data:` URLs. The printed
reports share one page head and style (`report_templates/report.html`, through `report_environment`), and write
Chinese with WenQuanYi Micro Hei wherever DejaVu Sans has no glyph, in the page and in the charts alike."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

if TYPE_CHECKING:  # imported where used: modules that hold a report start without matplotlib
    from matplotlib.figure import Figure

__all__ = ["FONTS", "figure", "page_numbers", "pdf_of", "png", "report_environment"]

# Latin from DejaVu Sans, Chinese from WenQuanYi Micro Hei (Debian: fonts-wqy-microhei), in a page and a chart alike.
FONTS = ("DejaVu Sans", "WenQuanYi Micro Hei")
REPORT_TEMPLATES = Path(__file__).parent / "report_templates"


def report_environment(templates: Path) -> Environment:
    """Jinja over a stage's report templates and the shared `report.html` they extend, with the fonts and the page
    numbers' words as globals (`page_numbers` may be given per render, for a report in another language)."""
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(templates), FileSystemLoader(REPORT_TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
    )
    env.globals["fonts"] = ", ".join(f'"{name}"' for name in FONTS) + ", sans-serif"
    env.globals["page_numbers"] = page_numbers("Page {page} of {pages}")
    return env


def page_numbers(words: str) -> str:
    """A sentence with `{page}` and `{pages}` as a CSS `content` value: "Page {page} of {pages}" gives
    `"Page " counter(page) " of " counter(pages)`."""
    parts = re.split(r"\{(pages?)\}", words)
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(f"counter({part})")
        elif part:
            out.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(out)


def figure(width: float, height: float) -> Figure:
    """A figure of its own (not pyplot's global state, so reports may be drawn from several threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def png(fig: Figure, dpi: int = 100) -> str:
    """The figure as base64 PNG, for `<img src="data:image/png;base64,...">`, its words in `FONTS`."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_fontfamily(list(FONTS))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def pdf_of(html: str) -> bytes:
    """WeasyPrint, allowed to read only the `data:` URLs the HTML embeds."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    pdf: bytes = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)).write_pdf()
    return pdf
