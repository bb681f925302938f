"""The composition root: settings read from the environment, and the container that picks and
wires the adapters. The only place that names concrete driven adapters for the driving ones."""
