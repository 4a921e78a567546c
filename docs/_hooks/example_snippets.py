"""MkDocs hook: show the example DAGs' marked sections in the docs, so the docs show what CI runs.

The example DAGs in ``dags_examples/`` mark their documented part the way Airflow's own examples
do::

    # [START score_mtcars]
    ...
    # [END score_mtcars]

A page includes such a section with a line of its own::

    <!-- dag-snippet: dags_examples/mrsdeploy_score_mtcars.py score_mtcars -->

which becomes a fenced Python block titled with the file name. A missing file or marker stops
the build; a marked section that no page shows is a warning (an error under ``--strict``), so
a new example cannot go undocumented.
"""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.example_snippets")

EXAMPLES_DIR = "dags_examples"
DIRECTIVE = re.compile(r"^<!--\s*dag-snippet:\s*(?P<path>\S+)\s+(?P<name>[\w.-]+)\s*-->\s*$")
MARKER = re.compile(r"^\s*#\s*\[(?P<kind>START|END)\s+(?P<name>[\w.-]+)\]\s*$")

_included: set[tuple[str, str]] = set()


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def sections(text: str, where: str) -> dict[str, str]:
    """Every ``[START name]`` ... ``[END name]`` section of a file, dedented.

    :param text: the file's content.
    :param where: the file's path, for error messages.
    :raises PluginError: on an unterminated, unopened or repeated marker.
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
                raise PluginError(f"{where}:{number}: section {name!r} is opened twice")
            open_sections[name] = []
        else:
            if name not in open_sections:
                raise PluginError(f"{where}:{number}: [END {name}] without [START {name}]")
            found[name] = textwrap.dedent("\n".join(open_sections.pop(name))).strip("\n")
    if open_sections:
        raise PluginError(f"{where}: section(s) never closed: {', '.join(sorted(open_sections))}")
    return found


def _fence(path: str, code: str) -> str:
    return f'```python title="{path}"\n{code}\n```'


def on_pre_build(config: Any) -> None:
    _included.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    root = _root(config)
    lines = []
    for line in markdown.splitlines():
        directive = DIRECTIVE.match(line.strip())
        if directive is None:
            lines.append(line)
            continue
        relative, name = directive["path"], directive["name"]
        source = root / relative
        if not source.is_file():
            raise PluginError(f"{page.file.src_uri}: {relative} does not exist")
        found = sections(source.read_text(encoding="utf-8"), relative)
        if name not in found:
            raise PluginError(f"{page.file.src_uri}: {relative} has no section [START {name}]")
        _included.add((Path(relative).as_posix(), name))
        indent = line[: len(line) - len(line.lstrip())]
        lines.extend(indent + fenced for fenced in _fence(relative, found[name]).splitlines())
    return "\n".join(lines) + "\n"


def on_post_build(config: Any) -> None:
    root = _root(config)
    for source in sorted((root / EXAMPLES_DIR).glob("*.py")):
        relative = source.relative_to(root).as_posix()
        for name in sections(source.read_text(encoding="utf-8"), relative):
            if (relative, name) not in _included:
                log.warning(
                    "%s: section [START %s] is not shown on any page; "
                    "add <!-- dag-snippet: %s %s --> to a page under docs/",
                    relative,
                    name,
                    relative,
                    name,
                )
