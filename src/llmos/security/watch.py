"""The server watching its own traffic (F17 self-defence).

`FailureLimiter`: failed authentications are counted per source address and per token
prefix over a sliding minute. Past `limit` failures an address (or prefix) is refused
with 429 and Retry-After *before* its token is looked up, and the audit log gets one
`auth.flood` event for the burst instead of one `auth.fail` per request, so a flood of
bad tokens neither reaches the token table nor grows the log.

`TrafficWatch`: per token, the distinct datasets and models read in the last minute; a
token that reads `reads_per_minute` of them (20) raises an alert through the monitoring
alert channel (a `monitor_alerts` row, listed by `llmos alerts` and `/v1/alerts`,
logged as a warning, POSTed to `llmos serve --alert-webhook`) and an audit event, once
per token per minute.

`TrafficAnomalies`: per token and per project, requests, error answers and bytes sent
in each minute, against a floor and a multiple of the key's own usual minute (an
exponentially weighted mean of its past minutes). A key that crosses its threshold
starts an episode and raises one alert (the same channel, check `traffic.requests`,
`traffic.errors` or `traffic.bytes_out`); the episode ends with the first minute back
under the threshold, and only a later crossing alerts again. Anomalous minutes are not
learnt as usual, so a burst does not hide the next one. Simpler than the opinion
monitor's detectors (`apps.watch.detect`, a layer above, which scores hourly series):
a server must decide within the minute, from a few counters per key.

All three keep their counts in the server process on purpose. Counting failures in the
database would turn a flood of bad requests into a flood of database writes, which is
the attack itself; in memory a replica refuses the flood at the cost of a dictionary
update. With N replicas behind a balancer an address gets at most N x `limit` token
checks a minute, still a few hundred against 10,000 attempts. The daily request quotas,
which must hold exactly across replicas, are in the database (`Guard`, `ops.projects`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("llmos.security.watch")
WINDOW_S = 60.0


class FailureLimiter:
    """Keys are `address:A` and `prefix:P`. A prefix that authenticated lately (`good`)
    passes an address's block (a valid client behind the attacker's NAT is still served),
    and its failures count against the address only: prefixes are no secret, so counting
    them would let anyone lock a real token out by sending wrong ones with its prefix."""

    def __init__(self, limit: int = 20, window_s: float = WINDOW_S, remember: int = 100_000) -> None:
        self.limit, self.window_s, self.remember = limit, window_s, remember
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._blocked: dict[str, float] = {}  # key -> until (monotonic)
        self._refusals: dict[str, int] = {}  # key -> requests refused in its current burst
        self._pending: dict[str, int] = {}  # address key -> token checks in flight
        self._good: OrderedDict[str, None] = OrderedDict()
        self.refused = 0  # requests refused without a token check

    def succeeded(self, prefix_key: str) -> None:
        with self._lock:
            self._good[prefix_key] = None
            self._good.move_to_end(prefix_key)
            if len(self._good) > self.remember:
                self._good.popitem(last=False)

    def keys(self, address_key: str, prefix_key: str) -> tuple[str, ...]:
        """The keys a request is judged by."""
        if prefix_key and prefix_key in self._good:
            return (prefix_key,)
        return (address_key, prefix_key)

    def _trim(self, key: str, now: float) -> deque[float]:
        found = self._failures[key]
        while found and found[0] <= now - self.window_s:
            found.popleft()
        return found

    def blocked(self, address_key: str, prefix_key: str) -> float | None:
        """Seconds to wait when the request's keys are in a burst, else None."""
        keys = self.keys(address_key, prefix_key)
        now = time.monotonic()
        with self._lock:
            waits = [(until - now, k) for k in keys if k and (until := self._blocked.get(k, 0.0)) > now]
            if waits:
                self.refused += 1
                wait, key = max(waits)
                self._refusals[key] = self._refusals.get(key, 0) + 1
                return wait
            for key in keys:
                # an address with `limit` token checks in flight, counted as failures until
                # they end: a flood over many connections at once cannot send a first wave
                # of hundreds past the count (a prefix that authenticated is not judged so)
                pending = self._pending.get(key, 0) if key.startswith("address:") else 0
                if pending and pending + len(self._trim(key, now)) >= self.limit:
                    self.refused += 1
                    return 1.0
        return None

    def checking(self, address_key: str, prefix_key: str) -> tuple[str, ...]:
        """Note a token check starting; pass what it returns to `checked` when it ends."""
        keys = tuple(k for k in self.keys(address_key, prefix_key) if k.startswith("address:"))
        with self._lock:
            for key in keys:
                self._pending[key] = self._pending.get(key, 0) + 1
        return keys

    def checked(self, keys: tuple[str, ...]) -> None:
        with self._lock:
            for key in keys:
                left = self._pending.get(key, 0) - 1
                if left > 0:
                    self._pending[key] = left
                else:
                    self._pending.pop(key, None)

    def persistent(self, address_key: str, prefix_key: str) -> bool:
        """Whether one of the request's keys has been refused more than `limit` times in
        its burst: a client that ignores Retry-After (the HTTP layer holds its answers)."""
        keys = self.keys(address_key, prefix_key)
        return any(self._refusals.get(k, 0) > self.limit for k in keys if k)

    def failed(self, address_key: str, prefix_key: str) -> str | None:
        """Count one failure; the key whose burst this failure starts (audit it once), else None."""
        keys = (address_key,) if prefix_key in self._good else (address_key, prefix_key)
        now = time.monotonic()
        started = None
        with self._lock:
            for key in keys:
                if not key:
                    continue
                found = self._trim(key, now)
                found.append(now)
                if len(found) >= self.limit and self._blocked.get(key, 0.0) <= now:
                    self._blocked[key] = found[0] + self.window_s
                    self._refusals.pop(key, None)
                    started = started or key
        return started


