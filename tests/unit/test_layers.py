"""The layers import only what they may (README, "Development"): the domain neither HTTP, SQL
nor a cryptography library; the command line not the HTTP layer. Each checked in a fresh
interpreter, where nothing else was imported first."""

from __future__ import annotations

import subprocess
import sys


def _imported(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_domain_imports_no_http_sql_or_cryptography() -> None:
    domain = ["accounts", "admin", "applications", "callbacks", "errors", "messages", "models",
              "payloads", "ports", "providers", "rules", "sandbox", "tenants", "webhooks"]  # fmt: skip
    loaded = _imported([f"chatapp_accounts.domain.{name}" for name in domain])
    assert "chatapp_accounts" in loaded
    forbidden = {"starlette", "uvicorn", "sqlalchemy", "psycopg", "sqlite3", "cryptography", "jwt",
                 "aiohttp"}  # fmt: skip
    assert loaded.isdisjoint(forbidden), loaded & forbidden


def test_the_command_line_does_not_import_the_http_layer() -> None:
    loaded = _imported(["chatapp_accounts.cli"])
    assert "chatapp_accounts" in loaded and "sqlalchemy" in loaded
    assert loaded.isdisjoint({"starlette", "uvicorn"}), loaded & {"starlette", "uvicorn"}
