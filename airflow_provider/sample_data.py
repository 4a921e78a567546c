"""Paths of the sample data shipped with the package (the mtcars records of the examples)."""

from __future__ import annotations

from importlib.resources import files


def mtcars_csv_path() -> str:
    """Local path of the packaged ``mtcars.csv`` (32 cars, 11 numeric columns plus the model)."""
    return str(files("airflow_provider").joinpath("server", "data", "mtcars.csv"))
