"""`llmos serve`, `llmos deploy`, `llmos undeploy` and `llmos deployments list|show`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="Ask a running server (with its memory stats) instead of the workspace."),
]
app = typer.Typer(help="Deployments: served names and the models they point at.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most inputs per batch.")] = 32,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", help="Wait this long for a batch to fill.")
    ] = 5.0,
    max_queue: Annotated[
        int, typer.Option("--max-queue", help="Queued requests per base model before 429.")
    ] = 256,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds a request may take before 504.")
    ] = 60.0,
    max_inputs: Annotated[
        int, typer.Option("--max-inputs", help="Most inputs per request (else 413).")
    ] = 256,
    max_input_chars: Annotated[
        int, typer.Option("--max-input-chars", help="Longest text (else 413).")
    ] = 20_000,
    adapter_budget_mb: Annotated[
        float, typer.Option("--adapter-budget-mb", help="Memory for paged-in adapters.")
    ] = 512.0,
    max_adapters: Annotated[int, typer.Option("--max-adapters", help="Most adapters paged in at once.")] = 64,
    graceful: Annotated[
        float, typer.Option("--graceful", help="Seconds in-flight requests get on shutdown.")
    ] = 30.0,
    max_new_tokens: Annotated[
        int,
        typer.Option("--max-new-tokens", help="Most tokens one chat or completion may generate (else 400)."),
    ] = 2048,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Batch threads per base model, each with its share of the CPU cores (unless "
            "OMP_NUM_THREADS is set); whole models run that many batches at once.",
        ),
    ] = 1,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="No tokens at all: local demos only.")
    ] = False,
    guard: Annotated[
        str, typer.Option("--guard", help="Prompt-injection guard: block, flag (log only) or off.")
    ] = "flag",
    rate_limit: Annotated[
        float | None, typer.Option("--rate-limit", help="Requests per second per token (else 429).")
    ] = None,
    burst: Annotated[int | None, typer.Option("--burst", help="Requests a token may burst to.")] = None,
    daily_quota: Annotated[
        int | None, typer.Option("--daily-quota", help="Requests per token per UTC day (else 429).")
    ] = None,
    guard_classifier: Annotated[
        str | None,
        typer.Option("--guard-classifier", help="A classifier deployment that labels injection prompts."),
    ] = None,
    guard_labels: Annotated[
        str, typer.Option("--guard-labels", help="Its labels that mean injection (comma-separated).")
    ] = "injection,jailbreak",
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest dataset upload (else 413).")
    ] = 512.0,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network (CIDR) of a proxy in front of the server whose "
            "X-Forwarded-For is believed (repeatable). None by default: the connection's "
            "address is the client's, as the failed-authentication limiter counts.",
        ),
    ] = None,
    alert_webhook: Annotated[
        str | None,
        typer.Option("--alert-webhook", help="POST the server's traffic alerts as JSON to this URL."),
    ] = None,
    refusal_delay: Annotated[
        float,
        typer.Option(
            "--refusal-delay",
            help="Seconds a client refused for failed authentications that keeps knocking "
            "waits for each further 429 (0: none).",
        ),
    ] = 1.0,
) -> None:
    """Serve the workspace's deployments over HTTP (OpenAPI docs at /docs); Ctrl-C stops it gracefully."""
    from llmos.api.server import serve as run
    from llmos.serve.runtime import ServeConfig

    if not 0 < port < 65536:
        from llmos.core.errors import UsageError

        raise UsageError(f"--port must be between 1 and 65535, not {port}")
    if workers < 1:
        from llmos.core.errors import UsageError

        raise UsageError(f"--workers must be at least 1, not {workers}")
    if max_upload_mb <= 0:
        from llmos.core.errors import UsageError

        raise UsageError(f"--max-upload-mb must be positive, not {max_upload_mb:g}")
    if max_new_tokens < 1:
        from llmos.core.errors import UsageError

        raise UsageError(f"--max-new-tokens must be at least 1, not {max_new_tokens}")
    if alert_webhook is not None and not alert_webhook.startswith(("http://", "https://")):
        from llmos.core.errors import UsageError

        raise UsageError(f"--alert-webhook {alert_webhook!r} is not an http:// or https:// URL")
    if refusal_delay < 0:
        from llmos.core.errors import UsageError

        raise UsageError(f"--refusal-delay must be 0 or more seconds, not {refusal_delay:g}")
    proxies = _proxies(trusted_proxy or [])
    config = ServeConfig(
        trusted_proxies=proxies,
        refusal_delay_s=refusal_delay,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        timeout_s=timeout,
        max_inputs=max_inputs,
        max_input_chars=max_input_chars,
        adapter_budget_mb=adapter_budget_mb,
        max_adapters=max_adapters,
        workers=workers,
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_new_tokens=max_new_tokens,
    )
    ws = STATE.workspace
    ws.init()
    policy = _policy(
        ws.store, insecure_no_auth, guard, rate_limit, burst, daily_quota, guard_classifier, guard_labels
    )
    if alert_webhook is not None and hasattr(policy, "alert_webhook"):
        policy.alert_webhook = alert_webhook
    out.print(f"serving {len(ws.deployments())} deployments at http://{host}:{port} (docs at /docs)")
    run(ws.store, host, port, config, policy=policy, graceful_s=graceful)
    out.print("stopped")


