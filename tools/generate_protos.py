"""Generate the Python protobuf/gRPC code (and its type stubs) and the Connect stubs from protos/ into
the client package, clients/python/src/bytemark/: the server depends on that package, so there is one
copy of it. The Connect stubs (`*_connect.py`, protoc-gen-connectrpc with `protobuf=google`, so they
use the same google.protobuf messages) serve HTTP_LISTEN and back the client's `connect` extra.

Usage:
    python tools/generate_protos.py          # regenerate the committed files
    python tools/generate_protos.py --check  # exit 1 when the committed files are stale

Generated files are committed so that installing the service needs no protoc; `--check`
(run in CI) keeps them in step with the .proto sources.

google/rpc/*.proto (google.rpc.Status and its error details, imported by our protos) are copied
from the installed googleapis-common-protos into third_party/googleapis/, where buf (a second
module of buf.yaml) and the TypeScript generation find them; their Python code is that package's
own, so nothing is generated for them here. `--check` fails when the copies differ from it.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from google.rpc import status_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUTPUT_ROOT = ROOT / "clients" / "python" / "src"
#: The one package of generated code: the client package ships it, adapters.driving.grpc_api imports it.
GENERATED_PACKAGE = "bytemark"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi", "_connect.py")
#: The googleapis protos our protos import, copied from googleapis-common-protos (see above).
VENDORED_ROOT = ROOT / "third_party" / "googleapis"
VENDORED_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")
INIT_DOCSTRING = '"""Generated protobuf/gRPC code; regenerate with tools/generate_protos.py."""\n'


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def installed_googleapis_root() -> Path:
    """The directory that holds googleapis-common-protos' google/rpc/*.proto."""
    return Path(status_pb2.__file__).resolve().parent.parent.parent


def stale_vendored_protos() -> list[str]:
    installed = installed_googleapis_root()
    return [
        f"differs from googleapis-common-protos: {VENDORED_ROOT.relative_to(ROOT) / name}"
        for name in VENDORED_PROTOS
        if not (VENDORED_ROOT / name).exists()
        or not filecmp.cmp(installed / name, VENDORED_ROOT / name, shallow=False)
    ]


def copy_vendored_protos() -> None:
    installed = installed_googleapis_root()
    for name in VENDORED_PROTOS:
        (VENDORED_ROOT / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(installed / name, VENDORED_ROOT / name)


def plugin(name: str) -> str:
    """The plugins (mypy-protobuf's, protoc-gen-connectrpc) live next to this interpreter (the venv),
    which may not be on PATH."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        sys.exit(f"{name} not found next to {sys.executable}; install the dev dependencies")
    return f"--plugin={name}={path}"


def run_protoc(output_root: Path) -> None:
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    if not files:
        sys.exit(f"no .proto files under {PROTO_ROOT}")
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",  # adds the bundled well-known types (google/protobuf/*.proto)
        f"-I{PROTO_ROOT}",
        f"-I{VENDORED_ROOT}",
        plugin("protoc-gen-mypy"),
        plugin("protoc-gen-mypy_grpc"),
        plugin("protoc-gen-connectrpc"),
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        # Without protobuf=google the stubs would target protobuf-py, another message runtime.
        f"--connectrpc_out=protobuf=google:{output_root}",
        *files,
    ]
    # protoc's plugins chat on stderr ("Writing mypy to ..."); show it only when it failed
    completed = subprocess.run(command, cwd=PROTO_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit("protoc failed (see above)")
    add_package_markers(output_root)


def add_package_markers(output_root: Path) -> None:
    """Make every generated directory a regular package (protoc writes none)."""
    for directory in {p.parent for p in (output_root / GENERATED_PACKAGE).rglob("*_pb2.py")}:
        while directory != output_root:
            init = directory / "__init__.py"
            if not init.exists():
                init.write_text(INIT_DOCSTRING)
            directory = directory.parent


def generated_files(root: Path) -> set[Path]:
    package = root / GENERATED_PACKAGE
    if not package.exists():
        return set()
    return {
        p.relative_to(root)
        for p in package.rglob("*")
        if p.is_file() and (p.name.endswith(GENERATED_SUFFIXES) or p.name == "__init__.py")
    }


def stale_files(fresh_root: Path) -> list[str]:
    """Files that differ between a fresh generation and the committed tree, with why."""
    fresh, committed = generated_files(fresh_root), generated_files(OUTPUT_ROOT)
    problems = [f"missing: {p}" for p in sorted(fresh - committed)]
    problems += [f"not generated by protos/ (delete it): {p}" for p in sorted(committed - fresh)]
    problems += [
        f"differs: {p}"
        for p in sorted(fresh & committed)
        # __init__.py files are hand-editable markers; only their presence matters
        if p.name != "__init__.py" and not filecmp.cmp(fresh_root / p, OUTPUT_ROOT / p, shallow=False)
    ]
    return problems


def check() -> int:
    with tempfile.TemporaryDirectory(prefix="protos-check-") as tmp:
        fresh_root = Path(tmp)
        run_protoc(fresh_root)
        problems = stale_files(fresh_root) + stale_vendored_protos()
    if problems:
        print("Generated protobuf code is stale; run `python tools/generate_protos.py`:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("Generated protobuf code is up to date.")
    return 0


def generate() -> int:
    copy_vendored_protos()
    # Generate aside first so a protoc failure leaves the committed files untouched.
    with tempfile.TemporaryDirectory(prefix="protos-gen-") as tmp:
        fresh_root = Path(tmp)
        run_protoc(fresh_root)
        fresh = generated_files(fresh_root)
        # Files of removed .proto sources must not linger.
        for relative in generated_files(OUTPUT_ROOT) - fresh:
            (OUTPUT_ROOT / relative).unlink()
        for relative in fresh:
            target = OUTPUT_ROOT / relative
            if relative.name == "__init__.py" and target.exists():
                continue  # keep hand-edited package markers
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh_root / relative, target)
    print(f"Generated {GENERATED_PACKAGE}/ under {OUTPUT_ROOT.relative_to(ROOT)}/.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed generated code is stale")
    args = parser.parse_args(argv)
    return check() if args.check else generate()


if __name__ == "__main__":
    sys.exit(main())
