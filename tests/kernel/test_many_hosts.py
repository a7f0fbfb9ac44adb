"""Schedulers on many hosts over one database: every queued job is claimed once."""

import json
import os
import subprocess
import sys
from collections import Counter

from llmos.kernel import jobs

CLAIMER = """
import json, sys
from llmos.core.settings import Settings
from llmos.kernel import jobs
from llmos.store.db import Store

store = Store(Settings.resolve(sys.argv[1]))
claimed = []
while (job_id := jobs.claim_next(store, host=sys.argv[2])) is not None:
    jobs.finish(store, job_id, {"host": sys.argv[2]})  # the trivial job: it ran here
    claimed.append(job_id)
print(json.dumps(claimed))
"""


def test_eight_schedulers_claim_two_hundred_jobs_each_exactly_once(ws, tmp_path):
    ids = [
        jobs.submit(ws.store, kind="test", name=f"j{i}", handler="tests.kernel.helpers:noop", payload={}).id
        for i in range(200)
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LLMOS_DB_URL": ws.settings.db_url}
    if ws.store.artifacts.remote:
        env["LLMOS_ARTIFACTS_URL"] = ws.settings.artifacts_url
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(tmp_path / f"host{n}"), f"host{n}"],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(8)
    ]
    claims = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        claims.append(json.loads(out.strip().splitlines()[-1]))
    every = [job_id for claimed in claims for job_id in claimed]
    assert Counter(every) == Counter(ids)  # each once, none lost
    done = jobs.list_jobs(ws.store)
    assert {j.state for j in done} == {"succeeded"} and {j.attempts for j in done} == {1}
    assert all(j.result == {"host": j.host} for j in done)
    assert sum(1 for c in claims if c) >= 2  # the work was spread, not taken by one process


def test_a_scheduler_leaves_another_hosts_live_job_alone(ws):
    from llmos.kernel.resources import Free
    from llmos.kernel.scheduler import Scheduler

    job = jobs.submit(
        ws.store, kind="test", name="elsewhere", handler="tests.kernel.helpers:noop", payload={}
    )
    assert jobs.start(ws.store, job.id, threads=1, host="other-host")
    jobs.set_pid(ws.store, job.id, 999_999_999)  # no such pid here: it lives on the other host
    here = Scheduler(ws.store, Free(2, 0, 0), host="this-host")
    here.step()
    assert jobs.get_job(ws.store, job.id).state == "running"  # heartbeat fresh: not requeued
    assert here.free().cpus == 2  # and not counted against this host
