"""Prompt-injection screening by heuristics (OWASP LLM01).

Each rule is a family of patterns seen in real attacks: overriding the instructions
("ignore previous instructions"), role-play jailbreaks ("you are DAN", "developer
mode"), extracting the system prompt, forging chat-template delimiters, and smuggling
text through encodings (base64 blobs, invisible characters). A matched rule adds its
weight; the score is 1 - prod(1 - weight), so two medium signals make a strong one. The
rules are a first line, cheap enough for every request; a classifier deployment of the
user's can give a second opinion (`Guard`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_I = re.IGNORECASE


@dataclass(frozen=True)
class Rule:
    name: str
    weight: float
    patterns: tuple[re.Pattern[str], ...]


def _rule(name: str, weight: float, *patterns: str) -> Rule:
    return Rule(name, weight, tuple(re.compile(p, _I) for p in patterns))


_PRIOR = r"(?:previous|prior|above|earlier|preceding|initial|original|system|all|any|your)"
_ORDERS = r"(?:instructions?|prompts?|rules|directions|guidelines|directives|constraints|context)"

RULES: tuple[Rule, ...] = (
    _rule(
        "instruction_override",
        0.8,
        rf"\b(?:ignore|disregard|forget|skip|bypass|override|drop)\b[^.\n]{{0,30}}\b{_PRIOR}\b[^.\n]{{0,20}}\b{_ORDERS}",
        rf"\bdo not (?:follow|obey)\b[^.\n]{{0,30}}\b{_ORDERS}",
        r"\bnew (?:instructions|rules|system prompt)\s*:",
        r"\bfrom now on,? you (?:will|must|are)\b[^.\n]{0,40}\b(?:no|without|ignore|unfiltered|uncensored)",
    ),
    _rule(
        "roleplay_jailbreak",
        0.7,
        r"\b(?:DAN|do anything now|developer mode|jailbr[eo]ak(?:en)?|god mode|evil (?:mode|assistant))\b",
        r"\b(?:pretend|imagine|act as if|act like|roleplay|role-play|you are now)\b[^.\n]{0,60}"
        r"\b(?:no|without|free of|unbound by|not bound by)\b[^.\n]{0,20}"
        r"\b(?:rules|restrictions|limits|filters|guidelines|policies|censorship|ethics)",
        r"\b(?:unfiltered|uncensored|unrestricted)\b[^.\n]{0,20}\b(?:ai|assistant|model|mode|version)\b",
        r"\bstay in character\b",
    ),
    _rule(
        "system_prompt_extraction",
        0.7,
        r"\b(?:reveal|show|print|repeat|output|display|leak|tell me|give me|what (?:is|are|was|were))\b"
        r"[^.\n]{0,20}\b(?:your|the)\b[^.\n]{0,15}\b(?:system|initial|hidden|original|secret|developer)\s+"
        r"(?:prompt|instructions?|message|rules)",
        r"\brepeat (?:the|all|every)? ?(?:words|text|everything|lines?) (?:above|before)\b",
        r"\bwhat (?:were|was) you told\b",
        r"\bbeginning of (?:your|the) (?:conversation|prompt|context)\b",
    ),
    _rule(
        "delimiter_injection",
        0.6,
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>",
        r"\[/?INST\]|<</?SYS>>|</s>",
        r"(?:^|\n)\s*#{2,}\s*(?:system|instruction|new instructions)\b",
        r"(?:^|\n)\s*(?:system|assistant)\s*:\s*\S",
        r"\bend of (?:the )?(?:prompt|instructions|system message|user input)\b",
    ),
    _rule(
        "encoding_trick",
        0.5,
        r"\b(?:decode|decrypt|translate|interpret)\b[^.\n]{0,30}\b(?:base64|rot13|rot-13|hex|binary|morse)\b",
        "[\u200b\u200c\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]",
        r"(?:\\x[0-9a-f]{2}){8,}",
    ),
    # a long base64 run alone is weak evidence (ids and hashes look alike): below the threshold
    _rule(
        "encoded_payload",
        0.35,
        r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])[A-Za-z0-9+/]{40,}={0,2}",
    ),
)
THRESHOLD = 0.5


@dataclass(frozen=True)
class Screening:
    score: float
    rules: tuple[str, ...] = field(default=())
    verdict: bool = False  # a classifier's verdict flags whatever the score

    @property
    def flagged(self) -> bool:
        return self.verdict or self.score >= THRESHOLD


def screen(text: str) -> Screening:
    """The heuristic score in [0, 1] of `text` and the names of the rules it matched."""
    miss = 1.0
    hits: list[str] = []
    for rule in RULES:
        if any(p.search(text) for p in rule.patterns):
            hits.append(rule.name)
            miss *= 1.0 - rule.weight
    return Screening(round(1.0 - miss, 4), tuple(hits))
