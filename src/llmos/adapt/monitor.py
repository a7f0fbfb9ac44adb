"""Monitoring of a deployment's traffic: input drift, prediction stability, feedback accuracy.

The requests a classifier deployment served (logged by the server, `store.feedback`)
are cut into consecutive windows of `window` requests, counted from the first one the
current model version answered. Each window is compared with that version's own data,
taken from its lineage in the store:

- input drift: the window's texts against a sample of the training texts, embedded by
  a sentence encoder (MiniLM by default) and compared by maximum mean discrepancy (RBF
  kernel, median bandwidth) with a permutation-test p-value; a cross-validated logistic
  domain classifier's AUC (scikit-learn) is reported beside it (0.5: indistinguishable);
- stability: the predicted-label distribution against the model's predictions on its
  held-out rows (population stability index for the size of the shift, and a
  chi-square p-value so that a small window's noise alone does not alarm), and the
  confidences against the held-out confidences (two-sample Kolmogorov-Smirnov, scipy);
  held-out rather than training rows because a model is over-confident on what it saw;
- accuracy on the window's feedback labels.

A full window that crosses a threshold raises an alert once: a WARNING log line, a row
in `monitor_alerts`, and a JSON POST to an optional webhook (short timeout; a failure
is logged, never raised). MMD's permutation test is written here (vectorised over all
permutations at once) because the libraries that ship one (alibi-detect, torchdrift)
would bring a second deep-learning stack for thirty lines of numpy.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from llmos.core.errors import UsageError
from llmos.core.progress import Progress, SilentProgress
from llmos.store.db import Store

log = logging.getLogger("llmos.monitor")

CHECKS = ("drift", "labels", "confidence", "accuracy")


@dataclass
class Thresholds:
    """When an alert fires (per full window)."""

    drift_p: float = 0.01  # MMD permutation p-value below this: the inputs drifted
    psi: float = 0.25  # predicted-label PSI above this (and chi-square p below labels_p): the mix shifted
    labels_p: float = 0.01  # so that a small window's sampling noise alone never fires
    confidence_p: float = 0.01  # KS p-value of the confidences below this
    min_accuracy: float = 0.7  # feedback accuracy below this (with at least min_feedback labels)
    min_feedback: int = 20


@dataclass
class WindowReport:
    index: int
    first_id: int
    last_id: int
    size: int
    full: bool
    start: datetime | None
    end: datetime | None
    mmd: float
    drift_p: float
    auc: float
    psi: float
    labels_p: float
    confidence: float
    confidence_p: float
    feedback: int
    accuracy: float | None
    top_labels: dict[str, int]
    alerts: list[str] = field(default_factory=list)


@dataclass
class DriftReport:
    deployment: str
    model: str | None
    reference: str | None
    reference_rows: int
    heldout_rows: int
    window: int
    thresholds: Thresholds
    windows: list[WindowReport]
    alerts: list[dict[str, Any]] = field(default_factory=list)  # fired by this call (new ones)
    note: str = ""

    @property
    def latest(self) -> WindowReport | None:
        full = [w for w in self.windows if w.full]
        return full[-1] if full else None

    @property
    def drifted(self) -> bool:
        """Did the latest full window drift (inputs, or the label mix)? What "adapt on drift" asks."""
        latest = self.latest
        return latest is not None and ("drift" in latest.alerts or "labels" in latest.alerts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drifted"] = self.drifted
        return data


# --- statistics --------------------------------------------------------------------------


def mmd_test(x: np.ndarray, y: np.ndarray, permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD² between samples `x` and `y` (RBF kernel, median-distance bandwidth)
    and its permutation-test p-value."""
    z = np.vstack([x, y]).astype(np.float64)
    n, total = len(x), len(x) + len(y)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    off = d2[np.triu_indices(total, 1)]
    bandwidth = float(np.median(off[off > 0])) if np.any(off > 0) else 1.0
    kernel = np.exp(-d2 / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    rng = np.random.default_rng(seed)
    member = np.zeros((total, permutations + 1))
    member[:n, 0] = 1.0  # column 0: the observed split; the rest: random relabellings
    for p in range(1, permutations + 1):
        member[rng.permutation(total)[:n], p] = 1.0
    other = 1.0 - member
    k_member = kernel @ member
    xx = np.sum(member * k_member, axis=0) / (n * (n - 1))
    xy = np.sum(other * k_member, axis=0) / (n * (total - n))
    yy = np.sum(other * (kernel @ other), axis=0) / ((total - n) * (total - n - 1))
    stats = xx + yy - 2 * xy
    p_value = (1 + np.sum(stats[1:] >= stats[0])) / (permutations + 1)
    return float(stats[0]), float(p_value)


def domain_auc(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Cross-validated AUC of a logistic classifier telling `y` rows from `x` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    z = np.vstack([x, y])
    target = np.r_[np.zeros(len(x)), np.ones(len(y))]
    folds = StratifiedKFold(n_splits=min(5, len(y), len(x)), shuffle=True, random_state=seed)
    scores = cross_val_predict(
        LogisticRegression(max_iter=1000), z, target, cv=folds, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(target, scores))


def label_shift(reference: pd.Series, window: pd.Series, eps: float = 1e-4) -> tuple[float, float]:
    """Population stability index and chi-square p-value of the window's label counts
    against the reference label mix."""
    from scipy.stats import chisquare

    labels = sorted(set(reference.astype(str)) | set(window.astype(str)))
    ref = reference.astype(str).value_counts().reindex(labels, fill_value=0).to_numpy(float)
    win = window.astype(str).value_counts().reindex(labels, fill_value=0).to_numpy(float)
    p = (ref + eps) / (ref + eps).sum()
    q = (win + eps) / (win + eps).sum()
    psi = float(np.sum((q - p) * np.log(q / p)))
    expected = p * win.sum()
    p_value = float(chisquare(win, expected).pvalue) if len(labels) > 1 else 1.0
    return psi, p_value


# --- the report --------------------------------------------------------------------------


def _texts(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    present = [c for c in columns if c in frame.columns]
    if not present:
        raise UsageError(f"none of the model's input columns ({', '.join(columns)}) is in the data")
    if len(present) == 1:
        return frame[present[0]].astype(str).tolist()
    return frame[present].astype(str).agg(" | ".join, axis=1).tolist()


def _reference(store: Store, model: Any, size: int, seed: int) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The training rows (a sample of `size`) and the held-out rows of a model version."""
    from llmos.spec import parse_spec
    from llmos.store.datasets import get_dataset_by_id, load_frame
    from llmos.train.run import make_splits

    if model.train_dataset_id is None:
        raise UsageError(f"model {model.ref} has no training dataset in its lineage to compare traffic with")
    train_ds = get_dataset_by_id(store, model.train_dataset_id)
    train = load_frame(store, train_ds)
    test = (
        None
        if model.test_dataset_id is None
        else load_frame(store, get_dataset_by_id(store, model.test_dataset_id))
    )
    try:
        splits = make_splits(parse_spec(model.spec), train, test, None)
        train, heldout = splits.train, splits.test
    except Exception:  # a spec this llmos cannot re-read: compare with the training data only
        heldout = train
    train = train.sample(n=min(size, len(train)), random_state=seed)
    heldout = heldout.sample(n=min(size, len(heldout)), random_state=seed)
    return train_ds.ref, train.reset_index(drop=True), heldout.reset_index(drop=True)


def drift_report(
    store: Store,
    deployment: str,
    *,
    window: int = 200,
    last: int = 10,
    thresholds: Thresholds | None = None,
    embedder: str = "minilm",
    reference_size: int = 500,
    permutations: int = 200,
    seed: int = 0,
    fire: bool = False,
    webhook: str | None = None,
    progress: Progress | None = None,
) -> DriftReport:
    """Drift, stability and feedback accuracy of `deployment` over its last `last` windows
    of `window` served requests (by the model version it serves now). With `fire`, the
    thresholds crossed by full windows raise alerts (each once)."""
    from llmos.models.llm_classifier import SentenceEmbedder
    from llmos.models.zoo import resolve_model
    from llmos.serve.feedback import output_spec
    from llmos.store.deployments import DEPLOYMENT_KINDS, get_deployment
    from llmos.store.feedback import count_served, served_requests
    from llmos.store.models import get_model, model_folder
    from llmos.train.predict import Predictor

    progress = progress or SilentProgress()
    thresholds = thresholds or Thresholds()
    if window < 10:
        raise UsageError(f"--window {window} is too small for a drift test; use at least 10 requests")
    row = get_deployment(store, deployment)
    if not DEPLOYMENT_KINDS[row.kind].labels:
        raise UsageError(
            f"deployment {deployment!r} serves a {row.kind} model; monitoring covers classifiers"
        )
    model = get_model(store, row.model)
    total = count_served(store, deployment, model.ref)
    skip = max(0, total // window + 1 - last) * window  # read only the windows reported
    served = served_requests(store, deployment, model=model.ref, skip=skip)
    report = DriftReport(deployment, model.ref, None, 0, 0, window, thresholds, [])
    chunks = [served.iloc[i : i + window] for i in range(0, len(served), window)]
    chunks = [c for c in chunks if len(c) >= max(10, window // 4)][-last:]
    if not chunks:
        report.note = f"{total} requests served by {model.ref} so far; a window needs {window}"
        return report
    columns = output_spec(store, model.ref).inputs
    report.reference, train, heldout = _reference(store, model, reference_size, seed)
    report.reference_rows, report.heldout_rows = len(train), len(heldout)

    progress.start("embedding the reference", None)
    encoder = SentenceEmbedder(resolve_model(embedder, store.settings.artifacts_dir))
    reference_vectors = encoder(_texts(train, columns)).numpy()
    predictor = Predictor.from_folder(model_folder(store, model), store.settings.artifacts_dir, device="cpu")
    held = predictor.predict(heldout[[c for c in predictor.columns if c in heldout.columns]])
    held_labels = pd.Series([r.get("label") for r in held], dtype=object)
    held_conf = np.array([r.get("score", np.nan) for r in held], dtype=float)
    progress.finish()
    progress.start("windows", len(chunks))
    for chunk in chunks:
        vectors = encoder(_texts(chunk, columns)).numpy()
        mmd, drift_p = mmd_test(reference_vectors, vectors, permutations, seed)
        psi, labels_p = label_shift(held_labels, chunk["predicted"])
        conf = chunk["confidence"].dropna().to_numpy(float)
        conf_p = _ks(held_conf, conf)
        labelled = chunk[chunk["feedback_label"].notna()]
        accuracy = (
            float((labelled["predicted"] == labelled["feedback_label"]).mean()) if len(labelled) else None
        )
        w = WindowReport(
            index=skip // window + len(report.windows),
            first_id=int(chunk["served_id"].iloc[0]),
            last_id=int(chunk["served_id"].iloc[-1]),
            size=len(chunk),
            full=len(chunk) == window,
            start=chunk["created_at"].iloc[0],
            end=chunk["created_at"].iloc[-1],
            mmd=round(mmd, 6),
            drift_p=round(drift_p, 6),
            auc=round(domain_auc(reference_vectors, vectors, seed), 4),
            psi=round(psi, 4),
            labels_p=labels_p,
            confidence=round(float(conf.mean()), 4) if len(conf) else float("nan"),
            confidence_p=conf_p,
            feedback=len(labelled),
            accuracy=None if accuracy is None else round(accuracy, 4),
            top_labels={str(k): int(v) for k, v in chunk["predicted"].value_counts().head(3).items()},
        )
        w.alerts = _crossed(w, thresholds)
        report.windows.append(w)
        progress.advance()
    progress.finish()
    if fire:
        report.alerts = fire_alerts(store, report, webhook)
    return report


def _ks(reference: np.ndarray, window: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    reference = reference[~np.isnan(reference)]
    if len(reference) == 0 or len(window) == 0:
        return 1.0
    return float(ks_2samp(reference, window).pvalue)


def _crossed(w: WindowReport, t: Thresholds) -> list[str]:
    crossed = []
    if w.drift_p < t.drift_p:
        crossed.append("drift")
    if w.psi > t.psi and w.labels_p < t.labels_p:
        crossed.append("labels")
    if w.confidence_p < t.confidence_p:
        crossed.append("confidence")
    if w.accuracy is not None and w.feedback >= t.min_feedback and w.accuracy < t.min_accuracy:
        crossed.append("accuracy")
    return crossed


def _alert_line(report: DriftReport, w: WindowReport, check: str) -> tuple[float, float, str]:
    t = report.thresholds
    where = f"deployment {report.deployment} ({report.model}), requests {w.first_id}-{w.last_id}"
    if check == "drift":
        text = f"input drift: MMD p-value {w.drift_p:.4g} < {t.drift_p:g} (domain AUC {w.auc:.3f})"
        return w.drift_p, t.drift_p, f"{where}: {text}"
    if check == "labels":
        text = f"predicted-label shift: PSI {w.psi:.3f} > {t.psi:g} (chi-square p-value {w.labels_p:.3g})"
        return w.psi, t.psi, f"{where}: {text}"
    if check == "confidence":
        text = f"confidence shift: KS p-value {w.confidence_p:.4g} < {t.confidence_p:g}"
        text += f" (mean {w.confidence:.3f})"
        return w.confidence_p, t.confidence_p, f"{where}: {text}"
    value = float(w.accuracy or 0.0)
    text = f"feedback accuracy {value:.3f} < {t.min_accuracy:g} on {w.feedback} labels"
    return value, t.min_accuracy, f"{where}: {text}"


def fire_alerts(store: Store, report: DriftReport, webhook: str | None = None) -> list[dict[str, Any]]:
    """Record the thresholds crossed by full windows; log and POST the ones not seen before."""
    from llmos.store.alerts import save_alerts
    from llmos.store.schema import MonitorAlert

    candidates = []
    for w in report.windows:
        if not w.full:
            continue
        for check in w.alerts:
            value, threshold, message = _alert_line(report, w, check)
            candidates.append(
                MonitorAlert(
                    deployment=report.deployment,
                    model=report.model or "",
                    check=check,
                    window_end=w.last_id,
                    value=value,
                    threshold=threshold,
                    message=message,
                )
            )
    fired = []
    for alert in save_alerts(store, candidates):
        log.warning("llmos monitor alert: %s", alert.message)
        event = {
            "deployment": alert.deployment, "model": alert.model, "check": alert.check,
            "window_end": alert.window_end, "value": alert.value, "threshold": alert.threshold,
            "message": alert.message, "alert_id": alert.id,
        }  # fmt: skip
        fired.append(event)
    if fired and webhook:
        post_webhook(webhook, {"alerts": fired})
    return fired


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 3.0) -> bool:
    """POST `payload` as JSON; a failure is logged, not raised (monitoring goes on)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload, default=str).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception as exc:  # the webhook is best effort: never stop monitoring for it
        log.warning("llmos monitor: webhook %s failed: %s", url, exc)
        return False
