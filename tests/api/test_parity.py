"""Every use case is reachable from every entry point: the CLI, `llmos.Workspace`,
`llmos.Client` and the HTTP API (the parity acceptance of F8).

The system calls in `llmos.ops` (`OPERATIONS`) are the list of use cases. For each one
this test finds a Workspace method and a Client method of the same name (or the name in
`RENAMED`), a route that declares it (`x-operation` in the OpenAPI document) and a CLI
command that performs it (`CLI`, the table below). Deliberate exceptions are listed with
their reason. It also fails the other way round: a public Workspace or Client method, a
route or a CLI command that is no operation and no listed exception.
"""

from __future__ import annotations

import inspect

import pytest
import typer

from llmos.api.access import routes
from llmos.ops.registry import OPERATIONS, load_all

# CLI command path -> the operations it performs (options choose among several)
CLI: dict[str, tuple[str, ...]] = {
    "deploy": ("deploy",),
    "undeploy": ("undeploy",),
    "deployments list": ("deployments",),
    "deployments show": ("deployment",),
    "adapt": ("submit_adapt", "adapt", "adapt_history", "plan_adapt"),
    "rollback": ("rollback",),
    "monitor": ("monitor",),
    "alerts": ("alerts",),
    "auth user add": ("add_user",),
    "auth user list": ("users",),
    "auth user remove": ("remove_user",),
    "auth token create": ("create_token",),
    "auth token list": ("tokens",),
    "auth token revoke": ("revoke_token",),
    "audit list": ("audit_events",),
    "audit verify": ("verify_audit",),
    "keys status": ("encryption_status",),
    "keys enable": ("enable_encryption",),
    "keys rotate": ("rotate_key",),
    "feedback import": ("import_feedback",),
    "feedback list": ("feedback", "labelled_feedback"),
    "label suggest": ("suggest_labels",),
    "data import": ("import_dataset",),
    "data list": ("datasets",),
    "data show": ("dataset", "dataset_rows"),
    "spec check": ("check_spec",),
    "spec schema": ("spec_schema",),
    "models zoo": ("zoo",),
    "models list": ("models",),
    "models show": ("model",),
    "models files": ("model_files",),
    "models share": ("share_model",),
    "models download": ("model_file",),
    "models metrics": ("run_metrics",),
    "models export-run": ("export_run",),
    "train": ("submit_train", "job_events"),
    "eval": ("evaluate", "submit_eval"),
    "predict": ("predict", "predict_file", "submit_predict"),
    "predictions list": ("prediction_sets",),
    "jobs list": ("jobs",),
    "jobs show": ("job",),
    "jobs logs": ("job_log", "job_events", "wait_job"),
    "jobs cancel": ("cancel_job",),
    "jobs retry": ("retry_job",),
    "schedule add": ("add_schedule",),
    "schedule list": ("schedules",),
    "schedule show": ("schedule",),
    "schedule pause": ("pause_schedule",),
    "schedule resume": ("resume_schedule",),
    "schedule remove": ("remove_schedule",),
    "kb import": ("import_collection",),
    "kb list": ("collections",),
    "kb show": ("collection",),
    "kb search": ("search_collection",),
    "kb add": ("add_documents",),
    "kb delete": ("delete_documents",),
    "auth token suspend": ("suspend_token",),
    "auth user suspend": ("suspend_user",),
    "project create": ("project_create",),
    "project list": ("projects",),
    "project show": ("project_show",),
    "project delete": ("project_delete",),
    "project grant": ("project_member_add",),
    "project revoke": ("project_member_remove",),
    "project quota": ("project_quota",),
    "kernel status": ("kernel_status",),
    "generate": ("generate",),
    "export": ("export",),
    "recommend": ("recommend",),
    "watch create": ("create_watch",),
    "watch list": ("watches",),
    "watch status": ("watch_status",),
    "watch ingest": ("ingest_watch_file", "ingest_watch"),
    "watch series": ("watch_series",),
    "watch texts": ("watch_texts",),
    "watch alerts": ("watch_alerts", "ack_watch_alert"),
    "watch plot": ("plot_watch",),
    "watch backfill": ("backfill_watch",),
    "support create": ("support_create",),
    "support list": ("support_assistants",),
    "support open": ("support_open",),
    "support ask": ("support_ask", "support_open"),
    "support show": ("support_session",),
    "support handoffs": ("support_handoffs",),
}

# operations an entry point offers under another name: {operation: {entry: name}}
RENAMED: dict[str, dict[str, str]] = {
    # `Client.predict` has always called a deployment (the data plane); a registered
    # model's predictions are `predict_model` there
    "predict": {"client": "predict_model"},
}

