"""Read what the Dockerfile's runtime stage does, so a test can do exactly the same outside a container."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


@dataclass(frozen=True)
class ImageRecipe:
    uv_version: str  # the uv the build stage installs
    install_args: list[str]  # arguments after `uv pip install` in the build stage
    copied: list[str]  # build-context paths the build stage copies
    env: dict[str, str]  # ENV of the final stage
    argv: list[str]  # ENTRYPOINT + CMD
    user: str


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = text.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and not line.startswith("#"))
    ]


def read_recipe(path: Path = DOCKERFILE) -> ImageRecipe:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(path.read_text()):
        if instruction[0] == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append(instruction)
    build, final = stages[0], stages[-1]
    runs = [rest for word, rest in build if word == "RUN"]
    uv_version = next(rest.split("uv==", 1)[1].split()[0] for rest in runs if "uv==" in rest)
    install = next(rest for rest in runs if "uv pip install " in rest)
    copied = [p for word, rest in build if word == "COPY" for p in shlex.split(rest)[:-1]]
    env: dict[str, str] = {}
    for word, rest in final:
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    values = {word: rest for word, rest in final}
    return ImageRecipe(
        uv_version=uv_version,
        install_args=shlex.split(install.split("uv pip install ", 1)[1]),
        copied=copied,
        env=env,
        argv=json.loads(values["ENTRYPOINT"]) + json.loads(values["CMD"]),
        user=values["USER"],
    )