class TrafficWatch:
    def __init__(self, reads_per_minute: int = 20, window_s: float = WINDOW_S) -> None:
        self.reads_per_minute, self.window_s = reads_per_minute, window_s
        self._lock = threading.Lock()
        self._reads: dict[str, deque[tuple[float, str]]] = defaultdict(deque)
        self._alerted: dict[str, float] = {}

    def observe(self, token: str, resource: str) -> int | None:
        """Note that `token` read `resource`; the distinct count when it just crossed the
        threshold (alert once per window), else None."""
        now = time.monotonic()
        with self._lock:
            reads = self._reads[token]
            reads.append((now, resource))
            while reads and reads[0][0] <= now - self.window_s:
                reads.popleft()
            distinct = len({r for _, r in reads})
            if distinct >= self.reads_per_minute and self._alerted.get(token, 0.0) <= now - self.window_s:
                self._alerted[token] = now
                return distinct
        return None


def _save_and_post(store: Any, alert: Any, webhook: str | None) -> None:
    """Record a new alert; POST it to the webhook, as `llmos monitor --webhook` does."""
    from llmos.store.alerts import save_alerts

    fresh = save_alerts(store, [alert])
    if fresh and webhook:
        alert = fresh[0]
        from llmos.adapt.monitor import post_webhook

        event = {
            "deployment": alert.deployment, "model": alert.model, "check": alert.check,
            "window_end": alert.window_end, "value": alert.value, "threshold": alert.threshold,
            "message": alert.message, "alert_id": alert.id,
        }  # fmt: skip
        post_webhook(webhook, {"alerts": [event]})


def raise_traffic_alert(
    store: Any, project: str, who: Any, distinct: int, limit: int, webhook: str | None = None
) -> None:
    """Record the alert (monitoring's channel) and an audit event; called off the event loop."""
    from llmos.store.audit import record
    from llmos.store.schema import MonitorAlert
    from llmos.store.scope import in_project

    message = (
        f"token {who.prefix}… of {who.user} read {distinct} different datasets or models within a "
        f"minute (threshold {limit}): check it, and suspend it with `llmos auth token suspend {who.prefix}`"
    )
    log.warning("llmos traffic alert: %s", message)
    with in_project(project):
        alert = MonitorAlert(
            deployment=f"token:{who.prefix}",
            model="",
            check="traffic",
            window_end=int(time.time() // WINDOW_S),
            value=float(distinct),
            threshold=float(limit),
            message=message,
        )
        _save_and_post(store, alert, webhook)
        record(store, "security.anomaly", f"token:{who.prefix}", "ok", {"reads": distinct, "user": who.user})


@dataclass(frozen=True)
class AnomalySettings:
    """When a minute of one token's or project's traffic is anomalous: over `floor` and
    over `factor` x its usual minute. Errors are answers with status >= 400 (a token
    probing names gets 404s, one hammering a quota 429s); they count only in a minute
    where they are also at least `error_share` of the key's requests."""

    requests_floor: float = 600.0  # 10 a second, all minute
    errors_floor: float = 60.0
    error_share: float = 0.5
    bytes_floor: float = 200 * 2**20
    factor: float = 10.0
    alpha: float = 0.3  # weight of the last complete minute in the usual minute
    remember: int = 10_000  # keys kept (least recently seen forgotten first)


METRICS = ("requests", "errors", "bytes_out")


@dataclass
class _Key:
    minute: int
    now: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METRICS, 0.0))
    usual: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METRICS, 0.0))
    episode: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Anomaly:
    key: str  # token:<prefix> or project:<name>
    metric: str
    value: float
    threshold: float
    usual: float
    minute: int


