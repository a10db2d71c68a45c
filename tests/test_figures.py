"""Every measured figure in the docs comes from a results file (pure text, no JAX).

A page quotes a measurement with a marker right after the number::

    216 ESS/s<!-- fig: full_continuous.md | dual_moon_2d; flowmc_like | ESS/s -->

``FILE`` is a path under ``benchmarks/results/`` (or from the repository root). For a
Markdown file, ``ROW`` lists the leading cells of a table row (separated by ``;``) and
``COLUMN`` names the header cell (``COLUMN#2``: the cell's second number); the first table
of the file that has both is used, or the N-th with a fourth field ``table N``. Fields are
separated by `` | `` (spaces around the bar). For a JSON file the second field is a dotted key path
(list indices as numbers) and there is no third field. The quoted number must equal the
stored one as the page rounds it (``0.41`` matches ``0.415``, ``6`` matches ``5.90``).

Tables a benchmark writes are included whole (``--8<-- "benchmarks/results/....md"``) and
need no markers. Everything else that looks like a measurement (a number followed by ESS/s,
seconds, nanoseconds or a speed-up factor, "N times smaller" and the like, "N to M times", a
percentage on a page, a number near "acceptance", a numeric cell of a hand-written table
whose header names a time, an ESS or an acceptance) fails unless it carries a marker or is
listed in `ALLOWED` (settings and thresholds, not measurements).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

MARKER = re.compile(r"<!--\s*fig:\s*(?P<body>.*?)\s*-->")
NUMBER = r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUM_TAIL = re.compile(rf"({NUMBER})[^\d<>]{{0,24}}$")
_THRESHOLD = re.compile(
    r"(~|>=?|<=?|≈|above|below|at least|at most|no more than|under|over|up to)\s*$", re.I
)

# Measurement-like phrases in prose; group "num" is the figure.
_PROSE_PATTERNS = [
    re.compile(rf"(?P<num>{NUMBER})\s*(?:ESS/s|ESS per second|effective samples per second)"),
    re.compile(rf"(?P<num>{NUMBER})\s*(?:s|ms|µs|seconds|minutes)\b(?!\w)"),
    re.compile(rf"(?P<num>{NUMBER})(?:x|\u00d7)(?=[\s,.;:)]|$)"),
    re.compile(
        rf"(?P<num>{NUMBER}) times (?:faster|slower|fewer|more|the|smaller|larger|bigger"
        r"|higher|lower|longer|shorter|cheaper|as)\b"
    ),
    re.compile(rf"(?P<num>{NUMBER})(?:-| to ){NUMBER} times\b"),
    re.compile(rf"(?P<num>{NUMBER})-fold\b"),
    re.compile(rf"(?P<num>{NUMBER})\s*(?:ns|nanoseconds)\b"),
    re.compile(r"acceptance[^.;:\n`|]{0,40}?(?<![\w.])(?P<num>\d?\.\d+)"),
    re.compile(r"(?<![\w.])(?P<num>\d?\.\d+)\b[^.;\n`|]{0,20}acceptance"),
]
# Percentages: pages only (docstrings quote settings as percentages too often to tell).
_PAGE_PATTERNS = [re.compile(rf"(?P<num>{NUMBER})\s?%")]
_MEASURED_HEADER = re.compile(
    r"ESS|wall|compil|acceptance|acc\b|speed-up|\bms\b|(?<!')\bs\b|time|seconds|MiB", re.I
)

ALLOWED = {
    # Settings and documented constants, not measurements.
    "Target acceptance 0.574",
    "Target acceptance 0.65",
    "Target acceptance 0.234",
    "target_acceptance: ClassVar[float] = 0.234",
    "(0.57 for MALA)",
    "acceptance of 0.75",
    "jax_persistent_cache_min_compile_time_secs",
    "acceptance of 0.574",
    "acceptance of 0.234",
    "(2 s^2)",
    "1000, 1.01",
    "10x the steps",
    "n_global_steps` 10 times larger",
    "back to 90 %",
    "reaches 90 %",
    "80% from the flow and 20%",
}


@dataclass(frozen=True)
class Problem:
    page: str
    line: int
    quoted: str
    current: str
    why: str

    def __str__(self) -> str:
        where = f"{self.page}:{self.line}"
        return f"{where}: quoted {self.quoted!r}, current {self.current!r} ({self.why})"


# ---------------------------------------------------------------- results files


def _split_row(line: str) -> list[str]:
    body = line.strip().strip("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every pipe table of a Markdown text as (header, rows)."""
    tables, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if (
            lines[i].lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1])
            and "-" in lines[i + 1]
        ):
            header = _split_row(lines[i])
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


