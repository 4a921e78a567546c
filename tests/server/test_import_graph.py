"""The reference server is optional and cleanly layered.

- No module of the provider (outside ``airflow_provider/server``) imports the server.
- The server's modules import each other without a cycle, counting every import: at module
  level, inside functions, and those only for type checking.
- Fault injection is apart from the API: only the modules that install it (the app, the
  server state that holds it) and the injection's own modules import it; the wire routes'
  helpers, the executor and the fast path ask the fault points only.
- Without its libraries, importing the server says which extra to install.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider"
SERVER = "airflow_provider.server"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports from the provider, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("airflow_provider")}


def test_the_provider_never_imports_the_server() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in imported_modules(path) if SERVER in n)
        for path in PACKAGE.rglob("*.py")
        if "server" not in path.relative_to(PACKAGE).parts
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def server_graph() -> dict[str, set[str]]:
    modules = {path.stem for path in (PACKAGE / "server").glob("*.py")}
    graph = {}
    for module in modules:
        names = imported_modules(PACKAGE / "server" / f"{module}.py")
        graph[module] = {
            name.split(".")[2] for name in names if name.startswith(f"{SERVER}.")
        } & modules - {module}
    return graph


#: The only modules that may know fault injection exists (the rest ask the fault points).
FAULT_INJECTION = {"faults", "fault_routes"}
INSTALLS_FAULT_INJECTION = {"app", "state", "__main__"}


def test_fault_injection_is_kept_apart_from_the_api() -> None:
    graph = server_graph()
    knowing = {
        module
        for module, imported in graph.items()
        if imported & FAULT_INJECTION and module not in FAULT_INJECTION
    }
    assert knowing <= INSTALLS_FAULT_INJECTION, knowing - INSTALLS_FAULT_INJECTION
    assert "fault_points" in graph["executor"] and "faults" not in graph["executor"]


def test_the_server_modules_have_no_import_cycle() -> None:
    graph = server_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert "app" in graph and "row_files" in graph  # the graph was really read


def test_without_its_libraries_the_server_names_the_extra() -> None:
    probe = (
        "import sys\n"
        "sys.modules['fastapi'] = None  # as if the library were not installed\n"
        "try:\n"
        "    import airflow_provider.server.app\n"
        "except ImportError as err:\n"
        "    print(err)\n"
        "import airflow_provider.operators, airflow_provider.hooks  # the provider still works\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert 'pip install "airflow-provider-mrsdeploy[server]"' in done.stdout
    assert "needs fastapi" in done.stdout
