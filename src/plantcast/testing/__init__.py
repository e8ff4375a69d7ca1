"""Testing: helpers the test suite and the benchmarks share, never imported by the application.

Both run real services on this machine rather than mocks: ``mosquitto`` starts a broker of
their own on a free port with the settings the README's "nothing lost" depends on. They live in
the package, not under ``tests/``, so that the benchmarks can use them without importing the test
suite (the two folders are separate entry points, neither a package).
"""
