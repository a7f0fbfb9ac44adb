"""What the web console costs a user: the models page with 1,000 registered runs, and how
long a running job's progress takes to show in the browser.

- models: `GET /v1/registry/models?limit=21&offset=K` (the page the console asks for: 20
  rows and one more to know there is a next page) at random offsets, against the same
  registry listed whole (what the console fetched before it paged); then the console's
  models page itself in headless chromium, from the hash change to the page drawn. Times
  are taken at the client over loopback, so they bound the server's time from above.
- progress: a job is put in the running state and the benchmark reports its progress
  exactly as the worker's heartbeat does (`kernel.jobs.heartbeat`, the worker's only way
  to report), ten times, one a second; the browser's job page records (MutationObserver,
  `Date.now()`) when each report's text appears. The figure is report -> shown.

Needs Debian's chromium and Playwright (as the browser tests do). Prints a table and
writes `benchmarks/results/bench_console.json`.

    python benchmarks/bench_console.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_result

CHROMIUM = "/usr/bin/chromium"
PAGE = 20


def fill_registry(ws: Any, runs: int) -> float:
    """One model registered the ordinary way, then `runs - 1` copies of its row under other
    names (the list reads rows, not files: copying keeps the setup to seconds)."""
    from sqlalchemy import insert

    from llmos.store.models import register_model
    from llmos.store.schema import ModelVersion

    folder = ws.home.parent / "model"
    (folder / "report").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "report" / "metrics.json").write_text('{"accuracy": 0.9}')
    started = time.perf_counter()
    first = register_model(
        ws.store, name="run-0000", task="text-classification", base_model="tiny", method="lora",
        spec={"name": "run-0000"}, folder=folder, train_dataset_id=None, test_dataset_id=None,
        split={}, metrics={"accuracy": 0.9, "macro_f1": 0.88}, train_seconds=1.0,
    )  # fmt: skip
    columns = [c.key for c in ModelVersion.__table__.columns if c.key != "id"]
    template = {c: getattr(first, c) for c in columns}
    rows = [
        {**template, "name": f"run-{i:04d}", "spec": {"name": f"run-{i:04d}"},
         "metrics": {"accuracy": random.random(), "macro_f1": random.random()}}
        for i in range(1, runs)
    ]  # fmt: skip
    with ws.store.transaction() as session:
        session.execute(insert(ModelVersion), rows)
    return time.perf_counter() - started


def timed(http: Any, path: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
        "n": len(ordered),
    }


def browser_figures(url: str, token: str, ws: Any, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from llmos.kernel import jobs

    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/console/")
        page.fill("#token", token)
        page.click("#signin button[type=submit]")
        page.wait_for_selector("#main[data-ready=overview]")
        # the models page: hash change -> page drawn, at random pages
        loads = []
        for number in random.sample(range(1, runs // PAGE + 1), min(10, runs // PAGE)):
            page.evaluate("() => { location.hash = '#/overview'; }")
            page.wait_for_selector("#main[data-ready=overview]")
            loads.append(
                page.evaluate(
                    """async (hash) => { const t = performance.now(); location.hash = hash;
                    while (document.getElementById('main').dataset.ready !== 'models')
                      await new Promise(r => setTimeout(r, 2));
                    return performance.now() - t; }""",
                    f"#/models//{number}",
                )
            )
            assert page.locator("#model-list tbody tr").count() == PAGE
        out["models_page_in_browser"] = summary(loads)

        # progress: report as the worker's heartbeat does, see when the page shows it
        probe = "llmos.kernel.probe:probe_job"
        job = jobs.submit(ws.store, kind="probe", name="latency", handler=probe, payload={})
        assert jobs.start(ws.store, job.id, threads=1)
        page.evaluate("h => { location.hash = h; }", f"#/job/{job.id}")
        page.wait_for_selector("#main[data-ready=job]")
        page.evaluate(
            """() => { window.seen = []; const step = document.getElementById('job-step');
              new MutationObserver(() => window.seen.push([Date.now(), step.textContent]))
                .observe(step, {childList: true, characterData: true, subtree: true}); }"""
        )
        time.sleep(1.0)  # the page's event stream is open and polling
        reported = {}
        total = 10
        for k in range(1, total + 1):
            reported[k] = time.time() * 1000
            jobs.heartbeat(ws.store, job.id, {"task": "probe", "done": k, "total": total})
            time.sleep(1.0)
        seen = page.evaluate("() => window.seen")
        lags = []
        for k, at in reported.items():
            shown = next((t for t, text in seen if text == f"probe {k}/{total}"), None)
            if shown is None:
                raise SystemExit(f"report {k} never showed in the browser: {seen}")
            lags.append(shown - at)
        jobs.finish(ws.store, job.id, {"ok": True})
        out["progress_report_to_browser"] = summary(lags)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    random.seed(0)
    import httpx

    from llmos import Workspace
    from llmos.api.server import ServerThread
    from llmos.security.identities import init_admin
    from llmos.security.policy import build_policy

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.init()
        token = init_admin(ws.store, "root")[0]
        fill_seconds = fill_registry(ws, args.runs)
        with ServerThread(ws.store, policy=build_policy(ws.store)) as url:
            http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            assert len(http.get("/v1/registry/models").json()) == args.runs
            paged = []
            for _ in range(30):
                offset = random.randrange(0, args.runs - PAGE)
                paged += timed(http, f"/v1/registry/models?limit={PAGE + 1}&offset={offset}", 1)
            whole = timed(http, "/v1/registry/models", 5)
            result: dict[str, Any] = {
                "runs": args.runs,
                "registry_fill_s": round(fill_seconds, 2),
                "models_api_paged": summary(paged),
                "models_api_whole_list": summary(whole),
                **browser_figures(url, token, ws, args.runs),
                "target": "models page <= 500 ms server time (paged); progress shown <= 1 s after the report",
                "machine": machine(),
            }
    rows = [
        ("GET /v1/registry/models, a page of 21", result["models_api_paged"]),
        (f"GET /v1/registry/models, all {args.runs}", result["models_api_whole_list"]),
        ("models page drawn in chromium", result["models_page_in_browser"]),
        ("progress report -> shown in chromium", result["progress_report_to_browser"]),
    ]
    print(f"{'with ' + str(args.runs) + ' registered runs':44} {'median':>9} {'p95':>9} {'max':>9}")
    for title, s in rows:
        print(f"{title:44} {s['median_ms']:>7} ms {s['p95_ms']:>6} ms {s['max_ms']:>6} ms")
    print(f"wrote {write_result('bench_console', result)}")


if __name__ == "__main__":
    main()
