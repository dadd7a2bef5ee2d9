"""Every ```python block of docs/*.md and README.md runs as written.

The blocks of one page run in order in one namespace, in a fresh temporary working directory that is also first
on sys.path. Markers, an HTML comment on the line just before a block:

    <!-- not-run: needs a GPU -->     the block is compiled (a syntax error still fails) but not run; the test
                                      reports it as skipped with the reason
    <!-- file: my_layers.py -->       the block is also appended to that file in the working directory, so a
                                      later block (or a pytest file) can import it

The compilation cache is pointed at the temporary directory while a page runs (README clears "the cache in
use"), and jax's x64 flag is restored afterwards.
"""
from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\s*$")
MARKER = re.compile(r"^<!--\s*(not-run|file):\s*(.*?)\s*-->\s*$")


class Block:
    def __init__(self, page: str, line: int, code: str, marker: tuple | None):
        self.page, self.line, self.code = page, line, code
        self.not_run = marker[1] if marker and marker[0] == "not-run" else None
        self.file = marker[1] if marker and marker[0] == "file" else None

    def __repr__(self):
        return f"{self.page}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The ```python blocks of a markdown file, with the line number of their first code line and their marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    found, i = [], 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start, j = i + 1, i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                raise AssertionError(f"{page}:{i + 1}: a ```python block is never closed")
            marker = MARKER.match(lines[i - 1].strip()) if i > 0 else None
            found.append(Block(page, start + 1, "\n".join(lines[start:j]) + "\n", marker.groups() if marker else None))
            i = j
        i += 1
    return found


PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
ALL = [b for page in PAGES for b in blocks(page)]


def test_markers_and_line_numbers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n<!-- not-run: needs a GPU -->\n```python\ny = 2\n```\n"
                    "<!-- file: mod.py -->\n```python\nz = 3\n```\n```bash\nls\n```\n", encoding="utf-8")
    first, second, third = blocks(page)
    assert (first.line, first.code, first.not_run, first.file) == (4, "x = 1\n", None, None)
    assert (second.line, second.not_run) == (8, "needs a GPU")
    assert (third.line, third.file, third.not_run) == (12, "mod.py", None)


def test_the_pages_have_examples():
    assert len(ALL) >= 10 and {b.page for b in ALL} >= {"README.md", "docs/quickstart.md"}


@pytest.mark.parametrize("block", ALL, ids=repr)
def test_every_block_compiles(block):
    compile(block.code, repr(block), "exec")


@pytest.mark.parametrize("block", [b for b in ALL if b.not_run], ids=repr)
def test_blocks_marked_not_run(block):
    assert block.not_run, f"{block}: a not-run marker needs its reason: <!-- not-run: why -->"
    pytest.skip(f"{block}: not run ({block.not_run})")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory first on sys.path, the compilation cache inside it, x64 restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path)] + sys.path)
    monkeypatch.setenv("JAXNETS_CACHE_DIR", str(tmp_path / "xla"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = set(sys.modules)
    x64, cache = jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir
    yield tmp_path
    jax.config.update("jax_enable_x64", x64)
    if jax.config.jax_compilation_cache_dir != cache:
        import jaxnets

        if cache:
            jaxnets.enable_compilation_cache(cache)
        else:
            jax.config.update("jax_compilation_cache_dir", cache)
    for name in set(sys.modules) - before:   # the page's own modules (my_layers, ...) do not leak to the next
        if getattr(sys.modules[name], "__file__", None) and str(tmp_path) in str(sys.modules[name].__file__):
            del sys.modules[name]


def run_blocks(page_blocks: list[Block], workdir: Path) -> None:
    """Run the blocks in order in one namespace (writing file blocks into `workdir`); AssertionError naming the
    page and line of the first block that raises, with the traceback's last frames."""
    namespace = {"__name__": "__docs__"}
    for block in page_blocks:
        if block.file:
            with open(workdir / block.file, "a", encoding="utf-8") as f:
                f.write(block.code + "\n")
            # a module of that name imported earlier in this process (another test's my_layers.py) must not shadow it
            sys.modules.pop(Path(block.file).stem, None)
        if block.not_run:
            continue
        code = compile("\n" * (block.line - 1) + block.code, block.page, "exec")   # tracebacks give the page's lines
        try:
            exec(code, namespace)
        except Exception:
            raise AssertionError(f"the example at {block} failed:\n{traceback.format_exc(limit=-4)}") from None


def test_a_failing_block_is_reported_with_its_page_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n```python\ny = x + 1\nassert y == 3, y\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError) as failed:
        run_blocks(blocks(page), tmp_path)
    assert "the example at page.md:6 failed" in str(failed.value)
    assert 'File "page.md", line 7' in str(failed.value) and "AssertionError: 2" in str(failed.value)


@pytest.mark.parametrize("page", [p for p in PAGES if any(not b.not_run for b in blocks(p))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page, sandbox):
    try:
        run_blocks(blocks(page), sandbox)
    except AssertionError as err:
        pytest.fail(str(err), pytrace=False)
