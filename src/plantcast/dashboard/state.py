"""Long-lived objects shared by every session of the page: the store and the model caches."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from plantcast.core.errors import PlantcastError, StoreUnavailable
from plantcast.services.context import open_store
from plantcast.services.forecasting import Forecasting
from plantcast.services.model_board import ModelBoard
from plantcast.store import Store

T = TypeVar("T")

# How often the live parts of a page redraw (PLANTCAST_REFRESH_SECONDS, 5 s by default).
REFRESH = f"{float(os.environ.get('PLANTCAST_REFRESH_SECONDS', '5'))}s"


@st.cache_resource(show_spinner=False)
def store() -> Store:
    # The URL comes from the environment (PLANTCAST_DATABASE_URL), set by `plantcast dashboard`.
    return open_store(None, init=True)


@st.cache_resource(show_spinner=False)
def forecasting() -> Forecasting:
    return Forecasting(background=True)  # interval calibration never blocks a refresh


@st.cache_resource(show_spinner=False)
def model_board() -> ModelBoard:
    return ModelBoard()


def load(read: Callable[[], T]) -> T | None:
    """``read()``, or None once the page has said why the store could not answer.

    Every page starts by reading what it lists (sensors, assets, the person): an unreachable
    database gets a Retry button (a rerun tries again), any other refusal its own message.
    """
    try:
        return read()
    except StoreUnavailable as exc:
        st.error(f"Cannot reach the database: {exc}")
        st.button("Retry")
        return None
    except PlantcastError as exc:
        st.error(str(exc))
        return None
