"""Adapters: the concrete outside world.

- `driving`: what drives the application (the gRPC API, both command lines, the worker processes,
  the `/metrics` endpoint);
- `driven`: what the application drives (stores, Bytemark, Slack, the clock, metrics sinks);
- `composition`: the composition root (settings and the container), the only place that picks
  concrete driven adapters;
- `common`: helpers every adapter may use (logging, exact JSON text)."""
