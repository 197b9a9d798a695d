"""Alembic environment: always run on a connection the registry hands over,
inside the transaction (and lock) the registry already holds."""

from alembic import context

from reszoo.zoo.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
context.run_migrations()
