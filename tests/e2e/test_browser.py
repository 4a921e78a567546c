"""The Airflow UI in a real browser (Debian's chromium, driven by Playwright) against the
cluster's API server: the connection form, its Test button, and the Submit task's extra link.

Nothing is downloaded: Playwright drives the system's ``chromium`` (``make browser-deps``
installs it). A failing test leaves a screenshot of the page in its temporary folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import AirflowCluster
from tests.support.server import ReferenceServer

pytestmark = pytest.mark.e2e

SUBMIT_DAG = "mrsdeploy_submit_and_wait"
#: Bound on each UI step (milliseconds): a page, a dialog, an answer of the API server.
STEP_MS = 30_000
#: Seconds each row of the batch takes while the deferral settles.
ROW_DELAY = 5.0


def chromium_path() -> str:
    """Debian's chromium (installed by ``make browser-deps``)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run `make browser-deps`")
    return path


@pytest.fixture
def page(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser page; on failure its screenshot is saved as ``tmp_path/failure.png``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(STEP_MS)
        tab = context.new_page()
        try:
            yield tab
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                for number, opened in enumerate(context.pages):
                    opened.screenshot(path=str(tmp_path / f"failure-{number}.png"), full_page=True)
            browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Keep the call phase's report on the test item (the ``page`` fixture reads it)."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def add_connection(page: Any, base_url: str, conn_id: str, fields: dict[str, str]) -> Any:
    """Open Admin > Connections, add an ``mrsdeploy`` connection through the form, save it.

    :param fields: ``{input name: value}``: ``host``, ``port``, ``login``, ``password`` and
        the extras as ``element_<name>``.
    """
    page.goto(f"{base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.get_by_role("combobox").first.click()
    page.keyboard.type("mrsdeploy")
    page.get_by_role("option", name="R Server / ML Server (mrsdeploy)").click()
    # The relabelled and hidden standard fields, as the provider declares them.
    assert dialog.get_by_text("Username", exact=True).is_visible()
    assert dialog.locator("input[name=schema]").count() == 0
    standard = {name: value for name, value in fields.items() if not name.startswith("element_")}
    for name, value in standard.items():
        dialog.locator(f"input[name={name}]").fill(value)
    # One section of the form is open at a time: the extras, once the standard fields are in.
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for name, value in fields.items():
        if name not in standard:
            dialog.locator(f"input[name={name}]").fill(value)
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    return page.get_by_role("row").filter(has_text=conn_id)


def test_a_connection_added_in_the_ui_form_tests_and_saves(
    cluster: AirflowCluster, reference_server: ReferenceServer, page: Any
) -> None:
    typed = {
        "host": "127.0.0.1",
        "port": str(reference_server.port),
        "login": "admin",
        "password": reference_server.admin_password,
        "element_timeout": "20",
        "element_max_retries": "1",
    }
    row = add_connection(page, cluster.base_url, "mrs_ui", typed)
    test_button = row.get_by_role("button", name="Test Connection")
    test_button.click()
    test_button.hover()  # the answer shows in the button's tooltip
    success = page.get_by_text("service(s) visible")
    success.wait_for()
    assert f"Connected to http://127.0.0.1:{reference_server.port}" in success.inner_text()

    saved = cluster.api._call("GET", "/connections/mrs_ui")
    assert saved["conn_type"] == "mrsdeploy"
    assert (saved["host"], saved["port"], saved["login"]) == (
        "127.0.0.1",
        reference_server.port,
        "admin",
    )
    extra = json.loads(saved["extra"])
    assert float(extra["timeout"]) == 20 and int(extra["max_retries"]) == 1
    # The password is stored as typed: a connection test through the API passes with it.
    tested = cluster.api._call(
        "POST",
        "/connections/test",
        json={"connection_id": "mrs_ui", "conn_type": "mrsdeploy", "extra": saved["extra"]},
    )
    assert tested["status"] is True, tested


def test_a_wrong_password_shows_the_hooks_message(
    cluster: AirflowCluster, reference_server: ReferenceServer, page: Any
) -> None:
    typed = {
        "host": "127.0.0.1",
        "port": str(reference_server.port),
        "login": "admin",
        "password": "not-the-password",
        "element_max_retries": "0",
    }
    row = add_connection(page, cluster.base_url, "mrs_ui_wrong", typed)
    test_button = row.get_by_role("button", name="Test Connection")
    test_button.click()
    test_button.hover()
    failure = page.get_by_text("POST /login")
    failure.wait_for()
    message = failure.inner_text()
    assert "401" in message or "403" in message, message
    assert "not-the-password" not in page.content()


def test_the_submit_tasks_extra_link_opens_the_batch_page(
    cluster: AirflowCluster, reference_server: ReferenceServer, page: Any, tmp_path: Path
) -> None:
    cluster.wait_for_dag(SUBMIT_DAG)
    run_id = "browser_extra_link"
    conf = {"destination": str(tmp_path / "outputs")}
    # The batch is kept slow until the deferral has settled (a scheduler race: docs/e2e.md).
    with reference_server.faults(service="mtService", rowDelaySeconds=ROW_DELAY):
        cluster.api.trigger(SUBMIT_DAG, run_id, "2026-02-01T00:00:00+00:00", conf)
        cluster.wait_deferred_and_settled(SUBMIT_DAG, run_id, "score", 120)
    assert cluster.wait_for_run(SUBMIT_DAG, run_id, 180) == "success"
    batch_id = cluster.api.xcom(SUBMIT_DAG, run_id, "score", "batch_set")["batches"][0]["batch_id"]

    page.goto(f"{cluster.base_url}/dags/{SUBMIT_DAG}/runs/{run_id}/tasks/score")
    page.get_by_text("Details", exact=True).click()  # the task's extra links are listed there
    link = page.get_by_role("link", name="mrsdeploy batch status")
    href = link.get_attribute("href")
    assert href == (
        f"{cluster.base_url}/mrsdeploy/batches/mrsdeploy_default/mtService/v1.0.0/{batch_id}"
    )
    # The UI opens a link to its own origin in the same tab, another origin in a new one.
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page() as opened:
            link.click()
        batch_page = opened.value
    else:
        link.click()
        batch_page = page
    batch_page.wait_for_url(href)
    assert batch_page.locator("#state").inner_text() == "Complete"
    assert batch_page.locator("#completed").inner_text() == "5"
    assert batch_page.locator("#total").inner_text() == "5"
    assert batch_page.locator("#batch-id").inner_text() == batch_id
    assert batch_page.locator("#rows tbody tr").count() == 5
    assert batch_page.locator("#succeeded").inner_text() == "5"

    # Signing in is not tested here: the cluster makes every visitor an admin
    # (simple_auth_manager_all_admins). tests/ui/test_api_server.py shows that the page refuses
    # anyone not signed in (401) and a user who may not read the connection (403).
