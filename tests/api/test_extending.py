"""docs/howto/extending.md runs: its python blocks, executed in order in one namespace."""

import re
from pathlib import Path

PAGE = Path(__file__).parent.parent.parent / "docs" / "howto" / "extending.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def code_blocks():
    return BLOCK.findall(PAGE.read_text())


def test_the_page_has_a_kernel_and_a_flow_each_under_60_lines():
    blocks = code_blocks()
    kernel = next(block for block in blocks if "(fm.AbstractLocalKernel)" in block)
    flow = next(block for block in blocks if "(fm.AbstractFlow)" in block)
    assert len(kernel.splitlines()) < 60 and len(flow.splitlines()) < 60
    assert "def adaptation" not in kernel


def test_the_page_runs():
    namespace = {"__name__": "extending_page"}
    for index, block in enumerate(code_blocks()):
        exec(compile(block, f"{PAGE.name}[block {index}]", "exec"), namespace)
    assert namespace["report"].passed
