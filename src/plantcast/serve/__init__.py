"""Running plantcast on a plant: one TOML file (``config``), one supervisor of the long-running
commands as processes (``supervisor``), the scheduled jobs (``jobs``), and what ``serve``
exposes of them (``metrics``).

``plantcast serve --config plant.toml`` reads the file, starts each component as
``python -m plantcast …`` (a connector per block, ``detect --follow``, ``notify run``, ``api``,
``dashboard``, ``jobs``), restarts one that dies with exponential backoff, and writes each
component's state to the store, where ``plantcast status`` and the API's ``/health`` read it.
"""
