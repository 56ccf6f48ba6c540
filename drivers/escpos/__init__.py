"""ESC/POS: the byte stream a POS sends a receipt printer, parsed and rendered.

``parse`` turns bytes into a :class:`Document`; ``render_text`` and
:func:`tillgate.drivers.escpos.png.render_png` show it; ``ReceiptStream`` splits a live
stream at its cuts for interception; ``tokenize`` is the lossless command-level view.
The PNG renderer lives in its own module so that importing this package does not load Pillow.
"""

from __future__ import annotations

from .commands import Token, tokenize
from .model import Document
from .parser import parse
from .stream import Boundary, Cut, Forward, Piece, ReceiptStream, passthrough
from .text import render_text

__all__ = [
    "Boundary",
    "Cut",
    "Document",
    "Forward",
    "Piece",
    "ReceiptStream",
    "Token",
    "parse",
    "passthrough",
    "render_text",
    "tokenize",
]
