"""Every shell, Python or JavaScript example in README.md and docs/ is either run by a test (the
RUNNERS below) or marked `<!-- not run: <reason> -->` on the line above it, so no example rots
unnoticed."""

from __future__ import annotations

import re

import pytest

from tests.docs.markdown import ROOT, Block, blocks, pages

EXAMPLE_LANGUAGES = {"sh", "bash", "shell", "console", "python", "py", "js", "javascript", "ts", "typescript"}

#: (page, heading the block sits under, language) -> the test that runs it.
RUNNERS = {
    ("README.md", "Try it with grpcurl (against `make run`)", "sh"): "tests/e2e/test_demo_readme.py",
    ("docs/calling.md", "The CLI's client commands", "sh"): "tests/e2e/test_readme_calling.py",
    ("docs/calling.md", "Python", "python"): "tests/e2e/test_readme_calling.py",
    ("docs/calling.md", "Node", "js"): "tests/e2e/test_readme_calling.py",
    ("docs/change-feed.md", "Watch and resume with grpcurl", "sh"): "tests/e2e/test_readme_watch.py",
    ("docs/dry-run.md", "Try it with grpcurl", "sh"): "tests/e2e/test_dry_run.py",
    ("docs/http-json.md", "Try it against `make run`", "sh"): "tests/e2e/test_http_docs.py",
}
NOT_RUN = re.compile(r"<!-- not run: (\S.*\S) -->")

EXAMPLES = [block for page in pages() for block in blocks(page) if block.language in EXAMPLE_LANGUAGES]


@pytest.mark.parametrize("block", EXAMPLES, ids=[block.where() for block in EXAMPLES])
def test_each_example_is_run_by_a_test_or_says_why_not(block: Block) -> None:
    runner = RUNNERS.get((block.page, block.heading, block.language))
    assert runner or NOT_RUN.fullmatch(block.mark), (
        f"{block.where()}: add its runner to RUNNERS, or put '<!-- not run: <why> -->' on the line above"
    )
    assert not (runner and block.mark), f"{block.where()} is run by {runner} but marked '{block.mark}'"


@pytest.mark.parametrize(("key", "runner"), RUNNERS.items(), ids=[" ".join(key) for key in RUNNERS])
def test_each_runner_reads_the_page_of_its_example(key: tuple[str, str, str], runner: str) -> None:
    page, heading, language = key
    assert any((b.page, b.heading, b.language) == key for b in EXAMPLES), (
        f"{page} has no ```{language} block under '{heading}' any more: update RUNNERS"
    )
    source = (ROOT / runner).read_text()
    assert f'"{page.rsplit("/", 1)[-1]}"' in source, f"{runner} does not read {page}"


def test_the_readme_stays_a_front_page() -> None:
    assert (ROOT / "README.md").stat().st_size <= 12 * 1024, "README.md over 12 KB: move detail into docs/"
