"""The server the pytest plugin runs: the real app (`create_app`) under uvicorn, in a thread of
the test process, on a migrated SQLite file of its own.

One app, one database, two listeners on loopback ports chosen by the system: plain HTTP
(`base_url`) and HTTPS (`https_base_url`, with a certificate made for the session and trusted
through `ca_file`), since Vonage's SDKs speak only HTTPS. The HTTP listener runs the app's
lifespan (its sender and webhook dispatcher); the HTTPS one serves the same app without it.

`call(use_case)` runs a use case in-process against the same database, as the command line
does (accounts provision, the outbox's webhooks and attempts): on an event loop and a thread
of its own, as the command line is a process of its own. (Not on the server's loop: SQLite
waits for its write lock without letting go of the thread, so a second connection on the
server's loop would wait for a lock that only that loop could release.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from ..config import Settings
from ..storage.databases import open_database
from ..storage.uow import SqlUnitOfWorkFactory
from .certificates import make_certificates

T = TypeVar("T")
HOST = "127.0.0.1"

# The settings the plugin's server starts from: webhooks retried quickly and given up on soon
# (a test sees a failing receiver fail within seconds), loopback receivers allowed, no access
# log. Any Settings field can be changed by the `chatapp_server_settings` fixture.
TEST_SETTINGS: dict[str, Any] = {
    "webhook_timeout_seconds": 2.0,
    "webhook_retry_first_seconds": 0.2,
    "webhook_retry_max_interval_seconds": 1.0,
    "webhook_retry_for_seconds": 3.0,
    "webhook_deny_private": False,
    "provider_timeout_seconds": 5.0,
    "provider_retry_first_seconds": 0.2,
    "provider_retry_max_seconds": 1.0,
    "provider_retry_horizon_seconds": 10.0,
    "access_log": False,
    "log_level": "warning",
}


def test_settings(folder: Path, **changes: Any) -> Settings:
    """Settings of a server on an SQLite file in `folder`, TEST_SETTINGS and `changes` applied."""
    url = f"sqlite:///{folder / 'chatapp-accounts.sqlite3'}"
    return Settings(database_url=url, host=HOST, port=0).with_(**{**TEST_SETTINGS, **changes})


class ChatappServer:
    """A running server. `base_url` (http), `https_base_url`, `api_host` (host:port of the
    HTTPS listener, what Vonage's SDKs take as `api_host`), `ca_file` (trust it by this file),
    `settings`, `database_url`."""

    def __init__(self, folder: Path, settings: Settings | None = None) -> None:
        self.folder = folder
        self.settings = settings or test_settings(folder)
        self.ca_file, self._certfile, self._keyfile = make_certificates(folder)
        self.port = 0
        self.https_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the operator's, for call()
        self._operator: threading.Thread | None = None
        self._servers: list[uvicorn.Server] = []
        self._factory: SqlUnitOfWorkFactory | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        # api_key -> signature secret of the tenants the plugin made (its receivers check with it)
        self.signature_secrets: dict[str, str] = {}

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def https_base_url(self) -> str:
        return f"https://{self.api_host}"

    @property
    def api_host(self) -> str:
        return f"{HOST}:{self.https_port}"

    def start(self, timeout: float = 60.0) -> ChatappServer:
        from ..cli import migrated  # the same migration as `chatapp-accounts serve`

        engine, cipher = migrated(self.settings, create=True)
        loop = asyncio.new_event_loop()
        self._operator = threading.Thread(
            target=loop.run_forever, name="chatapp-operator", daemon=True
        )
        self._operator.start()
        self._factory = SqlUnitOfWorkFactory(
            open_database(engine, pool_size=1, pool_timeout=self.settings.db_pool_timeout), cipher
        )
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(cipher,), name="chatapp-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"the chatapp-accounts server did not start within {timeout} s")
        if self._failure is not None:
            raise RuntimeError(f"the chatapp-accounts server did not start: {self._failure!r}")
        return self

    def _run(self, cipher: Any) -> None:
        try:
            asyncio.run(self._serve(cipher))
        except BaseException as exc:  # noqa: BLE001 - said by start(), which waits for it
            self._failure = exc
        finally:
            self._ready.set()

    async def _serve(self, cipher: Any) -> None:
        from ..api.app import create_app
        from ..server import uvicorn_options

        app = create_app(self.settings, cipher=cipher)
        options = uvicorn_options(host=HOST, port=0, log_level=self.settings.log_level)
        options.pop("workers")
        plain = uvicorn.Server(uvicorn.Config(app, **options, log_config=None))
        tls = {"ssl_certfile": str(self._certfile), "ssl_keyfile": str(self._keyfile)}
        secure = uvicorn.Server(
            uvicorn.Config(app, **{**options, **tls}, log_config=None, lifespan="off")
        )
        self._servers = [secure, plain]
        serving = asyncio.gather(plain.serve(), secure.serve())
        while not (plain.started and secure.started):
            if serving.done():
                await serving  # a failure to start: raised here, said by start()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        self.port = plain.servers[0].sockets[0].getsockname()[1]
        self.https_port = secure.servers[0].sockets[0].getsockname()[1]
        self._ready.set()
        await serving

    def call(
        self, use_case: Callable[[SqlUnitOfWorkFactory], Awaitable[T]], timeout: float = 30.0
    ) -> T:
        """`use_case(uow_factory)` on the server's event loop, against its database."""
        if self._loop is None or self._factory is None:
            raise RuntimeError("the chatapp-accounts server is not running")
        factory = self._factory
        done: Future[T] = asyncio.run_coroutine_threadsafe(_awaited(use_case(factory)), self._loop)
        return done.result(timeout)

    def stop(self) -> None:
        # The HTTPS listener stops at once: it has no lifespan to finish, and a client that
        # keeps an idle TLS connection open (requests' pool, in Vonage's SDK) would keep a
        # graceful stop waiting for its close_notify until the TLS shutdown timeout (30 s).
        for server in self._servers:
            server.force_exit = server.config.lifespan == "off"
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                logging.getLogger(__name__).warning("the chatapp-accounts server did not stop")
        loop, factory = self._loop, self._factory
        if loop is not None and factory is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(factory.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            if self._operator is not None:
                self._operator.join(10)
            loop.close()
            self._loop = self._factory = None

    def __enter__(self) -> ChatappServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
