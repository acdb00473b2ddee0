"""The PDF of a billing document, from an ``InvoiceDocument`` (``invoicing.documents``).

Pure: no Django, no ORM, no clock. ``render_pdf(document)`` gives the PDF's bytes;
``epc_qr_payload(document)`` the text of its EPC payment QR code (or ``None``).
"""

from .epc import epc_qr_payload
from .layout import render_pdf

__all__ = ["epc_qr_payload", "render_pdf"]
