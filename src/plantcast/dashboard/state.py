"""Long-lived objects shared by every session of the page: the store and the model caches."""

from __future__ import annotations

import os

import streamlit as st

from plantcast.services.context import open_store
from plantcast.services.forecasting import Forecasting
from plantcast.services.model_board import ModelBoard
from plantcast.store import Store

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
