"""A labelled synthetic corpus of customer-service lines for the PII detector's tests.

Written independently of the detector: entity values are built from their published
formats (numbering plans, IIN ranges, ISO 13616 check digits, SSA and HMRC rules) in
several printed styles, and every line may carry look-alikes that are *not* PII (order,
ticket and tracking numbers, dates, times, amounts, versions, card numbers failing
Luhn, IBANs failing mod-97, invalid SSN ranges and addresses, MAC addresses).
"""

from __future__ import annotations

import ipaddress
import random
import string
from dataclasses import dataclass, field

TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "IP", "SSN", "NINO")


@dataclass
class Line:
    text: str
    entities: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, type)


# --- positives -------------------------------------------------------------------------

FIRST = ["anna", "james", "li", "maria", "olu", "sven", "priya", "tom", "fatima", "diego", "chloe", "kenji"]
LAST = ["smith", "okafor", "nguyen", "garcia", "muller", "rossi", "patel", "kowalski", "brown", "tanaka"]
DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "example.org",
    "mail.acme-corp.com",
    "web.de",
    "proton.me",
]


def email(r: random.Random) -> str:
    f, s = r.choice(FIRST), r.choice(LAST)
    local = r.choice(
        [f"{f}.{s}", f"{f}{s}{r.randint(1, 99)}", f"{f[0]}{s}", f"{f}_{s}", f"{f}+bank@", f"{s}.{f}"]
    )
    local = local.rstrip("@")
    value = f"{local}@{r.choice(DOMAINS)}"
    return value.upper() if r.random() < 0.1 else value


US_AREAS = ["212", "415", "312", "617", "206", "303", "512", "404", "718", "305", "702", "646"]


def phone(r: random.Random) -> str:
    d = lambda n: "".join(r.choice(string.digits) for _ in range(n))  # noqa: E731
    area, exch, line = r.choice(US_AREAS), str(r.randint(200, 999)), d(4)
    while exch in ("555", "911"):
        exch = str(r.randint(200, 999))
    kind = r.randrange(11)
    if kind == 0:
        return f"({area}) {exch}-{line}"
    if kind == 1:
        return f"{area}-{exch}-{line}"
    if kind == 2:
        return f"+1 {area} {exch} {line}"
    if kind == 3:
        return f"{area}.{exch}.{line}"
    if kind == 4:
        return f"+44 20 7{d(3)} {d(4)}"
    if kind == 5:
        return f"020 8{d(3)} {d(4)}"
    if kind == 6:
        return f"07{r.choice('3456789')}{d(2)} {d(6)}"
    if kind == 7:
        return f"+49 30 {d(8)}"
    if kind == 8:
        return f"+33 6 {r.randint(10, 89)} {d(2)} {d(2)} {d(2)}"
    if kind == 9:
        return f"+91 9{d(4)} {d(5)}"
    return f"+1-{area}-{exch}-{line}"


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n -= 9 if n > 9 else 0
        total += n
    return str((10 - total % 10) % 10)


def card_number(r: random.Random, valid: bool = True) -> str:
    prefix, length = r.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16), ("4", 13)]
    )
    body = prefix + "".join(r.choice(string.digits) for _ in range(length - len(prefix) - 1))
    check = luhn_digit(body)
    if not valid:
        check = str((int(check) + r.randint(1, 9)) % 10)
    digits = body + check
    style = r.randrange(3)
    if style == 0 or length == 13:
        return digits
    sep = " " if style == 1 else "-"
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


IBAN_FORMATS = {  # country: body pattern (a = letter, n = digit, c = alphanumeric)
    "GB": "aaaannnnnnnnnnnnnn",
    "DE": "nnnnnnnnnnnnnnnnnn",
    "FR": "nnnnnnnnnncccccccccccnn",
    "NL": "aaaannnnnnnnnn",
    "ES": "nnnnnnnnnnnnnnnnnnnn",
    "IT": "annnnnnnnnncccccccccccc",
    "BE": "nnnnnnnnnnnn",
}


def iban(r: random.Random, valid: bool = True) -> str:
    country = r.choice(list(IBAN_FORMATS))
    pools = {"a": string.ascii_uppercase, "n": string.digits, "c": string.ascii_uppercase + string.digits}
    body = "".join(r.choice(pools[p]) for p in IBAN_FORMATS[country])
    numeric = "".join(str(int(ch, 36)) for ch in body + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + r.randint(1, 90)) % 97 + 2
    value = f"{country}{check:02d}{body}"
    if r.random() < 0.6:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ip(r: random.Random) -> str:
    if r.random() < 0.65:
        first = r.choice([10, 172, 192, 81, 203, 8, 145, 62])
        return ".".join(str(x) for x in [first, r.randint(0, 255), r.randint(0, 255), r.randint(1, 254)])
    addr = ipaddress.IPv6Address(
        r.getrandbits(128) & ~((1 << 64) - 1) | r.randint(1, 0xFFFF)
        if r.random() < 0.5
        else r.getrandbits(128)
    )
    return addr.compressed if r.random() < 0.7 else addr.exploded


