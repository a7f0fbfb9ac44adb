"""One turn of the customer-service assistant: what it answers, or why it hands off.

The order is what support desks do: first the signals that need no model (a guard flag,
set by `ops.support_ask`; an explicit request for a person; strong negative sentiment),
then the intent classifier (a top probability under the calibrated threshold, or an
out-of-scope label, means out of scope), then the knowledge collection: a FAQ entry that
matches closely is returned verbatim; otherwise a generation deployment answers from the
passages that clear the relevance threshold, citing them as [1], [2] ...; with nothing
relevant enough the session goes to a person rather than getting an invented answer.

Relevance of a retrieved passage, in [0, 1]: the reranker deployment's probability of
"relevant" when the assistant has one, else the dense cosine similarity the search
reports, else the share of the question's words the passage (a FAQ entry's question)
contains. Citations are built from the passages placed in the prompt: a marker naming no
such passage is removed, so every citation names a passage retrieved for this turn.

Built only on `llmos.ops` calls (deployments, predict, knowledge search, generate). Every
classifier (intents, sentiment, reranker) is asked through `ops.predict_deployment`, so it
answers the way its deployment serves it: the pinned version, and its `--optimize` copy
(ONNX Runtime or int8) when it was deployed with one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmos.apps.support.signals import negativity, wants_human
from llmos.spec.tasks import Rerank

WORD = re.compile(r"[a-z0-9']+")
CITE = re.compile(r"\[(\d{1,2})\]")
STOP = {
    "a",
    "an",
    "the",
    "i",
    "my",
    "me",
    "is",
    "are",
    "to",
    "do",
    "does",
    "of",
    "for",
    "in",
    "on",
    "it",
    "can",
    "how",
    "what",
    "why",
    "when",
    "and",
    "or",
    "be",
    "you",
    "your",
    "with",
    "has",
    "have",
    "was",
}


@dataclass
class Decision:
    action: str  # faq | generated | handoff
    answer: str
    reason: str | None = None  # why it handed off: guard, human-requested, negative-sentiment, ...
    detail: str = ""
    intent: str | None = None
    confidence: float | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)  # what was retrieved, with relevance


HANDOFF_ANSWER = "I'm passing you to a colleague who can help with this; they will reply here shortly."


def handoff(reason: str, detail: str, **found: Any) -> Decision:
    return Decision("handoff", HANDOFF_ANSWER, reason=reason, detail=detail, **found)


def lexical_match(question: str, text: str) -> float:
    """The share of the question's content words found in `text` (0 to 1)."""
    words = {w for w in WORD.findall(question.lower()) if w not in STOP}
    if not words:
        return 0.0
    found = set(WORD.findall(text.lower()))
    return len(words & found) / len(words)


def _model_of(ctx: Any, deployment: str) -> str:
    from llmos.ops.deployments import deployment as get_deployment

    return get_deployment(ctx, deployment).model


def _intent(ctx: Any, config: Any, message: str) -> tuple[str, float]:
    from llmos.ops.predict import predict_deployment

    [row] = predict_deployment(ctx, config.intents, [message]).predictions
    return str(row["label"]), float(row["score"])


def _negative_by_model(ctx: Any, config: Any, message: str) -> float:
    from llmos.ops.predict import predict_deployment

    [row] = predict_deployment(ctx, config.sentiment, [message]).predictions
    return float(row.get("probabilities", {}).get(config.negative_label, 0.0))


def _passages(ctx: Any, config: Any, message: str) -> list[dict[str, Any]]:
    """The collection's top hits for `message`, each with its `relevance` (best first)."""
    from llmos.ops.knowledge import search_collection

    found = search_collection(ctx, config.collection, message, k=config.k, mode=config.search_mode)
    passages: list[dict[str, Any]] = []
    for hit in found.hits:
        meta = hit.metadata or {}
        passages.append(
            {
                "id": hit.id,
                "source": hit.source,
                "title": hit.title,
                "text": hit.text,
                "question": meta.get("question"),
                "answer": meta.get("answer"),
                "score": hit.score,
                "dense_score": hit.dense_score,
            }
        )
    if not passages:
        return []
    if config.reranker:
        _rerank(ctx, config, message, passages)
    else:
        for p in passages:
            lexical = lexical_match(message, p["question"] or p["text"])
            p["relevance"] = round(max(p["dense_score"] or 0.0, lexical), 4)
    passages.sort(key=lambda p: -p["relevance"])
    return passages


