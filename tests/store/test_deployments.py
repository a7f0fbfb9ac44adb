"""The deployments table: create, re-point in place, delete; and the migration that adds
it to a workspace created before serving existed."""

from __future__ import annotations

import pytest

from llmos.core.errors import NotFoundError, UsageError
from llmos.core.settings import Settings
from llmos.store import Store, migrations
from llmos.store.deployments import delete_deployment, get_deployment, list_deployments, save_deployment


def test_save_repoint_delete(home):
    store = Store(Settings.resolve(home))
    first = save_deployment(store, "intents", "m@1", "classifier", {"optimize": None})
    again = save_deployment(store, "intents", "m@2", "classifier", {"optimize": "int8"})
    assert (first.id, first.revision) == (again.id, 1) and again.revision == 2
    row = get_deployment(store, "intents")
    assert (row.model, row.options["optimize"], row.revision) == ("m@2", "int8", 2)
    assert [d.name for d in list_deployments(store)] == ["intents"]
    delete_deployment(store, "intents")
    with pytest.raises(NotFoundError, match="deployment 'intents' not found"):
        get_deployment(store, "intents")
    with pytest.raises(UsageError, match="invalid deployment name"):
        save_deployment(store, "no spaces", "m@1", "classifier", {})


@pytest.mark.local_only
def test_a_workspace_from_before_serving_gains_the_table(home):
    import sqlite3

    from tests.store.test_db import V1_SCHEMA  # schema 1: no deployments (and no kernel tables)

    home.mkdir(parents=True)
    con = sqlite3.connect(home / "llmos.db")
    con.executescript(V1_SCHEMA)
    con.close()
    store = Store(Settings.resolve(home))
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.HEAD
    save_deployment(store, "d", "m@1", "classifier", {})
    assert get_deployment(store, "d").model == "m@1"
