"""The sdist and wheel build, install next to Airflow in a fresh venv, and register the provider.

The steps live in ``scripts/check_package.py`` (also runnable by hand); this test runs them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]


def test_version_is_defined_once(check_package: ModuleType) -> None:
    import airflow_provider
    from airflow_provider.provider_info import provider_info

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"], "pyproject.toml must not repeat the version"
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "airflow_provider.__version__"}
    assert check_package.source_version() == airflow_provider.__version__
    assert provider_info()["versions"] == [airflow_provider.__version__]


def test_changelog_has_an_entry_for_the_version(check_package: ModuleType) -> None:
    version = check_package.source_version()
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(version)}\]?( |$)", changelog, re.MULTILINE), (
        f"CHANGELOG.md has no '## {version}' section"
    )


def test_license_is_apache_2() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_wheel_and_sdist_install_next_to_airflow_and_register(
    check_package: ModuleType, tmp_path: Path
) -> None:
    version = check_package.source_version()
    dists = check_package.build(tmp_path / "dist")
    check_package.check_sdist(dists.sdist, version)
    check_package.check_wheel(dists.wheel, version)
    check_package.check_published_metadata(dists)
    metadata = check_package.wheel_metadata(dists.wheel)
    for classifier in (
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Programming Language :: Python :: 3.11",
    ):
        assert classifier in metadata["Classifier"], classifier
    urls = dict(value.split(", ", 1) for value in metadata["Project-URL"])
    assert set(urls) >= {"Documentation", "Source", "Changelog", "Issues"}, urls
    assert all(url.startswith("https://") for url in urls.values()), urls
    assert "airflow-provider" in metadata["Keywords"][0]
    assert metadata["Description-Content-Type"] == ["text/markdown"]
    assert not any(extra == "dev" for extra in metadata.get("Provides-Extra", []))
    bin_dir = check_package.install_fresh(dists.wheel, tmp_path / "venv")
    report = check_package.check_registered(bin_dir, version, tmp_path)
    assert report["provider"] == {
        "package_name": "airflow-provider-mrsdeploy",
        "description": report["provider"]["description"],
        "version": version,
    }
    assert Path(str(report["module"])).is_relative_to(tmp_path / "venv")


def test_sdist_check_notices_missing_package_data(
    check_package: ModuleType, tmp_path: Path
) -> None:
    """The archive checks can fail: an sdist without the data file is refused."""
    import tarfile

    version = check_package.source_version()
    root = tmp_path / f"airflow_provider_mrsdeploy-{version}"
    root.mkdir()
    for name in ("LICENSE", "pyproject.toml"):
        (root / name).write_text("x")
    (root / "PKG-INFO").write_text(f"Metadata-Version: 2.4\nVersion: {version}\n")
    sdist = tmp_path / "broken.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(root, arcname=root.name)
    with pytest.raises(check_package.PackageCheckError, match=r"mtcars\.csv is missing"):
        check_package.check_sdist(sdist, version)


def test_published_metadata_check_refuses_a_bad_long_description(
    check_package: ModuleType, tmp_path: Path
) -> None:
    """The twine check can fail: a wheel whose description does not render is refused."""
    import zipfile

    version = check_package.source_version()
    dist_info = f"airflow_provider_mrsdeploy-{version}.dist-info"
    wheel = tmp_path / f"airflow_provider_mrsdeploy-{version}-py3-none-any.whl"
    metadata = (
        "Metadata-Version: 2.4\nName: airflow-provider-mrsdeploy\n"
        f"Version: {version}\nDescription-Content-Type: text/x-rst\n\n"
        "Broken *emphasis\n\n.. unknown-directive::\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("airflow_provider/__init__.py", "")
        archive.writestr(f"{dist_info}/METADATA", metadata)
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    sdist = tmp_path / "unused.tar.gz"
    with pytest.raises(check_package.PackageCheckError, match="twine check"):
        check_package.check_published_metadata(check_package.Distributions(sdist, wheel))