def _rerank(ctx: Any, config: Any, message: str, passages: list[dict[str, Any]]) -> None:
    from llmos.ops.models import model as model_info
    from llmos.ops.predict import predict_deployment

    spec = model_info(ctx, _model_of(ctx, config.reranker)).spec
    first, second = spec["inputs"][0]["name"], spec["inputs"][0]["pair"]
    rows = [{first: message, second: p["question"] or p["text"]} for p in passages]
    # every passage in one call: the deployment scores them as one batch
    scored = predict_deployment(ctx, config.reranker, rows).predictions
    positive = Rerank.positive_label(list(scored[0]["probabilities"]))
    for p, row in zip(passages, scored):
        p["relevance"] = round(float(row["probabilities"][positive]), 4)


def _generate(
    ctx: Any, config: Any, message: str, history: list[dict[str, Any]], passages: list[dict[str, Any]]
) -> Decision:
    from llmos.ops.llm import generate, sampling_params

    context = "\n".join(f"[{i}] {p['text']}" for i, p in enumerate(passages, start=1))
    earlier = "".join(f"{t['role']}: {t['content']}\n" for t in history[-6:])
    prompt = (
        f"{earlier}Answer the customer's question using only these passages, citing them as [1], [2].\n"
        f"{context}\n\nQuestion: {message}\nAnswer:"
    )
    params = sampling_params(config.max_new_tokens, 0.0, 1.0, [], None)
    [completion] = generate(
        ctx, _model_of(ctx, config.generator), [prompt], params, system=config.system_prompt
    )
    text, citations = cite(completion.text, passages)
    return Decision("generated", text, citations=citations)


def cite(text: str, passages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The answer with its markers checked, and its citations: the passages it cites by
    [n], or, when it cites none, every passage it was given. A marker naming no passage
    of the prompt is removed, so every citation is a passage retrieved for this turn."""
    cited = [int(n) for n in CITE.findall(text) if 1 <= int(n) <= len(passages)]
    text = CITE.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= len(passages) else "", text)
    used = list(dict.fromkeys(cited)) or list(range(1, len(passages) + 1))
    return re.sub(r"[ \t]{2,}", " ", text).strip(), [_citation(passages[n - 1], n) for n in used]


def _citation(passage: dict[str, Any], marker: int) -> dict[str, Any]:
    return {"marker": marker, "id": passage["id"], "source": passage["source"], "title": passage["title"]}


def answer(
    ctx: Any, config: Any, history: list[dict[str, Any]], message: str, flagged: str | None
) -> Decision:
    """What the assistant `config` (ops.support.AssistantConfig) does with `message`, after
    the turns in `history`; `flagged` is the request guard's reason, when it flagged it."""
    if flagged:
        return handoff("guard", flagged)
    if wants_human(message):
        return handoff("human-requested", "the customer asked for a person")
    if config.sentiment:
        negative = _negative_by_model(ctx, config, message)
        if negative >= config.sentiment_threshold:
            return handoff("negative-sentiment", f"negative with probability {negative:.2f}")
    else:
        score = negativity(message)
        if score >= config.negativity_threshold:
            return handoff(
                "negative-sentiment", f"negativity {score} (hand-off at {config.negativity_threshold})"
            )
    intent, confidence = None, None
    if config.intents:
        intent, confidence = _intent(ctx, config, message)
        found: dict[str, Any] = {"intent": intent, "confidence": round(confidence, 4)}
        if intent in config.out_of_scope_labels:
            return handoff("out-of-scope", f"intent {intent!r} is out of scope", **found)
        if confidence < config.confidence_threshold:
            return handoff(
                "out-of-scope",
                f"intent {intent!r} at confidence {confidence:.2f}, under {config.confidence_threshold}",
                **found,
            )
    found = {"intent": intent, "confidence": None if confidence is None else round(confidence, 4)}
    if not config.collection:
        return handoff("low-confidence", "no knowledge collection to answer from", **found)
    passages = _passages(ctx, config, message)
    found["passages"] = passages
    best = passages[0] if passages else None
    if best is not None and best["answer"] and best["relevance"] >= config.faq_threshold:
        return Decision("faq", str(best["answer"]), citations=[_citation(best, 1)], **found)
    relevant = [p for p in passages if p["relevance"] >= config.relevance_threshold][
        : config.context_passages
    ]
    if not relevant:
        top = f"{best['relevance']:.2f}" if best else "none"
        return handoff(
            "low-confidence",
            f"no passage relevant enough (best {top}, needs {config.relevance_threshold})",
            **found,
        )
    if not config.generator:
        return handoff("low-confidence", "no FAQ entry matches closely and no generation deployment", **found)
    made = _generate(ctx, config, message, history, relevant)
    made.intent, made.confidence, made.passages = found["intent"], found["confidence"], passages
    return made
