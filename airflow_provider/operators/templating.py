"""Telling a Jinja template from a value, for checks made when a DAG file is parsed, and which
template fields Airflow may render."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

#: The template field that holds either a source (a path or URL, a template) or the rows
#: themselves (data, never a template).
RECORDS_FIELD = "records"


def is_template(value: object) -> bool:
    """Whether ``value`` is known only once Airflow renders the task's templates (checked
    then): a Jinja template (an expression ``{{ ... }}`` or a statement ``{% ... %}``), or
    something Airflow resolves while rendering (an ``XComArg`` such as ``upstream.output``, a
    DAG param)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return _resolved_by_airflow(value)


def _resolved_by_airflow(value: object) -> bool:
    """Whether Airflow resolves ``value`` while rendering (an ``XComArg``, a DAG param, an
    ``ObjectStoragePath``): found on the value's class, so a DataFrame column named
    ``resolve`` does not count."""
    return callable(getattr(type(value), "resolve", None))


def renders_records(value: object) -> bool:
    """Whether Airflow should render a ``records`` value.

    A string is a path or URL, and may be a template (``s3://lake/cars/{{ ds }}.parquet``).
    Anything Airflow resolves while rendering (an ``XComArg`` such as ``upstream.output``, a
    DAG param, an ``ObjectStoragePath``) must still go through rendering, or it would reach
    the task unresolved; it is found on the value's class, so a DataFrame column named
    ``resolve`` does not count. Everything else is inline data (a list of dicts, a DataFrame):
    Airflow would render every string inside a list, sending ``"x = {{ 6 * 7 }}"`` as
    ``"x = 42"`` and failing on a value holding ``{{``, while the same rows as a DataFrame are
    sent as they are. Rows are data: they are sent as given, whatever their form.
    """
    return isinstance(value, str) or _resolved_by_airflow(value)


def fields_to_render(operator: object, parent: object, template_fields: Iterable[str]) -> list[str]:
    """The template fields to render on ``parent``: all of them, less ``records`` when the
    operator is rendering its own fields and its ``records`` are inline rows (see
    :func:`renders_records`).

    :param operator: the operator whose templates are being rendered.
    :param parent: the object whose fields are rendered now (the operator, or an object
        nested in one of its fields, whose own fields are left as they are).
    :param template_fields: the names Airflow was about to render.
    """
    fields = list(template_fields)
    if (
        parent is operator
        and RECORDS_FIELD in fields
        and not renders_records(getattr(operator, RECORDS_FIELD, None))
    ):
        fields.remove(RECORDS_FIELD)
    return fields


class RecordsTemplating(BaseOperator):
    """Renders templates as Airflow does, except inline ``records`` rows: they are data, sent
    as given, never templates (see :func:`renders_records`). Shared by the operators that take
    ``records`` (Submit, Collect, Repair), listed before their operator base class."""

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Overridden here, not in ``render_template_fields``: a mapped task's rendering calls
        # this method directly.
        fields = fields_to_render(self, parent, template_fields)
        super()._do_render_template_fields(parent, fields, context, jinja_env, seen_oids)
