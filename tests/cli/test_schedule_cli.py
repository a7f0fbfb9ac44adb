"""`llmos schedule add|list|show|pause|resume|remove`, locally and with --url: bad input is
one line with exit code 2 and stores nothing; the remote list is the local one."""

import json

import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig
from tests.cli.test_cli import one_line_error
from tests.ops.conftest import register_fake

EVAL = ["eval", "tiny@1", "--data", "intents@1"]


@pytest.fixture
def filled(ws, intents_csv):
    ws.import_dataset(intents_csv, "intents")
    register_fake(ws)
    return ws


def test_add_list_show_pause_remove(run, filled):
    # added paused: no kernel starts for it in a test
    code, out, err = run("schedule", "add", "ev", "--every", "1h", "--paused", "--", *EVAL)
    assert code == 0, err
    assert "schedule ev: eval tiny@1 --data intents@1 every 3600s; next run" in out
    code, out, _ = run("schedule", "list")
    assert code == 0 and "ev" in out and "eval tiny@1 --data intents@1" in out and "yes" in out
    code, out, _ = run("schedule", "show", "ev", "--json")
    assert json.loads(out)["payload"] == {"model": "tiny@1", "data": "intents@1", "cpus": 1}
    assert run("schedule", "pause", "ev")[1].strip() == "schedule ev paused"
    assert run("schedule", "remove", "ev")[1].strip() == "schedule ev removed"
    assert json.loads(run("schedule", "list", "--json")[1]) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "1h", "--", "bogus", "x"], "unknown job 'bogus' for a schedule"),
        (["--every", "1h", "--cron", "* * * * *", "--", *EVAL], "exactly one of --every and --cron"),
        (["--", *EVAL], "exactly one of --every and --cron"),
        (["--cron", "99 * * * *", "--", *EVAL], "invalid --cron '99 * * * *'"),
        (["--every", "0", "--", *EVAL], "invalid --every '0'"),
        (["--every", "1h"], "a schedule needs a job after `--`"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_stored(run, filled, args, message):
    code, _, err = run("schedule", "add", "x", *args)
    assert code == 2 and message in one_line_error(err)
    assert filled.schedules() == []


def test_a_duplicate_name_is_one_line(run, filled):
    assert run("schedule", "add", "ev", "--every", "1h", "--paused", "--", *EVAL)[0] == 0
    code, _, err = run("schedule", "add", "ev", "--every", "5m", "--paused", "--", *EVAL)
    assert code == 2 and "schedule 'ev' already exists" in one_line_error(err)
    assert [s.every for s in filled.schedules()] == [3600]


def test_remote_list_and_show_match_local_and_bad_input_is_the_same_line(run, filled):
    filled.add_schedule("ev", EVAL, every="1h", start_kernel=False)
    filled.add_schedule("five", EVAL, cron="*/5 * * * *", paused=True, start_kernel=False)
    local = json.loads(run("schedule", "list", "--json")[1])
    store = filled.store
    token = init_admin(store, "root")[0]
    with ServerThread(store, ServeConfig(max_wait_ms=1), policy=build_policy(store)) as url:
        remote = lambda *a: run("--url", url, "--token", token, *a)  # noqa: E731
        code, out, err = remote("schedule", "list", "--json")
        assert code == 0, err
        assert json.loads(out) == local and [r["name"] for r in local] == ["ev", "five"]
        code, out, _ = remote("schedule", "list")
        assert "cron */5 * * * *" in out and "every 3600s" in out
        assert json.loads(remote("schedule", "show", "five", "--json")[1])["paused"] is True
        code, _, err = remote("schedule", "show", "ghost")
        assert code == 3 and "schedule 'ghost' not found" in one_line_error(err)
        code, _, err = remote("schedule", "add", "x", "--every", "1h", "--", "bogus")
        assert code == 2 and "unknown job 'bogus' for a schedule" in one_line_error(err)
    assert len(filled.schedules()) == 2