def _results_path(name: str, root: Path) -> Path:
    p = root / "benchmarks" / "results" / name
    return p if p.exists() else root / name


def resolve(body: str, root: Path = REPO) -> str:
    """The stored value a marker names (as text), or raise LookupError saying why."""
    fields = [f.strip() for f in re.split(r"\s\|\s", body)]
    path = _results_path(fields[0], root)
    if not path.is_file():
        raise LookupError(f"no results file {fields[0]}")
    if path.suffix == ".json":
        cur = json.loads(path.read_text())
        for part in fields[1].split("."):
            if isinstance(cur, list):
                cur = cur[int(part)]
            elif isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                raise LookupError(f"no key {fields[1]} in {fields[0]}")
        return str(cur)
    if len(fields) < 3:
        raise LookupError("a Markdown marker needs FILE | ROW | COLUMN")
    keys = [k.strip() for k in fields[1].split(";")]
    column, _, nth = fields[2].partition("#")
    which = int(fields[3].split()[1]) if len(fields) > 3 else None
    for n, (header, rows) in enumerate(markdown_tables(path.read_text()), start=1):
        if which is not None and n != which:
            continue
        if column not in header:
            continue
        j = header.index(column)
        for row in rows:
            if row[: len(keys)] == keys and j < len(row):
                if not nth:
                    return row[j]
                numbers = re.findall(NUMBER, row[j])
                if len(numbers) < int(nth):
                    raise LookupError(f"no number {nth} in {row[j]!r}")
                return numbers[int(nth) - 1]
    raise LookupError(f"no row {keys} with column {column!r} in {fields[0]}")


def _first_number(text: str) -> float | None:
    m = re.search(NUMBER, text.replace("\u2212", "-"))
    return None if m is None else float(m.group().replace(",", ""))


def same_as_rounded(quoted: str, current: str) -> bool:
    """True when ``current`` rounds to ``quoted`` at the precision the page shows."""
    q, c = _first_number(quoted), _first_number(current)
    if q is None or c is None:
        return False
    digits = quoted.replace(",", "").split(".")
    decimals = len(digits[1]) if len(digits) > 1 else 0
    return abs(q - c) <= 0.5 * 10.0**-decimals * (1 + 1e-9)


# ---------------------------------------------------------------- pages


