"""MkDocs hook: stop the build when a page's example code differs from the example DAG it shows.

The pages hold the code of the example DAGs themselves (so they read well in the repository),
each block under a comment naming its source::

    <!-- dag-snippet: dags_examples/mrsdeploy_score_mtcars.py score_mtcars -->

``scripts/sync_doc_snippets.py`` writes those blocks from the DAGs' ``# [START ...]`` /
``# [END ...]`` sections; this hook runs its check during the build. A missing file or marker,
or a block that is not its section, stops the build; a marked section that no page shows is a
warning (an error under ``--strict``), so a new example cannot go undocumented.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.example_snippets")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sync_doc_snippets.py"
_shown: set[tuple[str, str]] = set()


def _sync() -> ModuleType:
    """``scripts/sync_doc_snippets.py``, loaded once (it is not an importable package)."""
    name = "sync_doc_snippets"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None, SCRIPT
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_pre_build(config: Any) -> None:
    _shown.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    sync = _sync()
    where = f"docs/{page.file.src_uri}"
    try:
        snippets = sync.page_snippets(markdown, where, _root(config))
        for snippet in snippets:
            expected = sync.sections(
                (_root(config) / snippet.path).read_text(encoding="utf-8"), snippet.path
            )[snippet.name]
            if snippet.shown != expected:
                raise PluginError(
                    f"{where}:{snippet.line}: the code under the dag-snippet comment for "
                    f"{snippet.path} [{snippet.name}] is not that section; run "
                    "python scripts/sync_doc_snippets.py"
                )
            _shown.add((Path(snippet.path).as_posix(), snippet.name))
    except sync.SnippetError as exc:
        raise PluginError(str(exc)) from exc
    return markdown


def on_post_build(config: Any) -> None:
    for item in _sync().undocumented(_root(config), _shown):
        relative, name = item.split(" ", 1)
        log.warning(
            "%s: section [START %s] is not shown on any page; add "
            "<!-- dag-snippet: %s %s --> to a page under docs/ and run "
            "python scripts/sync_doc_snippets.py",
            relative,
            name,
            relative,
            name,
        )
