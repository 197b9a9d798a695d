"""README.md's Python examples run as written, and each one's closing expression
gives what it shows (a listing that matches something, not an empty one)."""

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_a_readme_python_example_runs_as_written(code):
    tree = ast.parse(code)
    last = tree.body[-1]
    namespace: dict = {}
    body = tree.body[:-1] if isinstance(last, ast.Expr) else tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), "README.md", "exec"), namespace)
    if isinstance(last, ast.Expr):
        value = eval(compile(ast.Expression(last.value), "README.md", "eval"), namespace)
        assert value, f"the example's last line gives {value!r}"
