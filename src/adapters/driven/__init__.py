"""Adapters the application drives: stores, Bytemark, Slack, the clock, metrics sinks.

Each implements ports of `application.ports`; none imports another or any driving adapter."""
