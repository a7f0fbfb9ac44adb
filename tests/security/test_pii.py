"""The PII detector on a labelled synthetic corpus with look-alikes, and its redaction."""

from __future__ import annotations

import pytest

from llmos.security.pii import Span, detect, redact, redact_for_log
from tests.security.pii_corpus import TYPES, generate


def score(lines):
    """Span-level precision/recall per type: a prediction is right when it overlaps a
    labelled span of the same type (each labelled span matched at most once)."""
    tp = {t: 0 for t in TYPES}
    fp = {t: 0 for t in TYPES}
    fn = {t: 0 for t in TYPES}
    misses = []
    for line in lines:
        found = [s for s in detect(line.text) if s.type in TYPES]
        used = set()
        for s in found:
            hit = next(
                (
                    j
                    for j, (a, b, t) in enumerate(line.entities)
                    if j not in used and t == s.type and s.start < b and a < s.end
                ),
                None,
            )
            if hit is None:
                fp[s.type] += 1
                misses.append(("FP", s.type, line.text[s.start : s.end], line.text))
            else:
                used.add(hit)
                tp[s.type] += 1
        for j, (a, b, t) in enumerate(line.entities):
            if j not in used:
                fn[t] += 1
                misses.append(("FN", t, line.text[a:b], line.text))
    return tp, fp, fn, misses


def test_precision_and_recall_on_the_labelled_corpus():
    lines = generate(600, seed=1234)
    assert len(lines) >= 500
    tp, fp, fn, misses = score(lines)
    print(f"\n{'type':6} {'spans':>6} {'prec':>6} {'recall':>6}")
    for t in TYPES:
        p = tp[t] / max(tp[t] + fp[t], 1)
        r = tp[t] / max(tp[t] + fn[t], 1)
        print(f"{t:6} {tp[t] + fn[t]:6d} {p:6.3f} {r:6.3f}")
        assert tp[t] + fn[t] >= 30, f"corpus has too few {t}"
        assert p >= 0.9 and r >= 0.9, (
            f"{t}: precision {p:.3f} recall {r:.3f}; {[m for m in misses if m[1] == t][:5]}"
        )
    TP, FP, FN = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision, recall = TP / (TP + FP), TP / (TP + FN)
    print(f"{'all':6} {TP + FN:6d} {precision:6.3f} {recall:6.3f}  ({len(lines)} lines)")
    for m in misses[:15]:
        print("  ", m)
    assert precision >= 0.95 and recall >= 0.95


@pytest.mark.parametrize(
    "text",
    [
        "order #48210395 shipped on 2024-03-15 at 10:30",
        "refund of $1,234.56 on 15/03/2024",
        "app version 10.2.0.1 crashed",
        "tracking 1Z999AA10123456784 and 9400 1000 0000 0000 0000 00",
        "card 4111 1111 1111 1112 was declined",  # fails Luhn
        "IBAN GB83 WEST 1234 5698 7654 32",  # fails mod-97
        "SSN 666-12-3456 and 000-12-3456 are never issued",
        "router at 256.10.1.1, MAC 00:1A:2B:3C:4D:5E",
        "ticket 2024-0311-7788, customer id 483920175",
    ],
)
def test_look_alikes_are_not_flagged(text):
    assert detect(text) == []


def test_each_type_is_found_and_redacted():
    text = (
        "I'm anna.smith@example.org, call +44 20 7946 0958; card 4111-1111-1111-1111, "
        "IBAN GB82 WEST 1234 5698 7654 32, from 192.168.1.20 and 2001:db8::1, "
        "SSN 123-45-6789, NINO AB 12 34 56 C."
    )
    types = [s.type for s in detect(text)]
    assert types == ["EMAIL", "PHONE", "CARD", "IBAN", "IP", "IP", "SSN", "NINO"]
    assert redact(text) == (
        "I'm [EMAIL], call [PHONE]; card [CARD], IBAN [IBAN], from [IP] and [IP], SSN [SSN], NINO [NINO]."
    )


def test_redact_for_log_takes_any_value():
    assert redact_for_log({"email": "bob@mail.com"}) == "{'email': '[EMAIL]'}"
    assert redact_for_log("") == ""


def test_a_ner_callable_adds_person_spans_and_loses_to_patterns_on_overlap():
    def ner(text: str) -> list[Span]:
        i = text.index("Anna Smith")
        return [Span(i, i + 10, "PERSON", 0.9), Span(5, 9, "LOCATION", 0.6)]  # "anna" of the email

    text = "mail anna@x.org from Anna Smith"
    assert redact(text, ner=ner) == "mail [EMAIL] from [PERSON]"


def test_a_hugging_face_token_classifier_adds_ner_spans(tiny_model_dir, tmp_path):
    """The NER adapter on a real (tiny) token-classification model whose head is biased to
    tag every word B-PER: words become PERSON spans, the email stays an EMAIL."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    config = BertConfig.from_pretrained(
        tiny_model_dir,
        num_labels=5,
        id2label=dict(enumerate(labels)),
        label2id={k: i for i, k in enumerate(labels)},
    )
    model = BertForTokenClassification.from_pretrained(tiny_model_dir, config=config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 9.0, 0.0, 0.0, 0.0]))
    model.save_pretrained(tmp_path / "ner")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "ner")

    text = "card arrived jo@x.org"
    spans = detect(text, ner=str(tmp_path / "ner"))
    assert [(text[s.start : s.end], s.type) for s in spans] == [
        ("card", "PERSON"),
        ("arrived", "PERSON"),
        ("jo@x.org", "EMAIL"),
    ]
