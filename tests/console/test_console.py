"""Acceptance of the web console (F9), in a real headless chromium against a real server:
an admin signs in, uploads a CSV by drag and drop (and sees the server's message for one
over the limit), writes a LoRA spec in the editor (an invalid one cannot be submitted),
watches the job's live progress to the end, opens the run, compares it with a second
run, deploys it, predicts in the playground and finds its own actions in the audit page;
a viewer sees no control that changes state, a forged change is refused, and a revoked
token returns to sign-in with the server's message. With LLMOS_CONSOLE_SHOTS=1 every page
is photographed into docs/console/. Numbers shown are checked against the API's answers."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pandas as pd

from tests.conftest import make_rows
from tests.console.conftest import DEMO_CSV, UPLOAD_LIMIT, Console, shoot

# controls that change state, by the text of their button
CHANGES = ["Upload", "Submit training", "Deploy", "Cancel", "Retry", "Roll back", "Undeploy", "Predict",
           "Send", "Add user", "Create token", "Revoke", "Remove", "Rotate the master key"]  # fmt: skip


def sign_in(page: Any, console: Console, token: str) -> None:
    page.goto(f"{console.url}/console/")
    page.fill("#token", token)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#main[data-ready=overview]")


def visit(page: Any, hash_: str) -> None:
    key = hash_.split("/")[1]
    page.evaluate("h => { location.hash = h; }", hash_)
    page.wait_for_selector(f"#main[data-ready={key}]")


def drop(page: Any, name: str, text: str) -> None:
    """Drop a file on the drop zone, as a user dragging it from their desktop does."""
    transfer = page.evaluate_handle(
        "([name, text]) => { const t = new DataTransfer();"
        " t.items.add(new File([text], name, {type: 'text/csv'})); return t; }",
        [name, text],
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def change_buttons(page: Any) -> list[str]:
    found = page.locator("main button").all_inner_texts()
    return [t for t in found if t.strip() in CHANGES] + page.locator("[data-change]").all_inner_texts()


def spec(model_dir: str, name: str = "console-tiny", **train: Any) -> dict[str, Any]:
    return {
        "name": name,
        "task": "text-classification",
        "model": {"name": model_dir},
        "method": {"type": "lora", "r": 8},
        "data": {"train": "intents", "split": {"test": 0.2, "seed": 1}},
        "inputs": [{"type": "text", "name": "text", "max_length": 32}],
        "outputs": [{"type": "category", "name": "label"}],
        "train": {"epochs": 3, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7, **train},
    }


def test_an_admin_runs_a_model_s_life_in_the_browser(page, console, tiny_model_dir):
    api = console.api("admin")
    # a token the server does not know: the sign-in page says so, in the server's words
    page.goto(f"{console.url}/console/")
    shoot(page, "sign-in")
    page.fill("#token", "llmos_notarealtoken0000000000")
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#signin-message.error")
    assert "unknown token" in page.inner_text("#signin-message")
    sign_in(page, console, console.tokens["admin"])
    assert page.inner_text("#who") == "root (admin)"
    shoot(page, "overview")

    # datasets: an upload over the limit shows the server's one-line message, then a real one
    visit(page, "#/datasets")
    big = "text,label\n" + "x" * UPLOAD_LIMIT + ",card\n"
    drop(page, "big.csv", big)
    page.fill("#dataset-name", "big")
    page.click("#upload")
    page.wait_for_selector("#upload-error")
    direct = httpx.post(
        f"{console.url}/v1/datasets",
        files={"file": ("big.csv", big.encode())},
        data={"name": "big"},
        headers=api.headers,
    )
    assert direct.status_code == 413
    assert page.inner_text("#upload-error") == direct.json()["error"]["message"]
    csv = make_rows(150).to_csv(index=False)
    page.fill("#dataset-name", "")
    drop(page, "intents.csv", csv)
    assert page.input_value("#dataset-name") == "intents"  # named after the dropped file
    page.click("#upload")
    page.wait_for_selector("#upload-done")
    assert page.inner_text("#upload-done") == "stored intents@1: 150 rows"
    assert page.eval_on_selector("#upload-progress", "p => p.value") == 1
    # the Banking77 demo CSV the package ships, chosen with the file picker
    page.fill("#dataset-name", "")
    page.set_input_files("#file", str(DEMO_CSV))
    assert page.input_value("#dataset-name") == "banking_demo_train"
    page.fill("#dataset-label", "category")
    page.click("#upload")
    page.wait_for_selector("#upload-done:has-text('banking_demo_train@1')")
    demo = api.get("/v1/datasets/banking_demo_train@1").json()
    assert page.inner_text("#upload-done") == f"stored banking_demo_train@1: {demo['rows']} rows"
    assert demo["rows"] == len(pd.read_csv(DEMO_CSV)) and demo["label_column"] == "category"
    shoot(page, "datasets")
    visit(page, "#/dataset/banking_demo_train@1")
    shown = demo
    drawn = page.eval_on_selector_all(
        "svg.bars rect", "rs => Object.fromEntries(rs.map(r => [r.dataset.label, Number(r.dataset.value)]))"
    )
    assert drawn == shown["label_distribution"]
    assert page.locator("#first-rows tbody tr").count() == 10
    shoot(page, "dataset")

    # the spec editor: errors at their paths, no submission until fixed
    visit(page, "#/train")
    bad = spec(str(tiny_model_dir), epochs=0)
    bad["method"] = {"type": "lorra"}
    page.fill("#spec", json.dumps(bad, indent=2))
    page.wait_for_selector("#spec-errors li")
    paths = page.eval_on_selector_all("#spec-errors li", "ls => ls.map(l => l.dataset.path)")
    assert set(paths) == {"method.type", "train.epochs"}, paths
    assert page.is_disabled("#submit-train")
    shoot(page, "train")
    assert api.get("/v1/jobs").json() == []  # nothing was submitted
    # the editor's LoRA template for the Banking77 data, pointed at the tiny test model
    page.select_option("#template", "text-classification")
    page.select_option("#template-data", "banking_demo_train")
    written = json.loads(page.input_value("#spec"))
    assert written["method"]["type"] == "lora" and written["data"]["train"] == "banking_demo_train"
    written.update(name="console-tiny", model={"name": str(tiny_model_dir)})
    written["inputs"][0]["max_length"] = 32
    written["outputs"][0]["name"] = "category"
    written["train"].update(epochs=2, batch_size=32, lr=3e-3, head_lr=1e-2)
    page.fill("#spec", json.dumps(written, indent=2))
    assert page.locator("#spec-errors li").count() == 0
    page.click("#submit-train")
    page.wait_for_selector("#main[data-ready=job]")
    job_id = int(re.search(r"#/job/(\d+)", page.url).group(1))
    submitted = api.get(f"/v1/jobs/{job_id}").json()["payload"]["spec"]
    assert submitted["method"]["type"] == "lora" and submitted["data"]["train"] == "banking_demo_train"
    # a second run to compare with, submitted over the API while the first one trains
    second = api.post(
        "/v1/jobs",
        json={"kind": "train", "spec": spec(str(tiny_model_dir), "console-seed3", seed=3), "cpus": 1},
    )
    assert second.status_code == 201, second.text

    # the job page follows the event stream live to the end
    page.wait_for_selector("#job-state.succeeded", timeout=90_000)
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "succeeded" and job["result"]["model"] == "console-tiny@1"
    progress = job["progress"]
    assert page.eval_on_selector("#job-progress", "p => p.value") == progress["done"] / progress["total"]
    assert f"{progress['task']} {progress['done']}/{progress['total']}" in page.inner_text("#job-step")
    # once the run is registered the loss chart is every optimizer step's loss as the store
    # keeps it (live points come from the worker's heartbeat, about one a second, so a fast
    # run under load may send none: the stored curve is what a test can hold the page to)
    page.wait_for_selector("#loss-chart[data-source=stored] path")
    stored = api.get("/v1/registry/models/console-tiny@1/metrics?names=loss").json()["points"]
    train_rows = api.get("/v1/registry/models/console-tiny@1").json()["lineage"]["split"]["rows"]["train"]
    assert len(stored) == 2 * -(-train_rows // 32)  # two epochs in batches of 32
    drawn = json.loads(page.get_attribute("#loss-chart path", "data-xy"))
    assert drawn == [[p["step"], p["value"]] for p in stored]
    shoot(page, "job")

    # the registry, the run page and the comparison
    visit(page, f"#/job/{second.json()['id']}")
    page.wait_for_selector("#job-state.succeeded", timeout=90_000)
    visit(page, "#/models")
    assert page.locator("#model-list tbody tr").count() == 2
    shoot(page, "models")
    page.click("a[href='#/run/console-tiny@1']")
    page.wait_for_selector("#main[data-ready=run]")
    model = api.get("/v1/registry/models/console-tiny@1").json()
    metrics = dict(
        page.eval_on_selector_all(
            "#metrics tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))"
        )
    )
    accuracy = model["metrics"]["accuracy"]  # as JavaScript writes it: 1, not 1.0000
    assert metrics["accuracy"] == (str(int(accuracy)) if float(accuracy).is_integer() else f"{accuracy:.4f}")
    report = api.get("/v1/registry/models/console-tiny@1/files/report/metrics.json").json()
    cells = page.eval_on_selector_all("svg.grid rect", "rs => rs.map(r => Number(r.dataset.count))")
    assert cells == [n for row in report["confusion_matrix"]["matrix"] for n in row]
    # the curves are the stored per-step metrics, point for point
    steps = api.get("/v1/registry/models/console-tiny@1/metrics").json()
    curves = dict(
        page.eval_on_selector_all(
            "#curves path", "ps => ps.map(p => [p.dataset.series, JSON.parse(p.dataset.xy)])"
        )
    )
    assert set(curves) == {"loss", "train_loss", "lr", "samples_per_s"}, sorted(curves)
    for name, points in curves.items():
        assert points == [[p["step"], p["value"]] for p in steps["points"] if p["name"] == name], name
    assert "banking_demo_train@1" in page.inner_text("#lineage")
    shoot(page, "run")
    visit(page, "#/models")
    page.check("input.pick[value='console-tiny@1']")
    page.check("input.pick[value='console-seed3@1']")
    page.click("#compare")
    page.wait_for_selector("#main[data-ready=compare]")
    header = page.locator("#compare-table thead").inner_text()
    assert "console-tiny@1" in header and "console-seed3@1" in header
    series = page.eval_on_selector_all("#curves path", "ps => ps.map(p => p.dataset.series)")
    assert any(s.startswith("console-tiny@1 ") for s in series) and any(
        s.startswith("console-seed3@1 ") for s in series
    )
    shoot(page, "compare")

    # deploy from the run page, predict in the playground
    visit(page, "#/run/console-tiny@1")
    page.fill("#deploy-name", "helpdesk")
    page.click("#deploy")
    page.wait_for_selector("#deployed")
    assert api.get("/v1/deployments/helpdesk").json()["model"] == "console-tiny@1"
    visit(page, "#/deployments")
    assert "helpdesk" in page.inner_text("#deployment-list")
    visit(page, "#/playground")
    page.fill("#play-text", "my card arrived in the post")
    page.click("#predict")
    page.wait_for_selector("#play-result svg.bars")
    bars = page.eval_on_selector_all("#play-result rect", "rs => rs.map(r => r.dataset.label)")
    assert sorted(bars) == sorted(report["confusion_matrix"]["labels"])
    answer = api.post(
        "/v1/deployments/helpdesk/predict", json={"inputs": "my card arrived in the post"}
    ).json()
    assert f"label {answer['predictions'][0]['label']}" in page.inner_text("#play-label")
    shoot(page, "playground")
    visit(page, "#/monitoring/helpdesk")
    page.wait_for_selector("#monitor")
    shoot(page, "monitoring")
    # the deployments page charts the two predictions, point for point as the API answered
    with page.expect_response(lambda r: "/v1/deployments/helpdesk/traffic" in r.url) as answered:
        visit(page, "#/deployments")
    traffic = answered.value.json()
    assert sum(b["requests"] for b in traffic["buckets"]) == 2
    busy = [b for b in traffic["buckets"] if b["requests"]]
    for chart, key, rows in (("rate", "rate_per_s", traffic["buckets"]), ("latency", "p50_ms", busy),
                             ("latency", "p99_ms", busy), ("batch", "mean_batch", busy)):  # fmt: skip
        paths = page.eval_on_selector_all(
            f"#traffic-{chart}-helpdesk path",
            "ps => ps.map(p => [p.dataset.series, JSON.parse(p.dataset.xy)])",
        )
        drawn = dict(paths)[{"rate_per_s": "requests/s", "p50_ms": "p50", "p99_ms": "p99"}.get(key, "mean")]
        assert drawn == [[b["offset_s"], b[key]] for b in rows], key
    resident = traffic["memory"]
    assert resident["as"] == "adapter" and resident["base"] in page.inner_text("#deployment-list")
    shoot(page, "deployments")

    # the audit page lists what this admin did, and the chain verifies
    visit(page, "#/audit")
    page.fill("#audit-actor", "root")
    rows = page.eval_on_selector_all(
        "#audit-list tbody tr", "rs => rs.map(r => [r.cells[2].innerText, r.cells[3].innerText])"
    )
    logged = [[e["actor"], e["action"]] for e in api.get("/v1/audit").json() if "root" in e["actor"]]
    assert rows == logged  # newest first, as the API answers
    mine = {action for actor, action in rows if actor == "root"}
    assert {"dataset.import", "job.submit", "deployment.create", "http.change"} <= mine, mine
    page.click("#audit-verify")
    page.wait_for_selector("#audit-verdict p.ok")
    shoot(page, "audit")

    # admin: a new token is shown once
    visit(page, "#/admin")
    page.fill("#token-user", "dev")
    page.click("#create-token button")
    page.wait_for_selector("#new-token")
    made = page.inner_text("#new-token")
    assert made.startswith("llmos_")
    assert made not in json.dumps(api.get("/v1/tokens").json())  # the list shows prefixes only
    shoot(page, "admin")
    assert len(change_buttons(page)) > 0  # so the viewer test's "none" can fail

    # the project switcher: the console then speaks for that project (LLMOS-Project)
    assert api.post("/v1/projects", json={"name": "beta"}).status_code == 200
    page.reload()
    page.wait_for_selector("#main[data-ready=admin]")
    assert page.eval_on_selector_all("#project option", "os => os.map(o => o.value)") == [
        p["name"] for p in api.get("/v1/projects").json()
    ]
    sent: list[str | None] = []
    page.on(
        "request",
        lambda r: sent.append(r.headers.get("llmos-project")) if "/v1/registry/models" in r.url else None,
    )
    page.select_option("#project", "beta")
    visit(page, "#/models")
    assert page.locator("#model-list tbody tr").count() == 0 and sent[-1] == "beta"
    page.select_option("#project", "default")
    visit(page, "#/models")
    assert page.locator("#model-list tbody tr").count() == 2 and sent[-1] is None


def test_a_viewer_sees_no_changes_and_a_forged_one_is_refused(page, console):
    sign_in(page, console, console.tokens["viewer"])
    assert page.inner_text("#who") == "viv (viewer)"
    nav = page.locator("nav a").all_inner_texts()
    assert "Audit" not in nav and "Admin" not in nav
    pages = ["#/overview", "#/datasets", "#/train", "#/jobs", "#/models", "#/deployments", "#/playground",
             "#/monitoring"]  # fmt: skip
    pages += [f"#/run/{m['ref']}" for m in console.api().get("/v1/registry/models").json()[:1]]
    pages += [f"#/job/{j['id']}" for j in console.api().get("/v1/jobs?limit=1").json()]
    for where in pages:
        visit(page, where)
        assert change_buttons(page) == [], where
    shoot(page, "viewer")

    # forged anyway, with the viewer's own token: the server refuses and nothing changes
    before = console.api().get("/v1/deployments").json()
    forged = page.evaluate(
        """async () => {
            const r = await fetch('/v1/deployments', {method: 'POST',
              headers: {'Authorization': 'Bearer ' + sessionStorage.getItem('llmos.token'),
                        'Content-Type': 'application/json'},
              body: JSON.stringify({model: 'console-tiny@1', name: 'forged'})});
            return [r.status, (await r.json()).error.message];
        }"""
    )
    assert forged == [403, "a viewer token may not do this (route /v1/deployments needs deployments:write)"]
    # what another site can make the browser send (a form whose body spells JSON, which
    # the API reads as JSON) carries no credential, there being no cookie: 401
    cross = page.evaluate(
        """async () => (await fetch('/v1/deployments', {method: 'POST', credentials: 'include',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: '{"model": "console-tiny@1", "name": "forged"}'})).status"""
    )
    assert cross == 401
    assert console.api().get("/v1/deployments").json() == before

    # the token is revoked: the next page returns to sign-in with the server's message
    prefix = console.tokens["viewer"][:12]
    token = next(t for t in console.api().get("/v1/tokens").json() if t["prefix"] == prefix)
    assert console.api().delete(f"/v1/tokens/{token['id']}").status_code == 200
    page.evaluate("() => { location.hash = '#/datasets'; }")
    page.wait_for_selector("#signin-message.error")
    assert "revoked" in page.inner_text("#signin-message")
    assert page.evaluate("() => sessionStorage.getItem('llmos.token')") is None

    # a token that expires while the console is open: back to sign-in, saying so
    made = console.api().post("/v1/tokens", json={"user": "viv", "expires": "5s"}).json()
    page.fill("#token", made["token"])  # the sign-in page the revoked token left
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#main[data-ready=datasets]")  # where the revoked token was going
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    # the answer's expires_at is to the second, the stored one is not: up to 1 s later
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 1.5)
    page.evaluate("() => { location.hash = '#/models'; }")
    page.wait_for_selector("#signin-message.error")
    assert "this token expired at" in page.inner_text("#signin-message")
    assert page.evaluate("() => sessionStorage.getItem('llmos.token')") is None
