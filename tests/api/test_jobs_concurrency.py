"""The issue's acceptance: 4 HTTP clients submit 25 training jobs each (tiny model, tiny
data, 1 epoch, cpus=1) while a fifth imports datasets. Every job is admitted once and
runs once, and the registry holds exactly the models of the succeeded jobs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from llmos import Client
from tests.conftest import make_rows, tiny_spec

CLIENTS, JOBS = 4, 25
FAST = {"epochs": 1, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}


@pytest.mark.slow
def test_100_jobs_from_4_clients_while_datasets_are_imported(served, ws, tmp_path, tiny_model_dir):
    make_rows(20).to_csv(tmp_path / "small.csv", index=False)
    ws.import_dataset(tmp_path / "small.csv", "small")
    spec = tiny_spec(tiny_model_dir, data={"train": "small", "split": {"test": 0.25, "seed": 1}}, train=FAST)
    spec["inputs"] = [{"name": "text", "max_length": 16}]
    submitted: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = time.monotonic()

    def submit(n: int) -> None:
        try:
            client = Client(served.url, served.tokens["developer"])
            submitted[n] = [client.submit_train({**spec, "name": f"c{n}"}, cpus=1).id for _ in range(JOBS)]
        except BaseException as exc:
            errors.append(exc)

    imported: list[str] = []

    def import_datasets() -> None:  # the fifth client uploads over HTTP meanwhile
        try:
            uploader = Client(served.url, served.tokens["developer"])
            for i in range(10):
                path = Path(tmp_path) / f"more{i}.csv"
                make_rows(40, seed=i).to_csv(path, index=False)
                imported.append(uploader.import_dataset(path, "more").dataset.ref)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(CLIENTS)]
    threads.append(threading.Thread(target=import_datasets))
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    submitted_at = time.monotonic() - start
    ids = sorted(i for batch in submitted.values() for i in batch)
    assert len(ids) == len(set(ids)) == CLIENTS * JOBS
    assert imported == [f"more@{v}" for v in range(1, 11)]

    client = Client(served.url, served.tokens["viewer"])
    finished = [client.wait_job(i) for i in ids]
    elapsed = time.monotonic() - start
    print(f"\n{CLIENTS * JOBS} jobs submitted in {submitted_at:.1f}s, all finished in {elapsed:.1f}s")
    succeeded = {j.id for j in finished if j.state == "succeeded"}
    assert {j.state for j in finished} == {"succeeded"}, [(j.id, j.state, j.error) for j in finished]
    for j in finished:  # admitted once, ran once
        assert j.attempts == 1, (j.id, j.attempts)
        assert client.job_log(j.id).log.count("attempt 1 of 2 started") == 1
        assert "attempt 2" not in client.job_log(j.id).log
    models = ws.models()
    assert sorted(m.job_id for m in models) == sorted(succeeded)
    for n in range(CLIENTS):
        mine = sorted((m for m in models if m.name == f"c{n}"), key=lambda m: m.version)
        assert [m.version for m in mine] == list(range(1, JOBS + 1))
        assert {m.job_id for m in mine} == set(submitted[n])
