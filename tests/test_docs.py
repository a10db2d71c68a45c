"""The docs site builds with `mkdocs build --strict`: no warning, no broken link."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (tmp_path / "index.html").exists()
    api = (tmp_path / "api" / "index.html").read_text()
    assert "flowmc_like.Sampler" in api and "from_numpyro" in api
