"""Keep the code blocks of the docs pages equal to the example DAGs they show.

    python scripts/sync_doc_snippets.py           # rewrite the blocks from the DAG files
    python scripts/sync_doc_snippets.py --check   # only report; exit 1 on any difference

The example DAGs in ``dags_examples/`` mark their documented part the way Airflow's own
examples do (``# [START name]`` ... ``# [END name]``). A page shows such a part with a comment
line naming it, followed by the fenced block itself, so the page reads the same in the
repository and in the built site::

    <!-- dag-snippet: dags_examples/mrsdeploy_score_mtcars.py score_mtcars -->

    ```python title="dags_examples/mrsdeploy_score_mtcars.py"
    ...the marked section, dedented...
    ```

A blank line separates the two (Markdown renderers then never take the block for part of the
comment). The comment may be indented (inside a tab or a list); the block gets the same
indent. A missing file or marker, a block that differs from its section, and a marked section
that no page shows are each reported, so a change to an example DAG cannot leave the docs
behind and a new example cannot go undocumented. The MkDocs hook
``docs/_hooks/example_snippets.py`` runs the same check during ``mkdocs build --strict``.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS_DIR = "docs"
EXAMPLES_DIR = "dags_examples"
DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)<!--\s*dag-snippet:\s*(?P<path>\S+)\s+(?P<name>[\w.-]+)\s*-->\s*$"
)
MARKER = re.compile(r"^\s*#\s*\[(?P<kind>START|END)\s+(?P<name>[\w.-]+)\]\s*$")
FENCE = "```"


class SnippetError(ValueError):
    """A page or an example DAG is not as the snippets need it; the message says where."""


@dataclass(frozen=True)
class Snippet:
    """One ``dag-snippet`` comment of a page and the code block shown under it."""

    page: str
    line: int
    path: str
    name: str
    shown: str | None


def sections(text: str, where: str) -> dict[str, str]:
    """Every ``[START name]`` ... ``[END name]`` section of a file, dedented.

    :param text: the file's content.
    :param where: the file's path, for error messages.
    :raises SnippetError: on an unterminated, unopened or repeated marker.
    """
    found: dict[str, str] = {}
    open_sections: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        marker = MARKER.match(line)
        if marker is None:
            for body in open_sections.values():
                body.append(line)
            continue
        name = marker["name"]
        if marker["kind"] == "START":
            if name in open_sections or name in found:
                raise SnippetError(f"{where}:{number}: section {name!r} is opened twice")
            open_sections[name] = []
        else:
            if name not in open_sections:
                raise SnippetError(f"{where}:{number}: [END {name}] without [START {name}]")
            found[name] = textwrap.dedent("\n".join(open_sections.pop(name))).strip("\n")
    if open_sections:
        raise SnippetError(f"{where}: section(s) never closed: {', '.join(sorted(open_sections))}")
    return found


def fenced(path: str, code: str, indent: str = "") -> list[str]:
    """The block a page shows for a section: a titled ``python`` fence, indented as its comment."""
    body = [indent + line if line.strip() else "" for line in code.splitlines()]
    return [f'{indent}{FENCE}python title="{path}"', *body, indent + FENCE]


def _rewrite(text: str, page: str, root: Path) -> tuple[str, list[Snippet]]:
    """The page with each snippet's block replaced by its section, and the snippets found."""
    lines = text.splitlines()
    out: list[str] = []
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        directive = DIRECTIVE.match(line)
        if directive is None:
            continue
        number = index
        indent, relative, name = directive["indent"], directive["path"], directive["name"]
        shown = None
        blank_then_fence = index + 1 < len(lines) and not lines[index].strip()
        if blank_then_fence and lines[index + 1].strip().startswith(FENCE):
            index += 1  # the blank line between the comment and its block
        if index < len(lines) and lines[index].strip().startswith(FENCE):
            end = index + 1
            while end < len(lines) and lines[end].strip() != FENCE:
                end += 1
            if end == len(lines):
                raise SnippetError(f"{page}:{index + 1}: the code block is never closed")
            block = lines[index + 1 : end]
            shown = textwrap.dedent("\n".join(block)).strip("\n")
            index = end + 1
        found.append(Snippet(page, number, relative, name, shown))
        source = root / relative
        if not source.is_file():
            raise SnippetError(f"{page}: {relative} does not exist")
        marked = sections(source.read_text(encoding="utf-8"), relative)
        if name not in marked:
            raise SnippetError(f"{page}: {relative} has no section [START {name}]")
        out.extend(["", *fenced(relative, marked[name], indent)])
    ending = "\n" if text.endswith("\n") else ""
    return "\n".join(out) + ending, found


def synced(text: str, page: str, root: Path = REPO) -> str:
    """The page's text with every snippet block equal to its section."""
    return _rewrite(text, page, root)[0]


def page_snippets(text: str, page: str, root: Path = REPO) -> list[Snippet]:
    """The snippets of one page, with the code each one shows now."""
    return _rewrite(text, page, root)[1]


def pages(root: Path = REPO) -> list[Path]:
    return sorted((root / DOCS_DIR).rglob("*.md"))


def documented_sections(root: Path = REPO) -> set[tuple[str, str]]:
    """``(path, name)`` of every section that some page shows."""
    shown: set[tuple[str, str]] = set()
    for page in pages(root):
        where = page.relative_to(root).as_posix()
        for snippet in page_snippets(page.read_text(encoding="utf-8"), where, root):
            shown.add((Path(snippet.path).as_posix(), snippet.name))
    return shown


def undocumented(root: Path = REPO, shown: set[tuple[str, str]] | None = None) -> list[str]:
    """``path name`` of every marked section of an example DAG that no page shows."""
    shown = documented_sections(root) if shown is None else shown
    missing = []
    for source in sorted((root / EXAMPLES_DIR).glob("*.py")):
        relative = source.relative_to(root).as_posix()
        for name in sections(source.read_text(encoding="utf-8"), relative):
            if (relative, name) not in shown:
                missing.append(f"{relative} {name}")
    return missing


def problems(root: Path = REPO) -> list[str]:
    """Everything that is out of step: stale blocks, broken references, undocumented sections."""
    found = []
    for page in pages(root):
        where = page.relative_to(root).as_posix()
        text = page.read_text(encoding="utf-8")
        try:
            if synced(text, where, root) != text:
                stale = [
                    f"{s.path} {s.name}"
                    for s in page_snippets(text, where, root)
                    if s.shown
                    != sections((root / s.path).read_text(encoding="utf-8"), s.path)[s.name]
                ]
                found.append(f"{where}: out of date: {', '.join(stale) or 'block layout'}")
        except SnippetError as exc:
            found.append(str(exc))
    try:
        found.extend(f"not shown on any page: {item}" for item in undocumented(root))
    except SnippetError as exc:
        found.append(str(exc))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report only; change no file")
    args = parser.parse_args(argv)
    if not args.check:
        for page in pages():
            text = page.read_text(encoding="utf-8")
            try:
                new = synced(text, page.relative_to(REPO).as_posix())
            except SnippetError as exc:
                print(exc, file=sys.stderr)
                return 1
            if new != text:
                page.write_text(new, encoding="utf-8")
                print(f"updated {page.relative_to(REPO)}")
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
