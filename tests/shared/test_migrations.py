"""Every revision upgrades and downgrades on SQLite and PostgreSQL, and matches the models."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from shared.migrate import downgrade, upgrade
from shared.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    if not os.environ.get("FORCEBOT_TEST_DATABASE_URL"):
        pytest.skip("FORCEBOT_TEST_DATABASE_URL is not set")
    from tests.conftest import _postgres_database

    gen = _postgres_database(os.environ["FORCEBOT_TEST_DATABASE_URL"])
    yield next(gen)
    next(gen, None)


def test_upgrade_downgrade_upgrade(empty_url):
    upgrade(empty_url)
    engine = create_engine(empty_url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    engine.dispose()

    downgrade(empty_url, "base")
    engine = create_engine(empty_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(empty_url)
