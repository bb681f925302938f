"""The gRPC transport: servicer, conversions, status mapping, interceptors and server wiring.

The only package that imports the generated code in `bytemark` (besides its tests)."""
