"""Hand-off signals read from the message itself: an explicit request for a person, and
strong negative sentiment.

Hand-written on purpose: no sentiment model ships in any installed package, and these
checks must run before (and without) any model. The lexicon is small and errs toward
strong words (one mild word never hands off); an assistant may name a sentiment
deployment instead (a classifier with a negative label), which then takes precedence.
"""

from __future__ import annotations

import re

HUMAN = re.compile(
    r"\b(?:(?:speak|talk|chat)\s+(?:to|with)\s+(?:a|an|some|the)?\s*(?:real\s+)?"
    r"(?:human|person|someone|somebody|agent|representative|operator|manager)"
    r"|(?:real|live|actual)\s+(?:human|person|agent)"
    r"|human\s+(?:agent|being|please)"
    r"|(?:get|give|connect|transfer)\s+me\s+(?:to\s+)?(?:a|an)?\s*(?:human|person|agent|representative|operator)"
    r"|customer\s+service\s+(?:agent|representative)"
    r"|^\s*(?:agent|human|representative|operator)\s*[.!?]*\s*$)",
    re.IGNORECASE,
)

# weights of strongly negative words; a message's score is their sum, plus intensity
NEGATIVE = {
    "terrible": 2.0, "awful": 2.0, "horrible": 2.0, "worst": 2.0, "useless": 2.0, "pathetic": 2.0,
    "disgusting": 2.0, "furious": 2.5, "outraged": 2.5, "unacceptable": 2.0, "ridiculous": 1.5,
    "scam": 2.5, "fraud": 1.5, "hate": 2.0, "angry": 1.5, "disgrace": 2.0, "incompetent": 2.0,
    "joke": 1.0, "rubbish": 1.5, "garbage": 1.5, "sick": 1.0, "fed": 1.0, "stupid": 1.5,
    "never": 0.5, "again": 0.3, "lawyer": 2.0, "sue": 2.0, "complaint": 1.0, "disappointed": 1.0,
}  # fmt: skip
WORD = re.compile(r"[a-z']+")
STRONG_NEGATIVE = 3.0  # the score at which a message hands off


def wants_human(text: str) -> bool:
    """Does the message ask for a person?"""
    return HUMAN.search(text) is not None


def negativity(text: str) -> float:
    """A lexicon score of how negative the message is (0: none; >= 3: strong): the weights
    of its negative words, plus 1 for shouting (mostly capitals, or '!!')."""
    words = WORD.findall(text.lower())
    score = sum(NEGATIVE.get(w, 0.0) for w in words)
    letters = [c for c in text if c.isalpha()]
    if score and (
        (len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.6) or "!!" in text
    ):
        score += 1.0
    return round(score, 2)
