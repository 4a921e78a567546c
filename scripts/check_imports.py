"""Every third-party import of the package is a declared requirement (``pyproject.toml``).

    python scripts/check_imports.py

A module that imports a library the metadata does not name works on the developer's machine,
where something else happened to install it, and fails with ``ModuleNotFoundError`` on a
user's. This walks the syntax tree of every module of ``airflow_provider/``, finds the
distribution that installed each imported module (the file it would load from, looked up in
the installed distributions' file lists: ``airflow.sdk`` and ``airflow.providers.common.sql``
share a top-level name but not a distribution), and checks it against the requirements:

- a module-level import must be satisfied by ``[project] dependencies``;
- an import in a part that belongs to an extra (``server/`` to ``server``, ``lineage/`` to
  ``openlineage``) may also be satisfied by that extra;
- an optional import (inside a function, under ``try: ... except ImportError``, or behind a
  Python-version test) runs only when its feature is used, so it may be satisfied by any
  extra; one whose module is not installed here (a fallback for another Python or Airflow)
  must still name a declared distribution;
- imports under ``if TYPE_CHECKING:`` never run and are skipped, and so are those of a branch
  that no supported Python takes (``else`` of ``if sys.version_info >= (3, 11)`` when
  ``requires-python`` is ``>=3.11``).

A requirement on a meta-package that ships no module of its own (``apache-airflow``) covers
what it requires unconditionally (``apache-airflow-core``, ``apache-airflow-task-sdk``).
Exit status 1 and one line per finding when anything is undeclared.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "airflow_provider"
#: Parts of the package that only an extra's users import, and that extra.
EXTRA_AREAS = {"server": "server", "lineage": "openlineage"}
#: Modules the caller brings: Airflow calls ``get_connection_form_widgets`` only after importing
#: WTForms itself, and treats a missing ``flask_appbuilder``/``wtforms`` as "no form widgets"
#: (``ProvidersManager``). Accepted for optional imports only.
HOST_PROVIDED = frozenset({"flask_appbuilder", "flask_babel", "wtforms"})
MODULE_SUFFIXES = (".py", ".so", ".pyd")


@dataclass(frozen=True)
class Import:
    """One imported module, where it is imported, and whether the import may be skipped."""

    module: str
    path: Path
    line: int
    optional: bool


@dataclass(frozen=True)
class Declared:
    """The distributions each part of ``pyproject.toml`` declares (normalized names)."""

    core: frozenset[str]
    extras: dict[str, frozenset[str]]
    #: The oldest Python of ``requires-python``.
    oldest_python: tuple[int, int] = (3, 11)

    def every(self) -> frozenset[str]:
        return self.core.union(*self.extras.values())


def _is_import_error_guard(node: ast.Try) -> bool:
    names = {"ImportError", "ModuleNotFoundError", "Exception"}
    for handler in node.handlers:
        caught = handler.type
        if caught is None:
            return True
        elements = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(e, ast.Name) and e.id in names for e in elements):
            return True
    return False


def _test_mentions(test: ast.expr, *names: str) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id in names)
        or (isinstance(n, ast.Attribute) and n.attr in names)
        for n in ast.walk(test)
    )


def _version_test(test: ast.expr, oldest: tuple[int, int]) -> bool | None:
    """``sys.version_info >= (3, N)`` or ``< (3, N)``: its value on every supported Python, or
    None when it depends on the Python (or is not such a test)."""
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and _test_mentions(test.left, "version_info")
        and isinstance(test.comparators[0], ast.Tuple)
    ):
        return None
    try:
        bound = tuple(ast.literal_eval(test.comparators[0]))
    except ValueError:
        return None
    if isinstance(test.ops[0], ast.GtE) and oldest >= bound:
        return True
    if isinstance(test.ops[0], ast.Lt) and oldest >= bound:
        return False
    return None


def imports(path: Path, oldest_python: tuple[int, int] = (3, 11)) -> Iterator[Import]:
    """The absolute imports of one source file (relative ones are first-party)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def visit(node: ast.AST, optional: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, path, node.lineno, optional)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield Import(node.module, path, node.lineno, optional)
            return
        if isinstance(node, ast.If) and _test_mentions(node.test, "TYPE_CHECKING"):
            for child in node.orelse:
                yield from visit(child, optional)
            return  # the body never runs
        if isinstance(node, ast.If):
            always = _version_test(node.test, oldest_python)
            if always is not None:
                for child in node.body if always else node.orelse:
                    yield from visit(child, optional)
                return
        inner = (
            optional
            or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            or (isinstance(node, ast.Try) and _is_import_error_guard(node))
            or (isinstance(node, ast.If) and _test_mentions(node.test, "version_info"))
        )
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(tree, False)