def _proxies(given: list[str]) -> tuple[str, ...]:
    """`--trusted-proxy` values, each an IP address or network (a UsageError naming a bad one)."""
    import ipaddress

    from llmos.core.errors import UsageError

    found = []
    for value in given:
        for part in (p.strip() for p in value.split(",")):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise UsageError(
                    f"--trusted-proxy {part!r} is not an IP address or network (as 10.0.0.5, 10.0.0.0/24)"
                ) from None
            found.append(part)
    return tuple(found)


def _policy(store: Any, insecure: bool, mode: str, rate: float | None, burst: int | None,
            quota: int | None, classifier: str | None, labels: str) -> Any:  # fmt: skip
    """The security layer's token policy and guard, or (--insecure-no-auth) none, loudly."""
    from llmos.cli.output import err
    from llmos.security.access import OPEN_WARNING
    from llmos.security.guard import GuardConfig
    from llmos.security.identities import has_admin
    from llmos.security.policy import build_policy

    if insecure:
        err.print(f"[bold red]WARNING:[/bold red] --insecure-no-auth: {OPEN_WARNING}")
        return build_policy(store, insecure=True)

    config = GuardConfig(
        mode=mode,  # type: ignore[arg-type]  # checked by GuardConfig.check
        rate_per_s=rate,
        burst=burst,
        daily_requests=quota,
        classifier=classifier,
        classifier_labels=tuple(x.strip() for x in labels.split(",") if x.strip()),
    )
    policy = build_policy(store, guard=config)
    if not has_admin(store):
        err.print("no users yet: every request will get 401; create the first admin with `llmos auth init`")
    return policy


def deploy(
    model: Annotated[
        str, typer.Argument(help="NAME[@V] of a registered model, or a zoo alias (smollm2-135m, minilm).")
    ],
    name: Annotated[str, typer.Option("--name", help="The deployment name clients call.")],
    optimize: Annotated[
        str | None,
        typer.Option(
            "--optimize",
            help="How a fine-tuned text classifier runs. Default: ONNX Runtime (fp32, same "
            "outputs) for a whole classifier on a CPU, falling back to torch when it cannot be "
            "exported; onnx (ONNX Runtime, a load that fails says so; also for an adapter), "
            "onnx-int8 (ONNX Runtime on int8 weights), int8 (dynamic quantisation) or torch "
            "(no speed-up).",
        ),
    ] = None,
    pin: Annotated[bool, typer.Option("--pin", help="Never evict this deployment's adapter.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a deployment, or re-point an existing one (atomically) at another model."""
    info = STATE.backend.deploy(model, name, optimize=optimize, pin=pin)
    if json_out:
        print_json(info.as_json())
        return
    verb = "deployed" if info.revision == 1 else f"re-pointed (revision {info.revision})"
    out.print(f"{verb}: {info.name} -> {info.model} ({info.kind})")


def undeploy(
    name: Annotated[str, typer.Argument(help="The deployment to remove.")], json_out: JsonOpt = False
) -> None:
    """Remove a deployment (a running server frees its memory on its next use)."""
    info = STATE.backend.undeploy(name)
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"undeployed {info.name} (was {info.model})")


def _backend(url: str | None) -> Any:
    """The verb's own --url (kept for scripts written before the global one), else the global choice."""
    if url:
        from llmos.sdk.client import Client

        return Client(url, token=STATE.token)
    return STATE.backend


@app.command("list")
def list_(url: UrlOpt = None, json_out: JsonOpt = False) -> None:
    """Every deployment and the model it points at."""
    rows = [r.as_json() for r in _backend(url).deployments()]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        ["name", "model", "kind", "optimize", "pinned", "revision", "updated"],
        [
            (
                r["name"],
                r["model"],
                r["kind"],
                r["optimize"] or "default",
                r["pinned"],
                r["revision"],
                r["updated_at"],
            )
            for r in rows
        ],
    )


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One deployment; with --url, also where its model is in the server's memory."""
    remote = bool(url) or STATE.remote
    info = _backend(url).deployment(name).as_json()
    if json_out:
        print_json(info)
        return
    out.print(
        f"[bold]{info['name']}[/bold] -> {info['model']}  ({info['kind']}, revision {info['revision']})"
    )
    memory = info.get("memory")
    if memory:
        out.print("memory: " + "  ".join(f"{k} {v}" for k, v in memory.items()))
    elif remote:
        out.print("memory: not loaded yet (loads on the first request)")
    server = info.get("server")
    if server:
        out.print("server: " + "  ".join(f"{k} {v}" for k, v in server.items()))


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)
    root.command("deploy")(deploy)
    root.command("undeploy")(undeploy)
    root.add_typer(app, name="deployments")