# (entry point, operation) pairs that are absent on purpose, with the reason
ABSENT: dict[tuple[str, str], str] = {
    ("cli", "submit_feedback"): "feedback on one served answer comes from the application that got it "
    "(POST /v1/deployments/{name}/feedback); people give feedback in bulk with `llmos feedback import`",
    ("api", "adapt"): "over HTTP, POST /v1/deployments/{name}/adapt submits (submit_adapt) and, with "
    "wait: true, waits for the decision: the same use case without a second route",
    ("api", "enable_encryption"): "rewrites every stored file in place and compacts the database: "
    "done on the workspace's machine with no server running (`llmos keys enable`)",
    ("api", "evaluate"): "over HTTP an evaluation is a job (POST /v1/jobs with kind eval: submit_eval); "
    "Client.evaluate submits one and follows it",
    ("api", "wait_job"): "a client waits by following the job's event stream (GET /v1/jobs/{id}/events)",
    ("api", "train"): "over HTTP training is a job (POST /v1/jobs: submit_train), checkpointed and recovered",
    ("client", "train"): "training in the calling process; a client submits a job (submit_train)",
    ("cli", "train"): "`llmos train` submits a job and follows it (submit_train), so it is checkpointed "
    "and recovered",
    ("api", "generate"): "generation in the calling process; over HTTP a model generates through a "
    "deployment's OpenAI routes (/v1/completions, /v1/chat/completions)",
    ("client", "generate"): "a client generates through a deployment (Client.complete, Client.chat)",
    ("api", "export"): "writes model weights into a folder on the caller's machine; over HTTP, fetch "
    "the model's files (model_files, model_file)",
    ("client", "export"): "writes into a folder on the workspace's machine; a client downloads files",
    ("api", "predict_file"): "reads a file (or a folder of images) on the caller's machine and writes "
    "the predictions beside it; over HTTP, upload it as a dataset and run a batch job (submit_predict)",
    ("client", "predict_file"): "a local file's rows: upload it (import_dataset), then submit_predict",
    ("api", "predict_deployment"): "over HTTP a deployment answers on its own route, served and batched "
    "(POST /v1/deployments/{name}/predict)",
    (
        "client",
        "predict_deployment",
    ): "Client.predict calls a deployment (the server runs its --optimize copy)",
    ("cli", "predict_deployment"): "for applications in the workspace's process (a watch's scoring); from a "
    "shell, call the deployment over HTTP or `llmos predict` a model version",
    ("cli", "traffic"): "a server's own recent requests, in its memory: read over HTTP (the console's "
    "Deployments page, Client.traffic); `llmos serve`'s /metrics has the counters for a terminal",
    ("cli", "lineage"): "`llmos models show` prints the lineage the model's result carries",
    ("api", "ingest_watch_file"): "reads files (and remembers offsets) on the workspace's machine; over "
    "HTTP, post the rows in batches (ingest_watch, POST /v1/watches/{name}/texts)",
    ("client", "ingest_watch_file"): "a client posts rows (ingest_watch); `llmos watch ingest --url` reads "
    "the file here and posts it",
}

# what an entry point offers that is no operation, with the reason
EXTRA: dict[tuple[str, str], str] = {
    ("cli", "serve"): "starts the HTTP server itself on the workspace's machine",
    ("cli", "demo"): "the bundled first-run demo: a local convenience over import, train and predict",
    ("cli", "init"): "creates the local workspace folder; a server's workspace exists already",
    ("cli", "auth init"): "creates the first admin and its token on the workspace's machine: "
    "no token can authorise that over HTTP",
    ("workspace", "init"): "creates the local workspace folder",
    ("workspace", "context"): "the ops context of the local workspace (plumbing)",
    ("workspace", "home"): "the workspace's folder",
    ("workspace", "store"): "the local store object (plumbing for code that extends llmos)",
    ("workspace", "settings"): "the local settings object",
    ("client", "health"): "GET /healthz: liveness of the server, not a use case of the workspace",
    ("client", "chat"): "data plane: OpenAI chat route of a deployment",
    ("client", "chat_stream"): "data plane: OpenAI chat route of a deployment, streamed",
    ("client", "complete"): "data plane: OpenAI completions route of a deployment",
    ("client", "embed"): "data plane: OpenAI embeddings route of a deployment",
    ("client", "feedback"): "data plane: feedback on a served answer (POST /v1/deployments/{name}/feedback)",
    ("client", "predict"): "data plane: a deployment's predictions (POST /v1/deployments/{name}/predict)",
    ("client", "url"): "the server's address",
    ("client", "follow_log"): "the log lines of job_events, as they come",
    ("workspace", "follow_log"): "the log lines of job_events, as they come",
    (
        "workspace",
        "predict_model",
    ): "predict with the answering model's NAME@V, as Client.predict_model returns",
    ("workspace", "dataset_frame"): "a dataset version as a pandas DataFrame in this process",
    ("workspace", "prediction_frame"): "a prediction set as a pandas DataFrame in this process",
    ("workspace", "model_path"): "the folder of a model's files on this machine",
    ("workspace", "predictor"): "a model loaded in this process, for code that calls it repeatedly",
    ("workspace", "llm"): "a generation model loaded in this process (what `llmos chat` talks to)",
    ("workspace", "run_kernel"): "runs the scheduler in this process (`llmos kernel start`)",
    ("workspace", "kernel_pid"): "the local scheduler's process id",
    ("cli", "kernel start"): "runs the scheduler in the foreground on the workspace's machine; a server "
    "starts its own",
    ("cli", "chat"): "an interactive chat in this terminal with a model loaded in this process; over "
    "HTTP, a deployment's chat route (Client.chat, any OpenAI client)",
    ("client", "token"): "the bearer token sent",
    ("client", "timeout"): "seconds a call may take",
}
# routes that perform no operation: the data plane and the server's own health
ROUTES_WITHOUT_OPERATION = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/deployments/{name}/predict"),
    ("GET", "/v1/models/{model}"),
    # the web console's files and its session probe (llmos.console): no use case of the workspace
    ("GET", "/console"),
    ("GET", "/console/session"),
    ("GET", "/console/{path:path}"),
}