def _docstring_text(path: Path) -> list[tuple[int, str]]:
    """(first line number, text) of every docstring of a module."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    out.append((body[0].lineno, body[0].value.value))
    return out


def _prose_lines(text: str, first_line: int = 1) -> list[tuple[int, str]]:
    """Lines outside fenced code blocks and snippet includes."""
    out, fenced = [], False
    for k, line in enumerate(text.splitlines()):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced or "--8<--" in line or line.lstrip().startswith(">>>"):
            continue
        out.append((first_line + k, line))
    return out


def _allowed(line: str, start: int, end: int) -> bool:
    return any(
        a in line and line.find(a) <= end and line.find(a) + len(a) >= start for a in ALLOWED
    )


def check_text(
    page: str,
    text: str,
    root: Path = REPO,
    strict: bool = True,
    first_line: int = 1,
    page_patterns: bool = True,
):
    """Problems of one page or docstring: stale or broken markers, unmarked measurements.

    ``page_patterns`` adds the phrases only pages are held to (percentages).
    """
    problems: list[Problem] = []
    lines = _prose_lines(text, first_line)
    for lineno, line in lines:
        for m in MARKER.finditer(line):
            before = MARKER.sub("", line[: m.start()])
            tail = _NUM_TAIL.search(before)
            quoted = tail.group(1) if tail else "?"
            try:
                current = resolve(m.group("body"), root)
            except LookupError as e:
                problems.append(Problem(page, lineno, quoted, "-", str(e)))
                continue
            if not same_as_rounded(quoted, current):
                problems.append(Problem(page, lineno, quoted, current, m.group("body")))
    if not strict:
        return problems
    # Hand-written tables: numeric cells under a measured header need a marker each.
    table_lines = [(n, ln) for n, ln in lines if ln.lstrip().startswith("|")]
    header: list[str] | None = None
    prev = None
    for n, ln in table_lines:
        if prev is None or n != prev + 1:
            header = _split_row(ln)
        elif re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", ln):
            pass
        elif header is not None:
            cells = _split_row(MARKER.sub("\x01", ln))
            heads = [cells[0]] * len(cells) if _MEASURED_HEADER.search(cells[0]) else header
            for h, cell in zip(heads[1:], cells[1:], strict=False):
                if (
                    _MEASURED_HEADER.search(h)
                    and re.search(r"\d", cell)
                    and "\x01" not in cell
                    and "`" not in cell
                    and not re.match(r"\s*(~|>|<|above|below|at least|at most)", cell)
                    and not _allowed(ln, 0, len(ln))
                ):
                    problems.append(Problem(page, n, cell, "-", f"unmarked cell under {h!r}"))
        prev = n
    for lineno, line in lines:
        if line.lstrip().startswith("|"):
            continue
        bare = MARKER.sub(lambda m: "\0" * len(m.group()), line)
        bare = re.sub(r"(`+)[^`]*?\1", lambda m: " " * len(m.group()), bare)
        for pat in [*_PROSE_PATTERNS, *(_PAGE_PATTERNS if page_patterns else [])]:
            for m in pat.finditer(bare):
                s, e = m.span("num")
                after = bare[e : e + 40]
                if "\0" in after and not re.search(r"\d", after[: after.index("\0")]):
                    continue  # marked
                if _THRESHOLD.search(bare[:s]) or _allowed(line, s, e):
                    continue
                if re.search(r"[`=_]\S*$", bare[:s]):
                    continue  # an argument value in code
                problems.append(Problem(page, lineno, m.group(), "-", "no marker"))
    return sorted(set(problems), key=lambda p: (p.page, p.line))


def pages(root: Path = REPO) -> list[Path]:
    found = [*sorted((root / "docs").glob("*.md")), *sorted((root / "docs" / "howto").glob("*.md"))]
    return [*found, root / "README.md"]


def check_repo(root: Path = REPO) -> list[Problem]:
    problems = []
    for p in pages(root):
        rel = p.relative_to(root).as_posix()
        if rel == "docs/benchmarks.md":
            continue  # written whole by the benchmark driver
        problems += check_text(rel, p.read_text(), root, strict=True)
    for py in sorted((root / "flowmc_like").rglob("*.py")):
        rel = py.relative_to(root).as_posix()
        for lineno, doc in _docstring_text(py):
            problems += check_text(rel, doc, root, first_line=lineno, page_patterns=False)
    return problems


# ---------------------------------------------------------------- tests


def test_every_figure_matches_its_results_file():
    problems = check_repo()
    assert not problems, "stale or unsourced figures:\n" + "\n".join(map(str, problems))


def test_rounding_as_the_page_shows_it():
    assert same_as_rounded("0.41", "0.415")
    assert same_as_rounded("6", "5.90")
    assert same_as_rounded("1,170", "1170.4")
    assert same_as_rounded("216", "216")
    assert not same_as_rounded("0.59", "0.415")
    assert not same_as_rounded("5.9", "5.96")


def _copy_with(tmp_path: Path, page: str, text: str) -> Path:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "t.md").write_text(
        "| target | sampler | ESS/s | global acc |\n| --- | --- | --- | --- |\n"
        "| ising_L16 | flowmc_like | 14.4 | 0.415 |\n"
    )
    (tmp_path / "benchmarks" / "results" / "t.json").write_text('{"a": [{"b": 3.17}]}')
    p = tmp_path / page
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_a_planted_stale_figure_is_reported(tmp_path):
    page = REPO / "docs" / "discrete.md"
    text = page.read_text()
    stale = "global acceptance 0.59<!-- fig: t.md | ising_L16; flowmc_like | global acc -->"
    fresh = "global acceptance 0.41<!-- fig: t.md | ising_L16; flowmc_like | global acc -->"
    _copy_with(tmp_path, "docs/discrete.md", text + "\n" + stale + "\n" + fresh + "\n")
    problems = check_text("docs/discrete.md", (tmp_path / "docs/discrete.md").read_text(), tmp_path)
    stale_line = len(text.splitlines()) + 2
    hits = [p for p in problems if p.line == stale_line]
    assert len(hits) == 1, problems
    assert hits[0].quoted == "0.59" and hits[0].current == "0.415"
    assert "docs/discrete.md:" in str(hits[0]) and "'0.59'" in str(hits[0])
    assert not [p for p in problems if p.line == stale_line + 1 and p.current != "-"]


def test_unmarked_and_broken_markers_are_reported(tmp_path):
    text = (
        "It compiles in about 5 s on two cores.\n"
        "The flow gives 166 ESS/s and a 3.2x speed-up.\n"
        "Compile 3.17 s<!-- fig: t.json | a.0.b --> and 3.1 s<!-- fig: t.json | a.0.b -->.\n"
        "Missing 1.0<!-- fig: nowhere.md | x | y -->.\n"
        "| run | wall s |\n| --- | --- |\n| cold | 168 |\n"
        "Target acceptance 0.574. Global acceptance above ~0.3 is good.\n"
    )
    _copy_with(tmp_path, "docs/page.md", text)
    found = {(p.line, p.quoted) for p in check_text("docs/page.md", text, tmp_path)}
    assert (1, "5 s") in found
    assert (2, "166 ESS/s") in found and (2, "3.2x") in found
    assert (3, "3.1") in found and (3, "3.17") not in found
    assert (4, "1.0") in found
    assert (7, "168") in found
    assert not [f for f in found if f[0] == 8]


def test_ratios_percentages_and_nanoseconds_are_measurements():
    text = (
        "Errors 11 to 60 times smaller; a 3-fold gain; 2.5 ns per word; 15 % faster.\n"
        "The same, sourced: 3.17 times smaller<!-- fig: t.json | a.0.b -->.\n"
    )
    found = {(p.line, p.quoted) for p in check_text("docs/p.md", text)}
    assert {(1, "11 to 60 times"), (1, "3-fold"), (1, "2.5 ns"), (1, "15 %")} <= found
    assert not [f for f in found if f[0] == 2 and f[1] != "3.17"]
    assert (1, "15 %") not in {
        (p.line, p.quoted) for p in check_text("x.py", text, page_patterns=False)
    }


def test_includes_and_code_are_not_scanned():
    text = '--8<-- "benchmarks/results/evidence_comparison.md"\n```python\nx = 5  # 3 s\n```\n'
    assert check_text("docs/p.md", text) == []


@pytest.mark.parametrize("rel", [p.relative_to(REPO).as_posix() for p in pages()])
def test_included_snippets_exist(rel):
    text = (REPO / rel).read_text()
    for name in re.findall(r'--8<--\s*"([^"]+)"', text):
        path, _, section = name.partition(":")
        assert (REPO / path).is_file(), f"{rel} includes missing {path}"
        if section:
            body = (REPO / path).read_text()
            for edge in ("start", "end"):
                marker = f"--8<-- [{edge}:{section}]"
                assert marker in body, f"{rel} includes {name}: no {marker} in {path}"
