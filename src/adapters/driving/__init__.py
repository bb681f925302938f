"""Adapters that drive the application: the gRPC API, the command lines, the worker processes.

They reach concrete driven adapters only through the composition root (`adapters.composition`)."""
