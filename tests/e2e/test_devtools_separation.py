"""The development tools (sandbox, demo) stay out of a production `serve` process."""

from __future__ import annotations

from pathlib import Path

from devtools.harness import SandboxProcess, start_server


def test_serve_never_imports_the_development_tools(sandbox: SandboxProcess, work_dir: Path) -> None:
    # PYTHONPROFILEIMPORTTIME makes the real server print every module it imports to its log.
    server = start_server(sandbox, work_dir, PYTHONPROFILEIMPORTTIME="1")
    try:
        imported = server.logs()
        assert "adapters.driving.grpc_api.server" in imported  # the import listing is really there
        assert "devtools" not in imported
    finally:
        server.stop()
