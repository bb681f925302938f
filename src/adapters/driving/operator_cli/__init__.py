"""Operator commands of the CLI: client commands that call a running server, and `run` jobs
that execute the same bulk use cases in-process. Both print through one output module."""
