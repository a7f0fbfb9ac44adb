"""PII detection and redaction: typed spans for the personal data a customer-service
dataset or request log holds, and the text with those spans replaced by `[TYPE]` tags.

Each entity type is found by a candidate pattern and then *validated* by the rule that
makes it what it is, because precision matters as much as recall here (redacting every
order number makes a dataset useless): phone numbers are parsed and checked against
Google's numbering plans (`phonenumbers`), card numbers must pass Luhn and carry a known
issuer prefix, IBANs must pass mod-97 at their country's length and US SSNs must avoid the
never-issued ranges (`python-stdnum`), IP addresses must parse (`ipaddress`). Only the UK
National Insurance number is checked by hand (no maintained library has it): its prefix
letters follow HMRC's published rules. Dates, times, amounts, versions, order and
tracking numbers fail these checks and are left alone.

An optional NER model adds PERSON and LOCATION spans: `detect(text, ner=...)` takes a
Hugging Face token-classification model folder or id, or any callable returning spans.

`redact_for_log(text)` is what log lines and audit entries call: it never raises and
never loads a model.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

EMAIL = "EMAIL"
PHONE = "PHONE"
CARD = "CARD"
IBAN = "IBAN"
IP = "IP"
SSN = "SSN"
NINO = "NINO"
PERSON = "PERSON"
LOCATION = "LOCATION"

PATTERN_TYPES = (EMAIL, PHONE, CARD, IBAN, IP, SSN, NINO)
NER_TYPES = (PERSON, LOCATION)
# when two detectors claim overlapping text, the more specific (checksummed) one wins
_PRIORITY = {EMAIL: 0, IBAN: 1, CARD: 2, SSN: 3, NINO: 4, IP: 5, PHONE: 6, PERSON: 7, LOCATION: 8}


@dataclass(frozen=True)
class Span:
    """One detected entity: `text[start:end]` is a value of `type`; `score` in (0, 1]."""

    start: int
    end: int
    type: str
    score: float

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


NerModel = Callable[[str], list[Span]]

# --- candidates and validators -------------------------------------------------------

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# 13-19 digits, optionally grouped by single spaces or dashes
_CARD_RE = re.compile(r"(?<![\w.,/-])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![\w/-]|[.,]\d|[ -]\d)")
# issuer prefixes (IIN ranges) of the card networks a support desk sees
_CARD_PREFIX = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa 13/16/19
    r"|5[1-5]\d{14}|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|6(?:011|5\d\d|4[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|3(?:0[0-5]|[689]\d)\d{11,16}"  # Diners Club
    r"|(?:5[06-9]|6\d)\d{11,17})$"  # Maestro and other 5/6 prefixes
)

_IBAN_RE = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}(?![\w-])")

_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_VERSION_BEFORE = re.compile(r"(?:\bv|version|release|build|firmware|app|ver\.?)\s*$", re.IGNORECASE)

_SSN_RE = re.compile(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-])")
_SSN_BARE_RE = re.compile(r"(?<![\w-])\d{9}(?![\w-])")
_SSN_CONTEXT = re.compile(r"(?:ssn|social security|tax id|taxpayer)[^.\n]{0,25}$", re.IGNORECASE)

# HMRC: first letter not D F I Q U V; second not D F I O Q U V; some pairs never issued
_NINO_RE = re.compile(
    r"(?<![\w-])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])(?![\w-])"
)
_NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}

_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU")
_PHONE_CONTEXT = re.compile(
    r"(?:phone|call|tel|mobile|cell|whatsapp|text me|sms|ring|reach me)\W{0,3}[^.\n]{0,15}$", re.I
)


def _luhn(digits: str) -> bool:
    from stdnum import luhn

    return bool(luhn.is_valid(digits))


def _emails(text: str) -> Iterable[Span]:
    for m in _EMAIL_RE.finditer(text):
        yield Span(m.start(), m.end(), EMAIL, 0.99)


def _cards(text: str) -> Iterable[Span]:
    for m in _CARD_RE.finditer(text):
        raw = m.group()
        seps = set(re.sub(r"\d", "", raw))
        if len(seps) > 1:  # "1234-5678 9012" mixes separators: not a card as written
            continue
        digits = re.sub(r"\D", "", raw)
        if seps and any(len(g) < 4 for g in re.split(r"[ -]", raw)[:-1]):
            continue  # cards are printed in groups of 4 (Amex 4-6-5), never in pairs
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and _luhn(digits):
            yield Span(m.start(), m.end(), CARD, 0.98)


def _ibans(text: str) -> Iterable[Span]:
    from stdnum import iban

    for m in _IBAN_RE.finditer(text):
        raw = m.group()
        # the pattern may run on into a following code; take the longest valid prefix
        cuts = [i for i in range(len(raw), 14, -1) if i == len(raw) or raw[i] == " "]
        for cut in cuts:
            candidate = raw[:cut].rstrip()
            # ISO 13616 only (length for the country, mod-97); national check digits vary
            # by bank and country, and a real account number is PII whether or not its
            # bank's own scheme is known here
            if _iban_valid(iban, candidate):
                yield Span(m.start(), m.start() + len(candidate), IBAN, 0.99)
                break


def _iban_valid(iban: Any, candidate: str) -> bool:
    from stdnum.exceptions import ValidationError

    try:
        iban.validate(candidate, check_country=False)
    except ValidationError:
        return False
    return True


def _ips(text: str) -> Iterable[Span]:
    for m in _IPV4_RE.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
            continue  # "version 1.2.3.4", "v10.0.0.1"
        parts = m.group().split(".")
        if any(len(p) > 1 and p.startswith("0") for p in parts):
            continue  # "01.02.2024.1"-style dotted numbers are not written as addresses
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Span(m.start(), m.end(), IP, 0.95)
    for m in _IPV6_RE.finditer(text):
        value = m.group()
        if value.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", value):
            continue
        if re.fullmatch(r"\d{1,2}:\d{2}(?::\d{2})?", value):
            continue  # a time of day
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield Span(m.start(), m.end(), IP, 0.95)


def _ssns(text: str) -> Iterable[Span]:
    from stdnum.us import ssn

    for m in _SSN_RE.finditer(text):
        if ssn.is_valid(m.group(1) + m.group(3) + m.group(4)):
            yield Span(m.start(), m.end(), SSN, 0.9)
    for m in _SSN_BARE_RE.finditer(text):  # nine bare digits only where the text says SSN
        if _SSN_CONTEXT.search(text[max(0, m.start() - 40) : m.start()]) and ssn.is_valid(m.group()):
            yield Span(m.start(), m.end(), SSN, 0.85)


def _ninos(text: str) -> Iterable[Span]:
    for m in _NINO_RE.finditer(text):
        if m.group(1) not in _NINO_BAD_PREFIX:
            yield Span(m.start(), m.end(), NINO, 0.9)


def _phones(text: str) -> Iterable[Span]:
    import phonenumbers

    seen: set[tuple[int, int]] = set()
    for region in _PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            key = (match.start, match.end)
            if key in seen:
                continue
            seen.add(key)
            raw = match.raw_string
            before, after = text[max(0, match.start - 2) : match.start], text[match.end : match.end + 2]
            if re.search(r"\w[-/#]?$|\d[ .,-]$|[$£€]$", before) or re.match(r"^[-/]?\w|^[ .-]\d", after):
                continue  # part of a longer code: "ORD-2023-479358", a tracking number
            if re.fullmatch(r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}", raw):
                continue  # grouped like a card number (one failing Luhn: valid ones are cards)
            if re.fullmatch(r"\d+(?:\.\d+){3}", raw):
                continue  # dotted like an IPv4 address (an invalid one: valid ones are IPs)
            formatted = raw.startswith("+") or bool(re.search(r"\d[\s().-]+\d|^\(", raw))
            # a bare run of digits is an order or account number unless the text says phone
            context = _PHONE_CONTEXT.search(text[max(0, match.start - 30) : match.start])
            if not formatted and not context:
                continue
            if re.fullmatch(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}", raw.strip()):
                continue  # a date
            yield Span(match.start, match.end, PHONE, 0.9)


_DETECTORS: dict[str, Callable[[str], Iterable[Span]]] = {
    EMAIL: _emails,
    IBAN: _ibans,
    CARD: _cards,
    SSN: _ssns,
    NINO: _ninos,
    IP: _ips,
    PHONE: _phones,
}


def _resolve(spans: Iterable[Span]) -> list[Span]:
    """Keep non-overlapping spans, the higher-priority and then longer one winning."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (_PRIORITY[s.type], -(s.end - s.start), s.start)):
        if not any(span.overlaps(k) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


# --- the optional NER model ------------------------------------------------------------

_NER_LABELS = {"PER": PERSON, "PERSON": PERSON, "LOC": LOCATION, "LOCATION": LOCATION, "GPE": LOCATION}


@lru_cache(maxsize=4)
def hf_ner(model: str, min_score: float = 0.5) -> NerModel:
    """A Hugging Face token-classification model (folder or id) as an NER callable; its
    PER/LOC/GPE entity groups become PERSON/LOCATION spans, other groups are dropped."""
    from transformers import pipeline

    from llmos.core.errors import ModelError

    try:
        tagger = pipeline("token-classification", model=model, aggregation_strategy="simple", device="cpu")
    except (OSError, ValueError) as exc:
        raise ModelError(f"NER model {model!r} cannot be loaded as token classification: {exc}") from exc

    def run(text: str) -> list[Span]:
        found = []
        for ent in tagger(text):
            kind = _NER_LABELS.get(str(ent["entity_group"]).upper())
            if kind is not None and float(ent["score"]) >= min_score and ent["end"] > ent["start"]:
                found.append(Span(int(ent["start"]), int(ent["end"]), kind, round(float(ent["score"]), 4)))
        return found

    return run


def _ner_callable(ner: str | NerModel | None) -> NerModel | None:
    if ner is None or callable(ner):
        return ner
    return hf_ner(str(ner))


# --- the public functions ----------------------------------------------------------------


def detect(text: str, *, types: Iterable[str] | None = None, ner: str | NerModel | None = None) -> list[Span]:
    """Typed, non-overlapping PII spans in `text`, in order. `types` limits the pattern
    types looked for; `ner` (a model folder/id or a callable) adds PERSON/LOCATION spans."""
    if not text:
        return []
    wanted = PATTERN_TYPES if types is None else tuple(types)
    spans: list[Span] = []
    for kind in wanted:
        if kind in _DETECTORS:
            spans.extend(_DETECTORS[kind](text))
    # nothing inside an IBAN-shaped code (valid or not) is a phone or card number
    codes = [Span(m.start(), m.end(), IBAN, 0) for m in _IBAN_RE.finditer(text)]
    if codes:
        spans = [s for s in spans if s.type not in (PHONE, CARD) or not any(s.overlaps(c) for c in codes)]
    model = _ner_callable(ner)
    if model is not None:
        spans.extend(model(text))
    return _resolve(spans)


def redact(text: str, *, spans: list[Span] | None = None, ner: str | NerModel | None = None) -> str:
    """`text` with each PII span replaced by its tag: `[EMAIL]`, `[PHONE]`, `[CARD]`, ..."""
    spans = detect(text, ner=ner) if spans is None else spans
    pieces, last = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        pieces.append(text[last : span.start])
        pieces.append(f"[{span.type}]")
        last = span.end
    pieces.append(text[last:])
    return "".join(pieces)


def redact_for_log(value: Any) -> str:
    """What a log line or audit entry may hold of `value`: its text with pattern PII
    redacted. Never raises and never loads a model, so it is safe on any logging path."""
    text = value if isinstance(value, str) else str(value)
    try:
        return redact(text)
    except Exception:  # a log line must never fail; drop the value rather than leak it
        return "[REDACTED]"


# --- datasets --------------------------------------------------------------------------

PII_MODES = ("off", "report", "redact", "reject")


@dataclass
class ColumnReport:
    """PII found in one text column: spans per type and rows holding any."""

    column: str
    counts: dict[str, int]
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "rows": self.rows, "counts": self.counts}


