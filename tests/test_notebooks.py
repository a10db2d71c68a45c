"""Every tutorial notebook runs without error (small settings: FLOWMC_LIKE_NOTEBOOK_QUICK=1).

Each notebook is executed with nbclient in a fresh kernel, by a background job that starts
when the tests are collected (tests/background.py); the test waits for its outcome. The job
also keeps the executed notebook, which tests/test_docs.py renders in the docs site.
"""

import json

import pytest

from tests import background

NOTEBOOKS = background.NOTEBOOKS


def test_the_notebooks_are_stored_without_outputs():
    assert len(NOTEBOOKS) == 6, NOTEBOOKS
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    outcome = background.outcome(f"notebook:{path.stem}")
    assert outcome.returncode == 0, outcome.stdout[-2000:] + outcome.stderr[-6000:]
    assert f"{path.name}: ok" in outcome.stdout