def cli_commands() -> set[str]:
    from llmos.cli.main import app

    found: set[str] = set()

    def walk(command: object, path: str) -> None:
        commands = getattr(command, "commands", None)  # a group (typer vendors its own click)
        if commands is not None:
            for name, sub in commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found.add(path)

    walk(typer.main.get_command(app), "")
    return found


def public_members(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory):
    from llmos.api.app import create_app
    from llmos.core.settings import Settings
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeRuntime
    from llmos.store.db import Store

    store = Store(Settings.resolve(tmp_path_factory.mktemp("parity")))
    app = create_app(ServeRuntime(store), open_policy())
    declared: dict[tuple[str, str], list[str]] = {}
    for path, methods, route in routes(app):
        extra = getattr(route, "openapi_extra", None) or {}
        ops = extra.get("x-operations") or ([extra["x-operation"]] if extra.get("x-operation") else [])
        for method in methods - {"HEAD"}:
            declared[(method, path)] = list(ops)
    return declared


def name_in(entry: str, operation: str) -> str:
    return RENAMED.get(operation, {}).get(entry, operation)


def test_every_operation_is_reachable_from_every_entry_point(app_routes):
    from llmos import Client, Workspace

    operations = load_all()
    offered = {
        "workspace": public_members(Workspace),
        "client": public_members(Client),
        "cli": {op for ops in CLI.values() for op in ops},
        "api": {op for ops in app_routes.values() for op in ops},
    }
    missing = [
        f"{entry}: {name_in(entry, op)} ({op})"
        for op in sorted(operations)
        for entry, names in offered.items()
        if (entry, op) not in ABSENT
        and (name_in(entry, op) if entry in ("workspace", "client") else op) not in names
    ]
    assert not missing, "use cases missing from an entry point:\n" + "\n".join(missing)


def test_nothing_is_offered_that_is_no_operation(app_routes):
    from llmos import Client, Workspace

    operations = set(load_all())
    stray = []
    for entry, cls in (("workspace", Workspace), ("client", Client)):
        renamed = {names[entry] for names in RENAMED.values() if entry in names}
        for name in sorted(public_members(cls)):
            if name not in operations and name not in renamed and (entry, name) not in EXTRA:
                stray.append(f"{entry}.{name}")
    for command in sorted(cli_commands()):
        if command not in CLI and ("cli", command) not in EXTRA:
            stray.append(f"cli: llmos {command}")
        elif command in CLI and not set(CLI[command]) <= operations:
            stray.append(f"cli: llmos {command} maps to unknown operations {CLI[command]}")
    for (method, path), op in sorted(app_routes.items()):
        if (
            op is None
            and (method, path) not in ROUTES_WITHOUT_OPERATION
            and not path.startswith(("/docs", "/openapi", "/redoc"))
        ):
            stray.append(f"route {method} {path} performs no operation")
    assert not stray, "offered but not an operation (or a listed exception):\n" + "\n".join(stray)


def test_the_exceptions_are_real():
    """A listed exception that no longer exists is removed from the lists."""
    assert {op for ops in CLI.values() for op in ops} <= set(load_all())
    assert all(op in OPERATIONS or op in load_all() for (_, op) in ABSENT)