def ssn(r: random.Random, valid: bool = True) -> str:
    if valid:
        area = r.choice([r.randint(1, 665), r.randint(667, 899)])
        group, serial = r.randint(1, 99), r.randint(1, 9999)
    else:
        area, group, serial = r.choice(
            [
                (0, r.randint(1, 99), r.randint(1, 9999)),
                (666, r.randint(1, 99), r.randint(1, 9999)),
                (r.randint(900, 999), r.randint(1, 99), r.randint(1, 9999)),
                (r.randint(1, 665), 0, r.randint(1, 9999)),
            ]
        )
    sep = r.choice(["-", "-", " "])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"


def nino(r: random.Random) -> str:
    prefix = "GB"
    while prefix in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        prefix = r.choice(NINO_FIRST) + r.choice(NINO_SECOND)
    digits = "".join(r.choice(string.digits) for _ in range(6))
    suffix = r.choice("ABCD")
    if r.random() < 0.5:
        return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{prefix}{digits}{suffix}"


POSITIVE = {
    "EMAIL": email,
    "PHONE": phone,
    "CARD": card_number,
    "IBAN": iban,
    "IP": ip,
    "SSN": ssn,
    "NINO": nino,
}

TEMPLATES = {
    "EMAIL": [
        "please reply to {} instead of my work address",
        "my email changed, it is now {}",
        "send the statement to {} thanks",
        "Contact: {}",
    ],
    "PHONE": [
        "you can reach me on {} after 5pm",
        "my number is {}",
        "call me back at {} please",
        "Tel. {} (mobile)",
    ],
    "CARD": [
        "my card {} was charged twice",
        "the payment with card number {} failed",
        "I want to cancel card {}",
        "card ending... actually the full number is {}",
    ],
    "IBAN": [
        "please refund to IBAN {}",
        "transfer the money to {} by Friday",
        "my new account is {}",
        "IBAN: {}, account holder as before",
    ],
    "IP": [
        "I logged in from {} and got locked out",
        "the login attempt came from IP {}",
        "your site blocked {}",
        "my router is at {}",
    ],
    "SSN": [
        "my SSN is {} for the verification",
        "social security number {}",
        "they asked for {} on the form",
        "tax id {} please update it",
    ],
    "NINO": [
        "my national insurance number is {}",
        "NI number {} for the payslip",
        "employer needs {}",
        "NINO: {}",
    ],
}

# --- look-alike negatives ---------------------------------------------------------------


def negative(r: random.Random) -> str:
    d = lambda n: "".join(r.choice(string.digits) for _ in range(n))  # noqa: E731
    kind = r.randrange(22)
    return [
        lambda: f"order #{d(8)}",
        lambda: f"order number {d(10)}",
        lambda: f"ORD-{r.randint(2019, 2026)}-{d(6)}",
        lambda: f"on {r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        lambda: f"on {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(2019, 2026)}",
        lambda: f"at {r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
        lambda: f"at {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
        lambda: f"for ${r.randint(1, 99)},{d(3)}.{d(2)}",
        lambda: f"of £{r.randint(1, 999)}.{d(2)}",
        lambda: f"app version {r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 30)}",
        lambda: f"firmware {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)}",
        lambda: f"tracking 1Z{d(3)}{r.choice('AEWX')}{r.choice('AEWX')}{d(11)}",
        lambda: f"tracking number {d(4)} {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}",
        lambda: f"ticket {r.randint(2020, 2026)}-{d(4)}-{d(4)}",
        lambda: f"card {card_number(r, valid=False)}",
        lambda: f"account {iban(r, valid=False)}",
        lambda: f"reference {ssn(r, valid=False)}",
        lambda: f"address {r.randint(256, 999)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}",
        lambda: "device " + ":".join(f"{r.randint(0, 255):02X}" for _ in range(6)),
        lambda: f"customer id {d(9)}",
        lambda: f"invoice INV{d(7)}",
        lambda: f"{r.randint(2, 48)} x {r.randint(1, 99)}.{d(2)} EUR",
    ][kind]()


NEG_TEMPLATES = [
    "I placed {} and nothing arrived",
    "the charge appeared {} and again later",
    "it was refunded {} but not shown",
    "see {} in your system",
    "regarding {}, still waiting",
]
FILLERS = [
    "Hi,",
    "Hello team,",
    "Good morning.",
    "Thanks.",
    "This is urgent!",
    "",
    "As discussed,",
    "Kind regards.",
]


def generate(n: int = 600, seed: int = 1234) -> list[Line]:
    """`n` labelled lines: every type appears, about a third of lines carry no PII."""
    r = random.Random(seed)
    lines = []
    for i in range(n):
        parts: list[tuple[str, str | None]] = []
        filler = r.choice(FILLERS)
        if filler:
            parts.append((filler + " ", None))
        kinds = [TYPES[i % len(TYPES)]] if i % 3 != 2 else []
        if r.random() < 0.3:
            kinds.append(r.choice(TYPES))
        for kind in kinds:
            before, after = r.choice(TEMPLATES[kind]).split("{}")
            parts += [(before, None), (POSITIVE[kind](r), kind), (after + ". ", None)]
        for _ in range(r.choice([1, 1, 2]) if i % 3 == 2 else r.choice([0, 1])):
            before, after = r.choice(NEG_TEMPLATES).split("{}")
            parts.append((before + negative(r) + after + ". ", None))
        text, entities = "", []
        for chunk, kind in parts:
            if kind is not None:
                entities.append((len(text), len(text) + len(chunk), kind))
            text += chunk
        lines.append(Line(text.strip(), entities))
    return lines
