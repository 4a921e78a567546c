"""Built-in demo services.

``mtService`` is the upstream documentation's example: a logistic regression ``am ~ hp + wt``
fitted on ``mtcars`` (answer(hp=120, wt=2.8) = 0.6418125). ``echoService`` and ``typesService``
are small services for tests: every output type, console output, files and a controllable
failure.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import struct
import zlib
from importlib import resources
from typing import Any

import numpy as np

from airflow_provider.server.invocation import ServiceContext

_MODULE = "airflow_provider.server.demo_services"

DEMO_SERVICES: list[dict[str, Any]] = [
    {
        "name": "mtService",
        "version": "v1.0.0",
        "callable": f"{_MODULE}:manual_transmission",
        "operationId": "manualTransmission",
        "description": "Probability of a manual transmission: logistic regression am ~ hp + wt "
        "fitted on mtcars.",
        "runtimeType": "Python",
        "inputParameterDefinitions": [
            {"name": "hp", "type": "numeric"},
            {"name": "wt", "type": "numeric"},
        ],
        "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
        "outputFileNames": ["answer.csv", "answer.png"],
    },
    {
        "name": "echoService",
        "version": "v1.0.0",
        "callable": f"{_MODULE}:echo",
        "operationId": "echo",
        "description": "Echoes a text n times; text 'fail' raises an error.",
        "runtimeType": "Python",
        "inputParameterDefinitions": [
            {"name": "text", "type": "character"},
            {"name": "n", "type": "integer"},
        ],
        "outputParameterDefinitions": [
            {"name": "echo", "type": "character"},
            {"name": "length", "type": "integer"},
            {"name": "ratio", "type": "numeric"},
            {"name": "empty", "type": "logical"},
            {"name": "words", "type": "vector"},
            {"name": "grid", "type": "matrix"},
            {"name": "table", "type": "data.frame"},
        ],
        "outputFileNames": ["echo.txt"],
    },
    {
        "name": "typesService",
        "version": "v1.0.0",
        "callable": f"{_MODULE}:identity",
        "operationId": "identity",
        "description": "Returns its inputs: one of each parameter type.",
        "runtimeType": "Python",
        "inputParameterDefinitions": [
            {"name": "flag", "type": "logical"},
            {"name": "x", "type": "numeric"},
            {"name": "k", "type": "integer"},
            {"name": "s", "type": "character"},
            {"name": "v", "type": "vector"},
            {"name": "m", "type": "matrix"},
            {"name": "df", "type": "data.frame"},
        ],
        "outputParameterDefinitions": [
            {"name": "flag", "type": "logical"},
            {"name": "x", "type": "numeric"},
            {"name": "k", "type": "integer"},
            {"name": "s", "type": "character"},
            {"name": "v", "type": "vector"},
            {"name": "m", "type": "matrix"},
            {"name": "df", "type": "data.frame"},
        ],
        "outputFileNames": [],
    },
]


def load_mtcars() -> list[dict[str, str]]:
    """The packaged ``mtcars`` table as dicts of strings."""
    text = (
        resources.files("airflow_provider.server")
        .joinpath("data/mtcars.csv")
        .read_text(encoding="utf-8")
    )
    return list(csv.DictReader(io.StringIO(text)))


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Logistic regression by iteratively reweighted least squares (what R's ``glm`` does).

    :param x: Design matrix including the intercept column.
    :param y: 0/1 response.
    :param iterations: Upper bound of Newton steps; stops earlier on convergence.
    """
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        eta = x @ beta
        mu = 1.0 / (1.0 + np.exp(-eta))
        weights = mu * (1.0 - mu)
        z = eta + (y - mu) / weights
        xtw = x.T * weights
        updated = np.linalg.solve(xtw @ x, xtw @ z)
        if np.max(np.abs(updated - beta)) < 1e-12:
            return updated
        beta = updated
    return beta


@functools.cache
def mtcars_coefficients() -> tuple[float, float, float]:
    """(intercept, hp, wt) of ``am ~ hp + wt`` on mtcars, fitted once per process."""
    rows = load_mtcars()
    x = np.array([[1.0, float(r["hp"]), float(r["wt"])] for r in rows])
    y = np.array([float(r["am"]) for r in rows])
    b0, b1, b2 = fit_logistic(x, y)
    return float(b0), float(b1), float(b2)


def _png(width: int, height: int, pixels: bytes) -> bytes:
    """A grayscale 8-bit PNG from row-major pixel bytes (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + pixels[row * width : (row + 1) * width] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def probability_bar(probability: float, width: int = 100, height: int = 10) -> bytes:
    """A small PNG bar filled in proportion to ``probability``."""
    filled = round(max(0.0, min(1.0, probability)) * width)
    row = b"\x20" * filled + b"\xe0" * (width - filled)
    return _png(width, height, row * height)


def manual_transmission(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """``mtService``: probability that a car with ``hp`` and ``wt`` has a manual gearbox."""
    hp, wt = float(inputs["hp"]), float(inputs["wt"])
    b0, b1, b2 = mtcars_coefficients()
    answer = 1.0 / (1.0 + math.exp(-(b0 + b1 * hp + b2 * wt)))
    ctx.print(f"hp={hp} wt={wt} answer={answer:.7f}")
    ctx.write_text("answer.csv", f"hp,wt,answer\n{hp!r},{wt!r},{answer!r}\n")
    ctx.write_bytes("answer.png", probability_bar(answer))
    return {"answer": answer}


def echo(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """``echoService``: repeats ``text`` ``n`` times; ``text == "fail"`` raises."""
    text, n = str(inputs["text"]), int(inputs["n"])
    if text == "fail":
        ctx.print("about to fail on request")
        raise ValueError("echoService was asked to fail")
    echoed = " ".join([text] * max(n, 0))
    ctx.print(f"echo: {echoed}")
    ctx.write_text("echo.txt", echoed)
    return {
        "echo": echoed,
        "length": len(echoed),
        "ratio": len(text) / n if n else 0.0,
        "empty": not echoed,
        "words": echoed.split(),
        "grid": [[i, i * i] for i in range(max(n, 0))],
        "table": {"i": list(range(max(n, 0))), "text": [text] * max(n, 0)},
    }


def identity(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """``typesService``: returns its inputs unchanged."""
    ctx.print("identity")
    return dict(inputs)
