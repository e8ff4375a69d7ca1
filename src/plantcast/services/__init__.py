"""Services: the use cases — where stored data meets models.

Surfaces (CLI, dashboard) call these functions and show their results; nothing here prints or
draws. Each function takes an open :class:`~plantcast.store.Store` and plain arguments.
"""
