"""FerretDB fixtures for every suite: a real MongoDB-wire server, never a mock.

`ferretdb_server` is one process per session (the contract suites); `ferretdb_process` is one per
test, for tests that kill or restart it. A missing binary FAILS with the command that builds it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.ferretdb import FerretDB, FerretDBMissing
from tests.traces import spans  # noqa: F401 - the in-memory tracing fixture, for every suite


def _started(server: FerretDB) -> FerretDB:
    try:
        return server.start()
    except FerretDBMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    server = _started(FerretDB(tmp_path_factory.mktemp("ferretdb-session")))
    yield server
    server.stop()


@pytest.fixture
def ferretdb_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    server = _started(FerretDB(tmp_path_factory.mktemp("ferretdb")))
    yield server
    server.stop()


_FERRETDB_FIXTURES = {"ferretdb_server", "ferretdb_process"}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that talks to FerretDB `mongo_wire`: `make test` runs them a second time
    under TEST_MONGODB_PROFILE=mongodb (the strategies a real MongoDB gets)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        name = item.nodeid.lower()
        if fixtures & _FERRETDB_FIXTURES or "ferretdb" in name or "mongo" in name:
            item.add_marker(pytest.mark.mongo_wire)
