"""Telling a Jinja template from a value, for checks made when a DAG file is parsed."""

from __future__ import annotations


def is_template(value: object) -> bool:
    """Whether ``value`` is a Jinja template, known only once rendered (checked then)."""
    return isinstance(value, str) and "{{" in value
