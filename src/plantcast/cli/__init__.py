"""CLI: a thin surface — parse options, call a service or source, print the result."""
