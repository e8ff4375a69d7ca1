"""The page's AppTest fixtures, a pytest plugin (``tests/conftest.py`` names it): fresh Streamlit
caches, a database the page is pointed at as a user, and a page opened on one of its screens.

A module names its user by overriding ``page_user``, and fills the database by a ``page_db``
fixture of its own over ``page_store``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

from plantcast.core.errors import PlantcastError
from plantcast.store import Store

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

# Streamlit is imported inside the fixtures: every test session loads this plugin.


@pytest.fixture
def fresh_resources():
    """Each test gets its own store and caches; what the page ran in the background ends with
    the test."""
    import streamlit as st

    from plantcast.dashboard import state

    st.cache_resource.clear()
    yield
    with contextlib.suppress(PlantcastError):  # a test may point at a database that is down
        state.forecasting().wait()
        state.model_board().shutdown()
        state.store().close()
    st.cache_resource.clear()


@pytest.fixture
def page_user() -> str:
    """Who uses the page (``PLANTCAST_USER``); a module overrides it."""
    return "ada"


@pytest.fixture
def page_store(sqlite_url, monkeypatch, page_user, fresh_resources):
    """An empty SQLite database, the page pointed at it and used by ``page_user``."""
    store = Store.open(sqlite_url)
    store.init()
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PLANTCAST_USER", page_user)
    yield store
    store.close()


def open_page(screen: str) -> AppTest:
    """The app run, then switched to ``screens/<screen>``, with no exception on the way."""
    from streamlit.testing.v1 import AppTest

    import plantcast.dashboard

    at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
    at.run()
    at.switch_page(f"screens/{screen}").run()
    assert not at.exception, [e.value for e in at.exception]
    return at
