"""Alembic environment: runs on the connection handed over by :func:`collectors.storage.migrate.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from collectors.storage.schema import Base

connection = context.config.attributes["connection"]
is_sqlite = connection.dialect.name == "sqlite"

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=is_sqlite,  # SQLite cannot ALTER most things; batch mode copies the table
    transaction_per_migration=True,
    compare_type=True,
)

if connection.dialect.name == "postgresql":
    # Two hosts upgrading one shared database at once must not interleave: take a session lock first.
    connection.execute(text("SELECT pg_advisory_lock(7419053)"))
    connection.commit()
try:
    with context.begin_transaction():
        context.run_migrations()
finally:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_unlock(7419053)"))
        connection.commit()
