"""Authentication and roles against a real server on loopback."""

from __future__ import annotations

from contextlib import closing

import httpx
from live_server import LiveServer


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
