"""Core: configuration, time helpers, errors and domain types shared by every layer.

Nothing here does I/O beyond reading the environment; every other layer may import it.
"""
