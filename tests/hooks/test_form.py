"""The connection form: one source (``CONN_FIELDS``), the same form on Airflow 3.1 and later.

Airflow 3.1 asks the hook for the form; its API server does so without WTForms or Flask
AppBuilder installed, substituting its own look-alikes (``HookMetaService.Mock*``) for the
names the hook imports. These tests substitute the same look-alikes, so the fields are checked
the way that API server turns them into the form. The API server's own answer is checked in
``tests/ui/test_api_server.py``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider import provider_info as info
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.form import FIELD_KINDS, field_kind

#: The JSON-schema type each kind of field shows as in Airflow 3.1's form (only four field
#: classes exist there: a number is typed as text).
SHOWN_AS = {"string": "string", "boolean": "boolean", "integer": "integer", "number": "string"}


@pytest.fixture
def airflow_31_form_classes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The WTForms, Flask-Babel and Flask AppBuilder names the hook imports, as Airflow's API
    server provides them when those packages are not installed."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as meta

    modules = {
        "wtforms": {
            "StringField": meta.MockStringField,
            "IntegerField": meta.MockIntegerField,
            "PasswordField": meta.MockPasswordField,
            "BooleanField": meta.MockBooleanField,
        },
        "wtforms.validators": {"Optional": meta.MockOptional, "any_of": meta.MockEnum},
        "flask_babel": {"lazy_gettext": str},
        "flask_appbuilder": {},
        "flask_appbuilder.fieldwidgets": {
            "BS3TextFieldWidget": meta.MockAnyWidget,
            "BS3PasswordFieldWidget": meta.MockAnyWidget,
            "BS3TextAreaFieldWidget": meta.MockAnyWidget,
        },
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    yield meta


def dumped(widgets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each field as the API server hands it to the UI (a serialized ``Param``)."""
    return {name: field.param.dump() for name, field in widgets.items()}


def test_every_conn_field_is_of_a_kind_the_form_knows() -> None:
    for name, definition in info.CONN_FIELDS.items():
        assert field_kind(definition) in FIELD_KINDS, name


def test_each_conn_field_becomes_a_field_of_its_kind(airflow_31_form_classes: Any) -> None:
    meta = airflow_31_form_classes
    widgets = MrsDeployHook.get_connection_form_widgets()
    assert list(widgets) == list(info.CONN_FIELDS)
    classes = {
        "string": meta.MockStringField,
        "boolean": meta.MockBooleanField,
        "integer": meta.MockIntegerField,
        "number": meta.MockStringField,
    }
    for name, form in dumped(widgets).items():
        definition = info.CONN_FIELDS[name]
        schema = definition["schema"]
        kind = field_kind(definition)
        secret = schema.get("format") == "password"
        assert widgets[name].field_class is (meta.MockPasswordField if secret else classes[kind])
        assert form["schema"]["title"] == definition["label"], name
        assert form["description"] == definition["description"], name
        assert form["schema"]["type"] == [SHOWN_AS[kind], "null"], name
        assert form["schema"].get("format") == ("password" if secret else None), name
        assert form["schema"].get("enum") == schema.get("enum"), name
        default = schema.get("default")
        if default is not None and SHOWN_AS[kind] == "string":
            default = str(default)
        assert form["value"] == default, name


def test_the_form_field_kinds_are_the_ones_in_conn_fields(airflow_31_form_classes: Any) -> None:
    """Spot checks, so a wrong mapping cannot hide behind the generic loop above."""
    form = dumped(MrsDeployHook.get_connection_form_widgets())
    assert form["bearer_token"]["schema"]["format"] == "password"
    assert form["verify"]["schema"]["type"] == ["boolean", "null"] and form["verify"]["value"]
    assert form["max_retries"]["schema"]["type"] == ["integer", "null"]
    assert form["max_retries"]["value"] == 5
    assert form["scheme"]["schema"]["enum"] == ["http", "https"]
    assert form["timeout"]["value"] == "60"


def test_a_field_added_to_conn_fields_appears_in_both_forms(
    airflow_31_form_classes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = info._field("Proxy URL", "string", "The proxy to reach the server through")
    monkeypatch.setitem(info.CONN_FIELDS, "proxy_url", added)
    (declared,) = info.provider_info()["connection-types"]
    assert declared["conn-fields"]["proxy_url"] == added
    form = dumped(MrsDeployHook.get_connection_form_widgets())
    assert form["proxy_url"]["schema"]["title"] == "Proxy URL"
    assert form["proxy_url"]["schema"]["type"] == ["string", "null"]


def test_the_field_behaviour_is_the_declared_one() -> None:
    (declared,) = info.provider_info()["connection-types"]
    behaviour = MrsDeployHook.get_ui_field_behaviour()
    declared_behaviour = declared["ui-field-behaviour"]
    assert behaviour == {
        "hidden_fields": declared_behaviour["hidden-fields"],
        "relabeling": declared_behaviour["relabeling"],
        "placeholders": declared_behaviour["placeholders"],
    }
    assert behaviour["hidden_fields"] == ["schema"]
    assert behaviour["relabeling"] == {"login": "Username"}
    # Airflow prefixes the placeholders' keys in place: the declared value must not change.
    behaviour["placeholders"]["extra__mrsdeploy__x"] = "y"
    behaviour["hidden_fields"].append("port")
    assert MrsDeployHook.get_ui_field_behaviour()["hidden_fields"] == ["schema"]
    assert "extra__mrsdeploy__x" not in info.UI_FIELD_BEHAVIOUR["placeholders"]


def test_the_form_methods_are_the_hooks_own() -> None:
    """Airflow 3.1 reads them only when defined on the hook class itself."""
    assert "get_connection_form_widgets" in MrsDeployHook.__dict__
    assert "get_ui_field_behaviour" in MrsDeployHook.__dict__


def test_no_field_with_a_default_has_a_name_airflow_masks() -> None:
    """Airflow shows the value of a field whose name looks secret (``token``, ``proxy``...) as
    ``***``, the form's pre-filled default included, and the form then saves ``***`` as the
    value: a field with a default must have a name Airflow does not mask."""
    from airflow.sdk._shared.secrets_masker import should_hide_value_for_key

    masked = [
        name
        for name, field in info.CONN_FIELDS.items()
        if field["schema"].get("default") is not None and should_hide_value_for_key(name)
    ]
    assert masked == []
