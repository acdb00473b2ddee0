"""The typeface of the documents.

reportlab's built-in Helvetica only draws Latin-1 (plus the euro sign): "Łódź" or "Dvořák"
would print as black boxes. So the documents use DejaVu Sans (Latin, Greek, Cyrillic, Hebrew,
Arabic...) when the system has it (Debian/Ubuntu ``fonts-dejavu-core``, Fedora, Alpine and Arch
packages), embedded as a subset, and fall back to Helvetica otherwise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

_FAMILY = "InvoiceSans"
_DIRECTORIES = (
    "/usr/share/fonts/truetype/dejavu",     # Debian, Ubuntu
    "/usr/share/fonts/dejavu-sans-fonts",   # Fedora, RHEL
    "/usr/share/fonts/dejavu",              # Alpine
    "/usr/share/fonts/TTF",                 # Arch
    "/usr/local/share/fonts/dejavu",        # FreeBSD
    "/Library/Fonts",                       # macOS with DejaVu installed
)


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    unicode: bool  # False: the Helvetica fallback (Latin-1 only)


@functools.cache
def document_fonts() -> Fonts:
    """The registered fonts, registered once per process."""
    for directory in _DIRECTORIES:
        regular = Path(directory) / "DejaVuSans.ttf"
        bold = Path(directory) / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            try:
                pdfmetrics.registerFont(TTFont(_FAMILY, str(regular)))
                pdfmetrics.registerFont(TTFont(f"{_FAMILY}-Bold", str(bold)))
            except Exception:  # noqa: S112 - a broken font file: try the next one
                continue
            # so that <b> in Paragraph markup picks the bold face
            addMapping(_FAMILY, 0, 0, _FAMILY)
            addMapping(_FAMILY, 1, 0, f"{_FAMILY}-Bold")
            addMapping(_FAMILY, 0, 1, _FAMILY)
            addMapping(_FAMILY, 1, 1, f"{_FAMILY}-Bold")
            return Fonts(_FAMILY, f"{_FAMILY}-Bold", unicode=True)
    return Fonts("Helvetica", "Helvetica-Bold", unicode=False)
