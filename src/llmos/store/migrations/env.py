"""Alembic's environment for the workspace database: run on the connection that
`llmos.store.migrations.upgrade` opened (and locked), never from an ini file's URL."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