def _requirement_names(lines: Sequence[str]) -> frozenset[str]:
    """Every requirement's name, whatever its marker: one for another Python still declares it."""
    return frozenset(canonicalize_name(Requirement(line).name) for line in lines)


def _meta_requirements(name: str) -> set[str]:
    """What an installed meta-package (no module of its own) requires unconditionally."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return set()
    if any(Path(str(f)).suffix in MODULE_SUFFIXES for f in dist.files or []):
        return set()
    return {
        canonicalize_name(Requirement(line).name)
        for line in dist.requires or []
        if Requirement(line).marker is None
    }


def declared(pyproject: Path = REPO / "pyproject.toml") -> Declared:
    """The requirements of ``pyproject.toml``, meta-packages expanded."""
    table = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    floors = [
        Version(s.version).release[:2]
        for s in SpecifierSet(table.get("requires-python", ">=3.11"))
        if s.operator == ">="
    ]

    def expand(names: frozenset[str]) -> frozenset[str]:
        return names.union(*(_meta_requirements(n) for n in names))

    return Declared(
        core=expand(_requirement_names(table.get("dependencies", []))),
        extras={
            extra: expand(_requirement_names(lines))
            for extra, lines in table.get("optional-dependencies", {}).items()
        },
        oldest_python=(floors[0][0], floors[0][1]) if floors else (3, 11),
    )


@cache
def _file_owners() -> dict[Path, str]:
    """Every installed module file, mapped to the distribution that installed it."""
    owners: dict[Path, str] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        for file in dist.files or []:
            if Path(str(file)).suffix in MODULE_SUFFIXES:
                owners.setdefault(Path(str(dist.locate_file(file))).resolve(), name)
    return owners


def _module_files(module: str) -> Iterator[Path]:
    """The files ``module`` would be loaded from, on each ``sys.path`` entry, without importing."""
    parts = module.split(".")
    for entry in sys.path:
        base = Path(entry or ".").joinpath(*parts)
        candidates = [base.with_name(base.name + ".py"), base / "__init__.py"]
        if base.parent.is_dir():
            candidates.extend(base.parent.glob(base.name + ".*.so"))
        for candidate in candidates:
            if candidate.is_file():
                yield candidate.resolve()
        if base.is_dir():  # a namespace package: whoever installed a module inside it
            yield from (p.resolve() for p in sorted(base.rglob("*.py"))[:1])


def distribution_of(module: str) -> str | None:
    """The normalized name of the distribution that installed ``module``, if it is installed."""
    owners = _file_owners()
    for file in _module_files(module):
        if file in owners:
            return owners[file]
    top = module.split(".")[0]
    found = metadata.packages_distributions().get(top, [])
    return canonicalize_name(found[0]) if len(found) == 1 else None


def _first_party(module: str) -> bool:
    return module.split(".")[0] == PACKAGE


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def area_extra(path: Path, package_dir: Path) -> str | None:
    """The extra the file's part of the package belongs to, if any."""
    relative = path.relative_to(package_dir).parts
    return EXTRA_AREAS.get(relative[0]) if len(relative) > 1 else None


def findings(package_dir: Path, requirements: Declared) -> list[str]:
    """One line per undeclared import of the package under ``package_dir``."""
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        extra = area_extra(path, package_dir)
        allowed = requirements.core | requirements.extras.get(extra or "", frozenset())
        for found in imports(path, requirements.oldest_python):
            if _stdlib(found.module) or _first_party(found.module):
                continue
            if found.optional and found.module.split(".")[0] in HOST_PROVIDED:
                continue
            where = f"{path.relative_to(package_dir.parent)}:{found.line}"
            dist = distribution_of(found.module)
            if dist is None:
                guess = canonicalize_name(re.sub(r"\W", "-", found.module.split(".")[0]))
                if found.optional and guess in requirements.every():
                    continue
                problems.append(f"{where}: {found.module} is not installed and not declared")
                continue
            ok = allowed | requirements.every() if found.optional else allowed
            if dist in ok:
                continue
            owners = sorted(e for e, names in requirements.extras.items() if dist in names)
            if owners and not found.optional:
                problems.append(
                    f"{where}: {found.module} ({dist}) comes only with the extra(s) "
                    f"{', '.join(owners)}; import it inside the function that needs it, or "
                    "under try/except ImportError"
                )
            else:
                problems.append(f"{where}: {found.module} ({dist}) is not declared")
    return problems


def main(argv: list[str] | None = None) -> int:
    del argv
    problems = findings(REPO / PACKAGE, declared())
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("every third-party import of the package is declared")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
