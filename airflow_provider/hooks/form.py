"""The connection form as Airflow 3.1 asks for it: from the hook, as WTForms fields.

Airflow 3.2 and later read the form from the provider's metadata (``conn-fields`` and
``ui-field-behaviour``) without importing the hook. Airflow 3.1 ignores those keys and calls
the hook's ``get_connection_form_widgets`` and ``get_ui_field_behaviour`` instead. Both forms
are built here from the same two values of :mod:`airflow_provider.provider_info`, so a field
added to ``CONN_FIELDS`` appears on every supported release.

Airflow 3.1 accepts only four WTForms field classes (string, integer, password, boolean), and
its API server builds the form without Flask AppBuilder or WTForms installed, by substituting
look-alikes for the names imported below (``HookMetaService``). So the imports happen inside
the function, when Airflow asks, and a JSON-schema ``number`` becomes a text field (the hook
reads ``"2.5"`` as 2.5, as it does for any extra given as text).
"""

from __future__ import annotations

from typing import Any

from airflow_provider.provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR

#: JSON-schema types the form knows; anything else is shown as a text field.
FIELD_KINDS = frozenset({"string", "boolean", "integer", "number"})


def field_kind(definition: dict[str, Any]) -> str:
    """The JSON-schema type of a ``CONN_FIELDS`` entry, without ``"null"``.

    :param definition: one value of ``CONN_FIELDS``.
    """
    kinds = definition.get("schema", {}).get("type", "string")
    if isinstance(kinds, str):
        kinds = [kinds]
    named = [kind for kind in kinds if kind != "null"]
    return named[0] if named else "string"


def connection_form_widgets() -> dict[str, Any]:
    """One WTForms field per ``CONN_FIELDS`` entry, keyed by the extra's name.

    Booleans become check boxes, integers number inputs, ``format: password`` strings
    password inputs (masked in the form), and an ``enum`` a choice checked by ``any_of``.
    Every field is optional, as the extras are; a ``default`` is pre-filled.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, definition in CONN_FIELDS.items():
        schema = definition.get("schema", {})
        label = lazy_gettext(definition.get("label", name))
        description = definition.get("description", "")
        default = schema.get("default")
        kind = field_kind(definition)
        if kind == "boolean":
            widgets[name] = BooleanField(label, description=description, default=default)
        elif kind == "integer":
            widgets[name] = IntegerField(
                label,
                widget=BS3TextFieldWidget(),
                validators=[Optional()],
                description=description,
                default=default,
            )
        elif schema.get("format") == "password":
            widgets[name] = PasswordField(
                label, widget=BS3PasswordFieldWidget(), description=description
            )
        else:
            validators = [Optional()]
            if schema.get("enum"):
                validators.append(any_of(list(schema["enum"])))
            widgets[name] = StringField(
                label,
                widget=BS3TextFieldWidget(),
                validators=validators,
                description=description,
                default=None if default is None else str(default),
            )
    return widgets


def ui_field_behaviour() -> dict[str, Any]:
    """``UI_FIELD_BEHAVIOUR`` with the keys the hook method answers in (``hidden_fields``,
    ``relabeling``, ``placeholders``), as copies: Airflow prefixes the placeholders' keys in
    place."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR.get("hidden-fields", [])),
        "relabeling": dict(UI_FIELD_BEHAVIOUR.get("relabeling", {})),
        "placeholders": dict(UI_FIELD_BEHAVIOUR.get("placeholders", {})),
    }
