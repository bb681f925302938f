"""Development tools beside the layers: the Bytemark sandbox, the demo, the process harness.

No production module imports this package (an import-linter contract); the CLI finds its
commands through the `bytemark_ticket_cache.commands` entry-point group.
"""
