"""Authentication and roles against a real server on loopback."""

from __future__ import annotations

from contextlib import closing

import httpx
from live_server import ADMIN_PASSWORD, LiveServer


def test_health_needs_no_login(server: LiveServer) -> None:
    with server.anonymous() as c:
        r = c.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_everything_else_needs_login(server: LiveServer) -> None:
    with server.anonymous() as c:
        for method, path in [("GET", "/api/projects"), ("POST", "/api/projects"), ("GET", "/api/auth/me"),
                             ("GET", "/api/users"), ("GET", "/api/projects/x/images"), ("GET", "/api/jobs/kinds")]:
            r = c.request(method, path)
            assert r.status_code == 401, (path, r.text)
            body = r.json()
            assert body["error"] == "NotAuthenticated" and body["hint"], body
            assert "Traceback" not in r.text


def test_login_sets_a_safe_session_cookie(server: LiveServer) -> None:
    with server.anonymous() as c:
        bad = c.post("/api/auth/login", json={"username": "admin", "password": "wrong-password"})
        assert bad.status_code == 403 and "wrong user name or password" in bad.json()["message"]
        ok = c.post("/api/auth/login", json={"username": "admin", "password": "admin-pass-123"})
        assert ok.status_code == 200
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert c.get("/api/auth/me").json()["user"]["role"] == "admin"
        c.post("/api/auth/logout")
        assert c.get("/api/auth/me").status_code == 401


def test_api_token_works_until_revoked(admin: httpx.Client, server: LiveServer) -> None:
    token = admin.post("/api/auth/tokens", json={"name": "script"}).json()
    assert token["token"].startswith("ll_")
    headers = {"Authorization": f"Bearer {token['token']}"}
    with server.anonymous() as c:
        assert c.get("/api/auth/me", headers=headers).json()["user"]["username"] == "admin"
        assert "token" not in admin.get("/api/auth/tokens").json()[0]
        assert admin.delete(f"/api/auth/tokens/{token['id']}").status_code == 200
        assert c.get("/api/auth/me", headers=headers).status_code == 401
        assert c.get("/api/auth/me", headers={"Authorization": "Bearer ll_forged"}).status_code == 401


def test_roles_are_enforced(admin: httpx.Client, server: LiveServer, project: str) -> None:
    for name, role in [("ann", "annotator"), ("rev", "reviewer")]:
        r = admin.post("/api/users", json={"username": name, "password": "password-1", "role": role})
        assert r.status_code in (201, 409), r.text
    ann, rev = server.client("ann", "password-1"), server.client("rev", "password-1")
    with closing(ann), closing(rev):
        assert ann.get("/api/users").status_code == 403
        assert ann.post("/api/users", json={"username": "x", "password": "password-1"}).status_code == 403
        r = ann.delete(f"/api/projects/{project}")
        assert r.status_code == 403 and r.json()["error"] == "PermissionDeniedError"
        assert ann.get(f"/api/projects/{project}").status_code == 200
        image_id = ann.get(f"/api/projects/{project}/images").json()["items"][0]["id"]
        created = ann.post(f"/api/projects/{project}/images/{image_id}/annotations",
                           json={"label": "cat", "bbox": [1, 1, 20, 20]})
        assert created.status_code == 201
        review = {"action": "accept"}
        assert ann.post(f"/api/projects/{project}/annotations/{created.json()['id']}/review",
                        json=review).status_code == 403
        # the reviewer may review: this one is a person's box, so the service refuses it with a reason
        r = rev.post(f"/api/projects/{project}/annotations/{created.json()['id']}/review", json=review)
        assert r.status_code == 422 and "only model proposals" in r.json()["message"]
        assert rev.delete(f"/api/projects/{project}").status_code == 403
    assert admin.patch("/api/users/ann", json={"role": "reviewer"}).json()["role"] == "reviewer"
    assert any(u["username"] == "rev" for u in admin.get("/api/users").json())


def test_web_ui_docs_and_security_headers(server: LiveServer) -> None:
    with server.anonymous() as c:
        index = c.get("/")
        assert index.status_code == 200 and "<div id=\"app\">" in index.text
        assert "default-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["x-frame-options"] == "DENY"
        assert c.get("/p/anything/annotate").text == index.text  # client-side routes fall back to the app
        docs = c.get("/api/docs")
        assert docs.status_code == 200 and "/swagger/swagger-ui-bundle.js" in docs.text
        assert c.get("/swagger/swagger-ui-bundle.js").status_code == 200
        spec = c.get("/api/openapi.json").json()
        assert "/api/projects/{slug}/images" in spec["paths"]
        assert c.get("/api/nope").status_code == 404
        assert c.get("/api/health").headers["x-content-type-options"] == "nosniff"


def test_guessing_passwords_is_slowed_and_other_sites_cannot_use_the_cookie(admin: httpx.Client, server: LiveServer,
                                                                             project: str) -> None:
    admin.post("/api/users", json={"username": "target", "password": "password-1", "role": "annotator"})
    with server.anonymous() as c:
        codes = [c.post("/api/auth/login", json={"username": "target", "password": f"guess-{i}"}).status_code
                 for i in range(12)]
        assert codes[:10] == [403] * 10 and codes[10:] == [429, 429]
        locked = c.post("/api/auth/login", json={"username": "target", "password": "password-1"})
        assert locked.status_code == 429 and "try again in" in locked.json()["message"]  # even the right one
    with server.anonymous() as c:  # other names are not locked by it
        assert c.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200
    url = f"/api/projects/{project}/classes"
    evil = admin.post(url, json={"names": ["from-evil"]}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "may not change anything" in evil.json()["message"]
    sandboxed = admin.post(url, json={"names": ["from-null"]}, headers={"Origin": "null"})
    assert sandboxed.status_code == 403
    own = admin.post(url, json={"names": ["from-here"]}, headers={"Origin": server.url})
    assert own.status_code == 201
    proxied = admin.post(url, json={"names": ["via-proxy"]}, headers={"Origin": "https://labels.example.org",
                                                                       "X-Forwarded-Host": "labels.example.org"})
    assert proxied.status_code == 201  # a TLS proxy that rewrites Host says where the page came from
    assert admin.get(url, headers={"Origin": "https://evil.example"}).status_code == 200  # reading is not changing
    names = [c["name"] for c in admin.get(url).json()]
    assert "from-here" in names and "from-evil" not in names and "from-null" not in names


def test_session_cookie_is_secure_behind_a_trusted_tls_proxy(server: LiveServer) -> None:
    body = {"username": "admin", "password": ADMIN_PASSWORD}
    with server.anonymous() as c:  # the test talks from 127.0.0.1, the default trusted proxy
        direct = c.post("/api/auth/login", json=body)
        proxied = c.post("/api/auth/login", json=body, headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in direct.headers["set-cookie"].lower()
    assert "secure" in proxied.headers["set-cookie"].lower() and "httponly" in proxied.headers["set-cookie"].lower()
