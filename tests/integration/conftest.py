"""Fixtures the admin API's tests share."""

from __future__ import annotations

import pytest

from chatapp_accounts.domain import admin
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory

from .helpers import token


@pytest.fixture
def root(uow_factory: SqlUnitOfWorkFactory) -> dict[str, str]:
    """An admin token with every scope, named `root`."""
    return token(uow_factory, "root", *admin.SCOPES)
