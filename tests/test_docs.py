"""The docs site builds with `mkdocs build --strict`: no warning, no broken link.

The tutorial notebooks are pages of the site (docs_hooks/notebooks.py). The quick build
renders them without outputs; the slow build takes the copies the notebook jobs of
tests/background.py executed, so the notebooks run once per session.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import background

REPO = Path(__file__).parent.parent


def build_site(site_dir: Path, **env: str) -> None:
    """Run `mkdocs build --strict` into ``site_dir`` with extra environment variables."""
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def tutorial_pages(site_dir: Path) -> dict[str, str]:
    """The built page of each notebook, by notebook name; every one must exist."""
    pages = {}
    for path in background.NOTEBOOKS:
        page = site_dir / "tutorials" / path.stem / "index.html"
        assert page.is_file(), f"no page for {path.name}"
        pages[path.stem] = page.read_text()
    return pages


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_jupyter")
    build_site(tmp_path, FLOWMC_LIKE_NOTEBOOKS="unexecuted")
    assert (tmp_path / "index.html").exists()
    api = (tmp_path / "api" / "index.html").read_text()
    assert "flowmc_like.Sampler" in api and "from_numpyro" in api
    pages = tutorial_pages(tmp_path)
    assert len(pages) == 6
    assert "Dual moon" in pages["02_dual_moon_flows"]
    index = (tmp_path / "index.html").read_text()
    assert 'href="tutorials/02_dual_moon_flows/"' in index


@pytest.mark.slow
def test_mkdocs_build_with_executed_notebooks(tmp_path):
    pytest.importorskip("mkdocs_jupyter")
    pytest.importorskip("nbclient")
    for path in background.NOTEBOOKS:
        outcome = background.outcome(f"notebook:{path.stem}")
        assert outcome.returncode == 0, outcome.stdout[-2000:] + outcome.stderr[-6000:]
    executed = background.executed_notebooks_dir()
    build_site(tmp_path, FLOWMC_LIKE_EXECUTED_NOTEBOOKS=str(executed))
    pages = tutorial_pages(tmp_path)
    assert "data:image/png;base64" in pages["02_dual_moon_flows"]
