"""Security: identities, roles and tokens (`identities`), the HTTP policy that checks
them on every route (`policy`), and the request guard (`guard`: rate limits, quotas,
prompt-injection screening). Audit events are stored by `llmos.store.audit`."""
