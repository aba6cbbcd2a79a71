"""Issue 12 item 14, as the failure happens in production: PostgreSQL goes away in the
middle of a run and comes back. A TCP proxy (a thread of this test, on 127.0.0.1)
stands between one app and PostgreSQL; the app is created once and never again.

Up: requests succeed. Cut (every open connection closed, new ones refused): the API
answers 503 ``database_unavailable`` with ``Retry-After`` and pages a 503 page, never
500. Restored: the next requests succeed with the same app (the pool reconnects)."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import app_config
from tests.fixtures.tenants import api_token, auth, make_tenant, web_login

pytestmark = pytest.mark.timeout(300)


class Proxy:
    """A TCP proxy on 127.0.0.1 that can be cut (open connections closed, the port
    refusing new ones) and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.accepted = 0
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and close every open one, both ways."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def refuses(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 2):
            return False
        return True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied(database, redis_url, redis_prefix, app):
    """One app whose every database connection goes through the proxy."""
    from signoff.app import create_app

    url = make_url(database.app_url.render_as_string(hide_password=False))
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(host="127.0.0.1", port=proxy.port)
    proxied_app = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}px{uuid.uuid4().hex[:6]}:",
            SQLALCHEMY_DATABASE_URI=through.render_as_string(hide_password=False),
        )
    )
    yield proxied_app, proxy
    proxy.cut()


def _unavailable_api(resp: Any) -> None:
    assert resp.status_code == 503, resp.get_data(as_text=True)[:500]
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.get_json()["code"] == "database_unavailable"


def _unavailable_page(resp: Any) -> None:
    assert resp.status_code == 503, resp.get_data(as_text=True)[:500]
    assert int(resp.headers["Retry-After"]) > 0
    assert "unavailable" in resp.get_data(as_text=True)


def test_postgresql_lost_mid_run_answers_503_and_recovers_without_a_restart(proxied, app):
    proxied_app, proxy = proxied
    tenant = make_tenant(app)
    api = proxied_app.test_client()
    token = api_token(api, tenant.username("alice"), tenant.slug)
    web = proxied_app.test_client()
    web_login(web, tenant.username("alice"))
    requests_url, home = "/api/v1/requests/", f"/t/{tenant.slug}/"

    # Up: both faces work, over pooled connections through the proxy.
    assert api.get(requests_url, headers=auth(token)).status_code == 200
    assert web.get(home).status_code == 200
    assert proxy.accepted >= 1

    # Cut: the pooled connections die under the app and new ones are refused.
    proxy.cut()
    assert proxy.refuses()
    for _ in range(2):  # the first request meets a dead pooled connection, the next a refusal
        _unavailable_api(api.get(requests_url, headers=auth(token)))
        _unavailable_page(web.get(home))
    _unavailable_api(
        api.post(
            "/api/v1/security/login",
            json={
                "username": tenant.username("bob"),
                "password": "x",
                "provider": "db",
                "tenant": tenant.slug,
            },
        )
    )
    assert proxied_app.test_client().get("/ready").status_code == 503

    # Restored: the same app serves the next requests.
    proxy.restore()
    assert not proxy.refuses()
    assert api.get(requests_url, headers=auth(token)).status_code == 200
    assert web.get(home).status_code == 200
    assert proxied_app.test_client().get("/ready").status_code == 200
    api_token(proxied_app.test_client(), tenant.username("bob"), tenant.slug)
