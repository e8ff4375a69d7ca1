"""The documents stand on their own: no reference to a file or module the repository lacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "plantcast"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
THIS = Path(__file__).resolve()

# Repository-relative paths as the documents write them: `benchmarks/x.py`, `tests/data/`, …
# (data/ and reports/ are written by the program at run time, so they are not checked).
PATH_REF = re.compile(r"(?<![\w./-])((?:src|tests|benchmarks|docs|\.ci)/[\w./*{}-]*)")
# Any document named by its file name alone: README.md, CHANGELOG.md, …
MD_REF = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
# Dotted names of the package: plantcast.store.partitions, plantcast.forecast.ForecastCache.
MODULE_REF = re.compile(r"(?<![\w/.@:-])(plantcast(?:\.[A-Za-z_]\w*)+)")


def _documents() -> list[Path]:
    docs = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in docs if p.exists()]


def _scanned() -> list[Path]:
    """Every file a reader or a docstring may point from (this test names what it forbids)."""
    code = [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "tests").glob("*.py"),
        *(ROOT / "benchmarks").glob("*.py"),
    ]
    others = [ROOT / "Makefile", ROOT / ".ci" / "run", ROOT / "tests" / "data" / "README.md"]
    return [
        *_documents(),
        *sorted(p for p in code if p != THIS),
        *(p for p in others if p.exists()),
    ]


def _exists(ref: str) -> bool:
    ref = ref.rstrip(".,:;)")
    if ref.endswith(".egg-info"):  # build output that `make clean` removes
        return True
    if any(c in ref for c in "*{}"):  # a pattern, e.g. benchmarks/*.py: something must match
        return any(ROOT.glob(re.sub(r"\{[^}]*\}", "*", ref)))
    return (ROOT / ref).exists()


def _md_names() -> set[str]:
    skip = {".git", ".venv", "node_modules"}
    return {p.name for p in ROOT.rglob("*.md") if not skip & set(p.relative_to(ROOT).parts)}


def _module_exists(dotted: str) -> bool:
    """``plantcast.a.b[.name]``: a module or package, or a name defined or imported in one."""
    parts = dotted.split(".")[1:]
    base = PACKAGE
    for i, part in enumerate(parts):
        if (base / part / "__init__.py").exists():
            base = base / part
            continue
        if (base / f"{part}.py").exists():
            rest = parts[i + 1 :]
            source = (base / f"{part}.py").read_text()
        else:
            rest = parts[i:]
            source = (base / "__init__.py").read_text()
        return not rest or re.search(rf"\b{re.escape(rest[0])}\b", source) is not None
    return True


def _refs(pattern: re.Pattern, paths: list[Path]) -> list[tuple[str, int, str]]:
    found = []
    for path in paths:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            found += [(str(path.relative_to(ROOT)), n, m) for m in pattern.findall(line)]
    return found


def test_every_repository_path_a_document_or_docstring_names_exists():
    missing = [f"{f}:{n}: {ref}" for f, n, ref in _refs(PATH_REF, _scanned()) if not _exists(ref)]
    assert not missing, "references to files that are not in the repository:\n" + "\n".join(missing)


def test_every_document_named_is_in_the_repository():
    names = _md_names()
    missing = [f"{f}:{n}: {ref}" for f, n, ref in _refs(MD_REF, _scanned()) if ref not in names]
    assert not missing, "documents named but not in the repository:\n" + "\n".join(missing)


def test_no_design_document_outside_the_repository_is_named():
    # Spelled in two halves so that this file does not name it either.
    outside = "DESIGN" + ".md"
    named = [f"{f}:{n}" for f, n, ref in _refs(MD_REF, _scanned()) if ref == outside]
    assert not named, f"{outside} is not in the repository; point at docs/architecture.md: {named}"


def test_every_module_the_documents_name_exists():
    refs = _refs(MODULE_REF, _documents())
    assert refs, "the documents name no plantcast module at all"
    missing = [f"{f}:{n}: {ref}" for f, n, ref in refs if not _module_exists(ref)]
    assert not missing, "modules or names that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    "package",
    sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()),
)
def test_the_architecture_names_every_top_level_package(package):
    text = ARCHITECTURE.read_text()
    assert f"`plantcast.{package}`" in text, (
        f"docs/architecture.md does not name plantcast.{package}"
    )


def test_the_readme_points_at_the_architecture():
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()


def test_the_readme_contents_list_every_section():
    text = (ROOT / "README.md").read_text()
    body = re.sub(r"```.*?```", "", text, flags=re.S)  # headings inside code blocks do not count
    sections = re.findall(r"^## (.+)$", body, flags=re.M)
    listed = re.findall(r"^- \[(.+?)\]\(#([\w-]+)\)", body, flags=re.M)
    assert sections, "the README has no sections"
    titles = [title for title, _ in listed]
    assert [s for s in sections if s != "Contents"] == titles, (
        "the README's contents and its sections differ"
    )
    for title, anchor in listed:
        expected = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        assert anchor == expected, f"the contents link {anchor!r} does not reach {title!r}"
