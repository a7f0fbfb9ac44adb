"""The request guard of `llmos serve` (OWASP LLM01 and LLM10): per-token rate limits
and daily quotas (429 with Retry-After), and prompt-injection screening of the
generative routes (`/v1/chat/completions`, `/v1/completions`).

Screening runs the heuristics of `injection.py` and, when configured, a classifier
deployment of the user's through the server's own runtime as a second opinion. In
`flag` mode a flagged request is served and logged; in `block` mode it is refused with a
400 naming the rules. Logs hold the prompt through `redact_for_log` only.

The daily quota is counted in the workspace database (`usage_counters`, one atomic
upsert per request), so every replica over one database shares it and a restart keeps
it (F13/F17). The per-second token bucket stays in each server process: pacing is a
per-replica property (with N replicas a token gets at most N x the rate, which the
balancer spreads), and a database write per request only to pace it would cost more than
the request. A guard without a store (tests) counts the day in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from fastapi import Request

from llmos.core.errors import UsageError
from llmos.security import pii
from llmos.security.access import Access
from llmos.security.identities import Principal
from llmos.security.injection import THRESHOLD, Screening, screen
from llmos.serve.errors import RateLimited, RequestBlocked
from llmos.store.audit import record

log = logging.getLogger("llmos.security.guard")
GuardMode = Literal["block", "flag", "off"]
MODES = ("block", "flag", "off")


def redact_for_log(text: str, limit: int = 160) -> str:
    """The one place a request's text is prepared for a log line: PII redacted
    (`security.pii`), whitespace collapsed, cut to `limit` characters."""
    masked = " ".join(pii.redact_for_log(text).split())
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


@dataclass(frozen=True)
class GuardConfig:
    mode: GuardMode = "flag"
    rate_per_s: float | None = None  # sustained requests per second per token
    burst: int | None = None  # bucket size (default: max(1, rate))
    daily_requests: int | None = None  # requests per token per UTC day
    classifier: str | None = None  # a deployment that labels prompts
    classifier_labels: tuple[str, ...] = ("injection", "jailbreak")
    classifier_threshold: float = THRESHOLD  # its probability that counts as a flag

    def check(self) -> GuardConfig:
        if self.mode not in MODES:
            raise UsageError(f"--guard {self.mode!r}: use one of {', '.join(MODES)}")
        if self.rate_per_s is not None and self.rate_per_s <= 0:
            raise UsageError(f"--rate-limit must be above 0 requests per second, not {self.rate_per_s}")
        if self.burst is not None and self.burst < 1:
            raise UsageError(f"--burst must be at least 1, not {self.burst}")
        if self.daily_requests is not None and self.daily_requests < 1:
            raise UsageError(f"--daily-quota must be at least 1, not {self.daily_requests}")
        return self


class TokenBucket:
    """`rate` tokens a second up to `size`; `take` returns 0 or the seconds to wait."""

    def __init__(self, rate: float, size: float) -> None:
        self.rate, self.size = rate, size
        self.level, self.at = size, time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.level = min(self.size, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


class Guard:
    def __init__(self, config: GuardConfig, store: Any = None) -> None:
        self.config = config.check()
        self.store = store
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._days: dict[str, tuple[str, int]] = {}

    async def check(self, request: Request, who: Principal, access: Access) -> None:
        key = f"{who.token_id}:{who.prefix}"
        self._limit(key)
        if self.config.daily_requests is not None and self.store is not None:
            await asyncio.to_thread(self._daily_shared, key)
        if access.generative and self.config.mode != "off":
            await self._screen(request, who, access)

    # --- rate limits and quotas -----------------------------------------------------------

    def _limit(self, key: str) -> None:
        config = self.config
        with self._lock:
            if config.rate_per_s is not None:
                size = float(config.burst or max(1, round(config.rate_per_s)))
                bucket = self._buckets.setdefault(key, TokenBucket(config.rate_per_s, size))
                wait = bucket.take()
                if wait > 0:
                    raise RateLimited(
                        f"rate limit of {config.rate_per_s:g} requests/s for this token reached: "
                        f"retry in {wait:.1f} s",
                        wait,
                    )
            if config.daily_requests is not None and self.store is None:
                now = datetime.now(timezone.utc)
                today = now.date().isoformat()
                day, used = self._days.get(key, (today, 0))
                used = used if day == today else 0
                if used >= config.daily_requests:
                    midnight = datetime.combine(
                        now.date() + timedelta(days=1), datetime.min.time(), timezone.utc
                    )
                    raise RateLimited(
                        f"daily quota of {config.daily_requests} requests for this token used up: "
                        "it renews at 00:00 UTC",
                        (midnight - now).total_seconds(),
                    )
                self._days[key] = (today, used + 1)

    def _daily_shared(self, key: str) -> None:
        """The daily quota, counted in the database: the count after this request, over
        every replica; the request that finds it used up is refused (and not answered)."""
        from llmos.store.projects import add_usage, day_window

        limit = self.config.daily_requests
        assert limit is not None
        today, left = day_window()
        used = add_usage(self.store, f"token:{key}:requests", today)
        if used > limit:
            raise RateLimited(
                f"daily quota of {limit} requests for this token used up: it renews at 00:00 UTC",
                left,
            )

    # --- prompt-injection screening -------------------------------------------------------

    async def _screen(self, request: Request, who: Principal, access: Access) -> None:
        text = prompt_text(await request.body())
        if not text:
            return
        found = screen(text)
        if self.config.classifier:
            found = await self._second_opinion(request, text, found)
        request.state.screening = found
        if not found.flagged:
            return
        blocked = self.config.mode == "block"
        log.warning(
            "prompt-injection guard %s a request of %s to %s (score %.2f, rules %s): %s",
            "blocked" if blocked else "flagged", who.user, access.deployment, found.score,
            ",".join(found.rules), redact_for_log(text),
        )  # fmt: skip
        if self.store is not None:
            detail = {"deployment": access.deployment, "score": found.score, "rules": list(found.rules)}
            await asyncio.to_thread(
                record, self.store, "guard.injection", access.deployment or "-",
                "denied" if blocked else "ok", detail,
            )  # fmt: skip
        if blocked:
            raise RequestBlocked(
                f"request blocked by the prompt-injection guard (rules: {', '.join(found.rules)}; "
                f"score {found.score:.2f})"
            )

    async def _second_opinion(self, request: Request, text: str, found: Screening) -> Screening:
        name = self.config.classifier
        assert name is not None
        try:
            _, rows = await request.app.state.runtime.predict(name, [text])
        except Exception as exc:  # the guard must not take serving down with its classifier
            log.error("prompt-injection classifier %s failed: %s", name, exc)
            return found
        row = rows[0] if rows else {}
        label = str(row.get("label", ""))
        prob = float((row.get("probabilities") or {}).get(label, 1.0))
        if label in self.config.classifier_labels and prob >= self.config.classifier_threshold:
            score = round(1.0 - (1.0 - found.score) * (1.0 - prob), 4)
            return Screening(score, (*found.rules, f"classifier:{name}:{label}"), verdict=True)
        return found


def prompt_text(body: bytes) -> str:
    """The user-controlled text of a chat or completion request: the prompt, or every
    message's content except the system message (the application's own instructions)."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    if isinstance(data.get("prompt"), str):
        parts.append(data["prompt"])
    for message in data.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") == "system":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # OpenAI content parts
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)