class TrafficAnomalies:
    def __init__(self, settings: AnomalySettings | None = None, clock: Any = time.time) -> None:
        self.settings = settings or AnomalySettings()
        self.clock = clock  # wall seconds; minutes are counted from it
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _Key] = OrderedDict()

    def threshold(self, state: _Key, metric: str) -> float:
        s = self.settings
        floor = {"requests": s.requests_floor, "errors": s.errors_floor, "bytes_out": s.bytes_floor}[metric]
        return max(floor, s.factor * state.usual[metric])

    def _roll(self, state: _Key, minute: int) -> None:
        """Close the minutes since `state.minute`: the usual minute learns them (idle ones
        as zeros), and an episode whose metric fell back under its threshold ends."""
        if minute <= state.minute:
            return
        a = self.settings.alpha
        for metric in METRICS:
            usual = state.usual[metric]
            if state.now[metric] <= self.threshold(state, metric):
                state.episode.discard(metric)
                usual = (1 - a) * usual + a * state.now[metric]
            # else: an anomalous minute teaches nothing, or a burst would hide the next one
            state.usual[metric] = usual * (1 - a) ** min(minute - state.minute - 1, 60)
            state.now[metric] = 0.0
        if minute - state.minute > 1:
            state.episode.clear()  # an idle minute in between: under every threshold
        state.minute = minute

    def observe(
        self, keys: tuple[str, ...], status: int, bytes_out: int, now: float | None = None
    ) -> list[Anomaly]:
        """Count one answered request against each key; the anomalies it starts (each
        metric of each key alerts once per episode)."""
        minute = int((self.clock() if now is None else now) // WINDOW_S)
        found = []
        with self._lock:
            for key in keys:
                state = self._keys.get(key)
                if state is None:
                    state = self._keys[key] = _Key(minute)
                    if len(self._keys) > self.settings.remember:
                        self._keys.popitem(last=False)
                self._keys.move_to_end(key)
                self._roll(state, minute)
                state.now["requests"] += 1
                state.now["errors"] += status >= 400
                state.now["bytes_out"] += bytes_out
                for metric in METRICS:
                    value, limit = state.now[metric], self.threshold(state, metric)
                    if metric == "errors" and value < self.settings.error_share * state.now["requests"]:
                        continue
                    if value > limit and metric not in state.episode:
                        state.episode.add(metric)
                        found.append(Anomaly(key, metric, value, limit, state.usual[metric], minute))
        return found


WHAT = {"requests": "requests", "errors": "error answers (status 400 or more)", "bytes_out": "bytes sent"}


def raise_anomaly_alert(
    store: Any, project: str, anomaly: Anomaly, user: str = "", webhook: str | None = None
) -> None:
    """One alert for one episode (monitoring's channel) and its audit event; off the event loop."""
    from llmos.store.audit import record
    from llmos.store.schema import MonitorAlert
    from llmos.store.scope import in_project

    kind, _, name = anomaly.key.partition(":")
    who = f"token {name}… of {user}" if kind == "token" else f"project {name}"
    todo = (
        f"check it, and suspend it with `llmos auth token suspend {name}`"
        if kind == "token"
        else f"check its tokens with `llmos audit list --project {name}`"
    )
    message = (
        f"{who} made {anomaly.value:.0f} {WHAT[anomaly.metric]} within a minute (threshold "
        f"{anomaly.threshold:.0f}; its usual minute {anomaly.usual:.0f}): {todo}"
    )
    log.warning("llmos traffic alert: %s", message)
    with in_project(project):
        alert = MonitorAlert(
            deployment=anomaly.key[:128],
            model="",
            check=f"traffic.{anomaly.metric}",
            window_end=anomaly.minute,
            value=float(anomaly.value),
            threshold=float(anomaly.threshold),
            message=message,
        )
        _save_and_post(store, alert, webhook)
        detail = {"metric": anomaly.metric, "value": anomaly.value, "threshold": anomaly.threshold}
        record(store, "security.anomaly", anomaly.key, "ok", detail)
