"""mkdocs hook: the tutorial notebooks of ``notebooks/``, executed, as pages under ``tutorials/``.

The notebooks are stored without outputs. At each build this hook adds one file per notebook,
``tutorials/<name>.ipynb``, to the site's files, before the ``mkdocs-jupyter`` plugin turns
notebooks into pages. Which copy a page shows depends on the environment:

- by default, the notebook executed in a fresh kernel (nbclient), with its full settings. The
  executed copy is cached under ``.cache/notebooks/``, keyed by a hash of the notebook and the
  settings, so a rebuild (``mkdocs serve``) reuses it; a changed notebook runs again. Delete
  the directory to run every notebook again after a change to the library.
- ``FLOWMC_LIKE_EXECUTED_NOTEBOOKS=DIR``: the executed copies ``DIR/<name>.ipynb``, made
  elsewhere (the test suite writes them); their code cells must match the stored notebook's.
- ``FLOWMC_LIKE_NOTEBOOKS=unexecuted``: the stored notebooks, without outputs (quick builds).

``FLOWMC_LIKE_NOTEBOOK_QUICK=1`` executes the notebooks with small settings.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.plugins import CombinedEvent, event_priority
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
CACHE_DIR = REPO / ".cache" / "notebooks"
SITE_DIR = "tutorials"
EXECUTED_ENV = "FLOWMC_LIKE_EXECUTED_NOTEBOOKS"
MODE_ENV = "FLOWMC_LIKE_NOTEBOOKS"
QUICK_ENV = "FLOWMC_LIKE_NOTEBOOK_QUICK"
CELL_TIMEOUT_SECONDS = 3600


def notebook_sources(directory: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The stored notebooks, in name order."""
    return sorted(directory.glob("*.ipynb"))


def cache_key(source: Path, is_quick: bool) -> str:
    """A hash of the notebook's bytes and the settings it is executed with."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(f"quick={is_quick}".encode())
    return digest.hexdigest()[:16]


def kernel_environment(environ: dict[str, str]) -> dict[str, str]:
    """The kernel's environment: this one, plotting inline, importing this checkout first."""
    python_path = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH", "")]))
    return {
        **environ,
        "PYTHONPATH": python_path,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }


def execute_notebook(source: Path, destination: Path, env: dict[str, str]) -> None:
    """Execute ``source`` in a fresh kernel and write the executed notebook to ``destination``.

    The kernel runs in a temporary working directory, so files the notebook writes do not
    stay. ``destination`` appears only once execution has succeeded.

    Raises:
        PluginError: a cell raised; the message names the notebook and the error.
    """
    import nbclient
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    with tempfile.TemporaryDirectory() as workdir:
        client = nbclient.NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": workdir}},
        )
        try:
            client.execute(env=env)
        except nbclient.exceptions.CellExecutionError as error:
            raise PluginError(f"{source.name} failed:\n{error}") from error
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".partial")
    nbformat.write(notebook, partial)
    partial.replace(destination)


def code_sources(path: Path) -> list[str]:
    """The source of each code cell of a notebook."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def provided_copy(source: Path, directory: Path) -> Path:
    """The executed copy of ``source`` in ``directory``, checked to hold the same code.

    Raises:
        PluginError: the copy is missing or its code cells differ from the stored notebook's.
    """
    copy = directory / source.name
    if not copy.is_file():
        raise PluginError(f"{EXECUTED_ENV}={directory}: no executed copy {source.name}")
    if code_sources(copy) != code_sources(source):
        raise PluginError(f"{copy}: its code cells differ from {source}; execute it again")
    return copy


def cached_copy(source: Path, cache_dir: Path, environ: dict[str, str]) -> Path:
    """The executed copy of ``source`` from the cache, executing it first on a miss."""
    is_quick = environ.get(QUICK_ENV) == "1"
    copy = cache_dir / cache_key(source, is_quick) / source.name
    if not copy.is_file():
        execute_notebook(source, copy, kernel_environment(environ))
    return copy


def page_source(source: Path, environ: dict[str, str]) -> Path:
    """The notebook file the page of ``source`` is rendered from, by the environment's mode."""
    mode = environ.get(MODE_ENV, "executed")
    if mode == "unexecuted":
        return source
    if mode != "executed":
        raise PluginError(f"{MODE_ENV}={mode!r}; expected 'executed' or 'unexecuted'")
    if environ.get(EXECUTED_ENV):
        return provided_copy(source, Path(environ[EXECUTED_ENV]))
    return cached_copy(source, CACHE_DIR, environ)


def site_path(source: Path) -> str:
    """The notebook's path in the site's files: ``tutorials/<name>.ipynb``."""
    return f"{SITE_DIR}/{source.name}"


_page_sources: dict[str, str] = {}  # this build's notebook pages: site path -> file rendered


@event_priority(50)  # before mkdocs-jupyter's on_files, which turns notebooks into pages
def _add_notebooks(files: Files, config: MkDocsConfig) -> Files:
    """Add ``tutorials/<name>.ipynb`` for each notebook, from the copy the mode selects."""
    environ = dict(os.environ)
    _page_sources.clear()
    for source in notebook_sources():
        path = str(page_source(source, environ))
        _page_sources[site_path(source)] = path
        files.append(File.generated(config, site_path(source), abs_src_path=path))
    return files


@event_priority(-50)  # after mkdocs-jupyter's on_files
def _restore_source_paths(files: Files, config: MkDocsConfig) -> Files:
    """Give the notebook pages back their source paths.

    mkdocs-jupyter wraps each notebook file in an object that recomputes ``abs_src_path`` from
    the docs directory, which a generated file lies outside of.
    """
    for src_uri, path in _page_sources.items():
        file = files.get_file_from_path(src_uri)
        if file is not None:
            file.abs_src_path = path
    return files


on_files = CombinedEvent(_add_notebooks, _restore_source_paths)


def on_serve(
    server: LiveReloadServer, config: MkDocsConfig, builder: Callable[[], None]
) -> LiveReloadServer:
    """Rebuild when a stored notebook changes (``mkdocs serve``)."""
    server.watch(str(NOTEBOOKS_DIR))
    return server
