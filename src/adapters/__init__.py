"""Adapters: the concrete outside world (HTTP, databases, Slack, gRPC). Only
`adapters.container` chooses among them."""
