"""The Python examples of README.md and the guides in docs/ run as written, and each
one's closing expression gives what it shows (a listing that matches something, not
an empty one). A block that cannot run in a test (it trains for minutes) says so on
the line before its fence: ``<!-- not run: why -->``."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"(<!-- not run: [^>]*-->\n)?```python\n(.*?)```", flags=re.S)


def python_blocks(path: Path) -> list[tuple[str, str, bool]]:
    """(id, code, runs) for each ```python block of ``path``."""
    return [
        (f"{path.relative_to(ROOT)}:{i}", m.group(2), m.group(1) is None)
        for i, m in enumerate(FENCE.finditer(path.read_text()))
    ]


BLOCKS = [block for path in [README, *GUIDES] for block in python_blocks(path)]


def test_the_readme_has_python_examples():
    assert sum(1 for id_, _, runs in BLOCKS if id_.startswith("README.md") and runs) >= 2


@pytest.mark.parametrize("code", [pytest.param(code, id=id_) for id_, code, runs in BLOCKS if runs])
def test_a_python_example_runs_as_written(code):
    tree = ast.parse(code)
    last = tree.body[-1]
    namespace: dict = {}
    body = tree.body[:-1] if isinstance(last, ast.Expr) else tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), "example", "exec"), namespace)
    if isinstance(last, ast.Expr):
        value = eval(compile(ast.Expression(last.value), "example", "eval"), namespace)
        assert value, f"the example's last line gives {value!r}"


@pytest.mark.parametrize("code", [pytest.param(code, id=id_) for id_, code, runs in BLOCKS if not runs])
def test_an_example_not_run_still_parses(code):
    ast.parse(code)
