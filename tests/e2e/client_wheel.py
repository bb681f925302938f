"""Build the Python client as a wheel and sdist, and install the wheel into fresh virtualenvs at
either end of its dependency ranges, the way a caller's project would get it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PACKAGE = ROOT / "clients" / "python"
UV = Path(sys.executable).parent / "uv"
RANGED = ("grpcio", "protobuf", "googleapis-common-protos")


def build_distributions(out_dir: Path) -> tuple[Path, Path]:
    """`uv build`: the sdist, then the wheel built from that sdist (so the sdist is complete)."""
    subprocess.run([UV, "build", "--quiet", "--out-dir", out_dir, CLIENT_PACKAGE], check=True, timeout=300)
    (wheel,) = out_dir.glob("*.whl")
    (sdist,) = out_dir.glob("*.tar.gz")
    return wheel, sdist


def declared_floors(wheel: Path) -> dict[str, str]:
    """The lower bound of each ranged dependency, as the wheel's metadata states it."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    floors = {}
    for requirement in map(Requirement, metadata.get_all("Requires-Dist") or []):
        if requirement.name in RANGED and requirement.marker is None:
            (floor,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
            floors[requirement.name] = floor
    return floors


def install_wheel(wheel: Path, venv: Path, end: str) -> Path:
    """A fresh virtualenv holding the wheel, with grpcio/protobuf at `end` of their ranges: "lowest"
    pins the declared floors, "newest" lets the resolver take the newest releases; its python."""
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    pins = [f"{name}=={floor}" for name, floor in declared_floors(wheel).items()] if end == "lowest" else []
    subprocess.run(
        [UV, "pip", "install", "--quiet", "--python", python, "--resolution", "highest", wheel, *pins],
        check=True,
        timeout=600,
    )
    return python


def installed_versions(python: Path) -> dict[str, str]:
    probe = "import importlib.metadata as m, json, sys; "
    probe += "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    done = subprocess.run([python, "-c", probe, *RANGED], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))
