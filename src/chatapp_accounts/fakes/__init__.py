"""Loopback fakes of the live providers, to run the app's live channels without reaching Meta or
Google: `meta` (Graph API: Messenger Send API and WhatsApp Cloud API, `fakes/meta.py`) and
`rbm` (RCS Business Messaging and its OAuth token endpoint, `fakes/rbm.py`). Their module
docstrings are the reference: routes, answers, error-injection tables, callbacks, control
routes.

From a test, in its event loop:

    fake = MetaFake(callback_url=..., app_secret=...)
    await fake.start("127.0.0.1", 0)    # the bound port; fake.base_url, fake.graph_url
    ...
    await fake.stop()

From the command line, `main(argv)`:

    meta|rbm --port N [--host 127.0.0.1] --callback-url URL [--latency-ms N]
             [--app-secret S] (meta) [--client-token T] [--service-account-out PATH] (rbm)

prints one line (where it listens and the CHATAPP_* settings that point the app at it) and
serves until interrupted (Ctrl-C or SIGTERM: exit 0). Usage errors exit 2 with one line on
stderr; a port that cannot be bound exits 1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from .meta import DEFAULT_APP_SECRET, MetaFake
from .meta import INJECTIONS as META_INJECTIONS
from .rbm import DEFAULT_CLIENT_TOKEN, RbmFake
from .rbm import INJECTIONS as RBM_INJECTIONS

__all__ = ["META_INJECTIONS", "RBM_INJECTIONS", "MetaFake", "RbmFake", "main"]

PROG = "chatapp-accounts fake-provider"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (0-65535): {port}")
    return port


def _latency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve a loopback fake of a live provider until interrupted.",
    )
    parser.add_argument("provider", choices=["meta", "rbm"], help="which fake")
    parser.add_argument("--port", type=_port, required=True, help="port (0: any free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument(
        "--callback-url", type=_url, required=True, help="where the fake sends its webhooks"
    )
    parser.add_argument("--latency-ms", type=_latency, default=0, help="delay of every send")
    parser.add_argument("--app-secret", help=f"meta: signs webhooks (default {DEFAULT_APP_SECRET})")
    parser.add_argument(
        "--client-token", help=f"rbm: signs events (default {DEFAULT_CLIENT_TOKEN})"
    )
    parser.add_argument(
        "--service-account-out",
        type=Path,
        help="rbm: where to write the service-account key (default: a file in the temp folder)",
    )
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.provider == "meta":
        for option, value in (
            ("--client-token", args.client_token),
            ("--service-account-out", args.service_account_out),
        ):
            if value is not None:
                raise _UsageError(f"{option} applies to rbm only")
    elif args.app_secret is not None:
        raise _UsageError("--app-secret applies to meta only")
    for option, value in (("--app-secret", args.app_secret), ("--client-token", args.client_token)):
        if value is not None and not value:
            raise _UsageError(f"{option} must not be empty")


async def _serve(args: argparse.Namespace) -> None:
    latency = args.latency_ms / 1000
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
    created: Path | None = None
    if args.provider == "meta":
        meta = MetaFake(
            callback_url=args.callback_url,
            latency=latency,
            app_secret=args.app_secret or DEFAULT_APP_SECRET,
        )
        await meta.start(args.host, args.port)
        secret = DEFAULT_APP_SECRET if args.app_secret is None else "<your --app-secret>"
        line = (
            f"meta fake listening on {meta.base_url}; set "
            f"CHATAPP_META_GRAPH_URL={meta.graph_url} CHATAPP_META_APP_SECRET={secret}"
        )
        stop = meta.stop
    else:
        rbm = RbmFake(
            callback_url=args.callback_url,
            latency=latency,
            client_token=args.client_token or DEFAULT_CLIENT_TOKEN,
        )
        port = await rbm.start(args.host, args.port)
        path = args.service_account_out
        if path is None:
            path = created = Path(tempfile.gettempdir()) / f"chatapp-rbm-fake-{port}.json"
        try:
            rbm.write_service_account(path)
        except OSError:
            await rbm.stop()
            raise
        token = DEFAULT_CLIENT_TOKEN if args.client_token is None else "<your --client-token>"
        line = (
            f"rbm fake listening on {rbm.base_url}; set CHATAPP_RBM_URL={rbm.base_url} "
            f"CHATAPP_RBM_TOKEN_URL={rbm.token_url} CHATAPP_RBM_SERVICE_ACCOUNT_FILE={path} "
            f"CHATAPP_RBM_CLIENT_TOKEN={token}"
        )
        stop = rbm.stop
    try:
        print(line, flush=True)
        await stopping.wait()
    finally:
        await stop()
        if created is not None:
            with contextlib.suppress(OSError):
                os.unlink(created)


def main(argv: Sequence[str]) -> int:
    """Run a fake from the command line (see the module docstring); answers the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
        _check(args)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc} (see {PROG} --help)", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"{PROG}: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
