"""A ``~/.netrc`` naming the server (or a ``default`` entry) changes nothing: the call flow's
bearer token is what both transports send, never Basic credentials from the file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.hooks import MrsDeployHook


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_netrc_entry_does_not_replace_the_bearer_token(
    mrsdeploy_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password else\ndefault login x password y\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    hook = MrsDeployHook()

    async def in_loop() -> Any:
        try:
            return await hook.alist_batch_files("mtService", "v1.0.0", "no-such-batch", 0)
        finally:
            await hook.aclose()

    try:
        if path == "sync":
            assert hook.get_service("mtService", "v1.0.0").name == "mtService"
        else:
            assert asyncio.run(in_loop()) == []  # authenticated: the server says "no files"
    finally:
        hook.close()
