"""Small documents of every supported kind, written for the knowledge tests."""

from __future__ import annotations

import io
from pathlib import Path

FAQ = [
    (
        "How do I reset my password?",
        "Open settings, choose reset password, and follow the e-mailed link.",
        "account",
    ),
    ("Where is my new card?", "A new card arrives by post within five working days.", "cards"),
    ("Can I close my account?", "Yes: write to support and the account is closed within a day.", "account"),
    (
        "What does a transfer abroad cost?",
        "Transfers abroad cost two euros; inside the euro area they are free.",
        "transfers",
    ),
]
GUIDE = """# Travel guide

Paying with your card abroad is free in the euro area. Outside it a fee of one percent applies.

Cash withdrawals abroad cost two euros each. Exchange rates are set daily at noon.
"""
PAGE = """<html><head><title>Opening hours</title><style>body { color: red }</style></head>
<body><h1>Branches</h1><p>Our branches open at nine and close at five.</p>
<script>var tracking = "nothing to index";</script><p>On Saturdays they close at noon.</p></body></html>"""


def write_faq(folder: Path, name: str = "faq.csv", rows: list[tuple[str, str, str]] = FAQ) -> Path:
    import pandas as pd

    path = folder / name
    pd.DataFrame(rows, columns=["question", "answer", "topic"]).to_csv(path, index=False)
    return path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def pdf_bytes(lines: list[str]) -> bytes:
    """A one-page PDF whose text is `lines` (Helvetica, one line each)."""
    content = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def blank_pdf_bytes() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