def text_columns(frame: Any) -> list[str]:
    """The columns of a pandas frame that hold text (object or string dtype)."""
    import pandas as pd

    return [
        str(c)
        for c in frame.columns
        if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])
    ]


def scan_frame(
    frame: Any, *, redact_cells: bool = False, ner: str | NerModel | None = None
) -> tuple[list[ColumnReport], Any]:
    """Count the PII of every text column; with `redact_cells`, also return a copy of the
    frame whose text cells are redacted (otherwise the frame itself)."""
    reports, out = [], frame.copy() if redact_cells else frame
    for column in text_columns(frame):
        counts: dict[str, int] = {}
        rows = 0
        cells = frame[column].tolist()
        for i, value in enumerate(cells):
            spans = detect(value, ner=ner) if isinstance(value, str) else []
            if spans:
                rows += 1
                for s in spans:
                    counts[s.type] = counts.get(s.type, 0) + 1
                if redact_cells:
                    cells[i] = redact(value, spans=spans)
        if redact_cells:
            out[column] = cells
        reports.append(ColumnReport(column, dict(sorted(counts.items())), rows))
    return reports, out


def first_pii(frame: Any, ner: str | NerModel | None = None) -> tuple[int, str, str] | None:
    """(row index, column, type) of the first cell, row by row, holding PII."""
    columns = text_columns(frame)
    for i, row in enumerate(frame[columns].itertuples(index=False, name=None)):
        for column, value in zip(columns, row):
            spans = detect(value, ner=ner) if isinstance(value, str) else []
            if spans:
                return i, column, spans[0].type
    return None


def import_screen(mode: str, ner: str | NerModel | None = None) -> Any:
    """The screen `store.datasets.import_dataset` runs on an import's rows for
    `--pii MODE`: report counts, redact the text cells, or reject the file at its first
    PII cell. Returns None for `off`. Its report lands in `ImportResult.screen_report`."""
    from llmos.core.errors import DataError, UsageError
    from llmos.store.datasets import ImportScreen

    if mode not in PII_MODES:
        raise UsageError(f"--pii {mode!r} is not a mode; use one of {', '.join(PII_MODES)}")
    if mode == "off":
        return None

    def apply(frame: Any, path: Any) -> Any:
        if mode == "reject":
            hit = first_pii(frame, ner)
            if hit is not None:
                row, column, kind = hit
                raise DataError(
                    f"{path}: row {row + 1}, column {column!r} holds PII ({kind}); "
                    "remove it or import with --pii redact"
                )
            screen.report = []
            return frame
        reports, out = scan_frame(frame, redact_cells=mode == "redact", ner=ner)
        screen.report = reports
        return out

    screen = ImportScreen(f"pii-{mode}", apply)
    return screen
