"""POST /api/verify_password/{user,admin}/<mail> (issue 14): slapd checks, nothing changes,
wrong answers count against the account's login throttling."""

import logging
import uuid

import pytest

from tests.conftest import SUFFIX, ApiClient, failed, read_entry, user_dn

PASSWORD = "Admin-Secret-2!"


def admin_dn(mail):
    return f"mail={mail},o=domainAdmins,{SUFFIX}"


@pytest.fixture
def accounts(api, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    user = f"u@{domain}"
    assert api.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
    admin = f"v{uuid.uuid4().hex[:8]}@admins.test"
    assert api.post(f"/api/admin/{admin}", {"password": PASSWORD}).status_code == 201
    return {"user": (user, user_dn(user)), "admin": (admin, admin_dn(admin))}


@pytest.mark.parametrize("kind", ["user", "admin"])
def test_right_and_wrong(api, accounts, root_connection, caplog, kind):
    mail, dn = accounts[kind]
    before = read_entry(root_connection, dn)
    caplog.set_level(logging.DEBUG)
    right = api.post(f"/api/verify_password/{kind}/{mail}", {"password": PASSWORD})
    assert right.status_code == 200 and right.json["_data"] == {"verified": True}, right.text
    wrong = api.post(f"/api/verify_password/{kind}/{mail}", {"password": "Wrong-Secret-9?"})
    assert wrong.status_code == 200 and wrong.json["_data"] == {"verified": False}, wrong.text
    # JSON bodies too
    assert api.post(f"/api/verify_password/{kind}/{mail}", json={"password": PASSWORD}).json["_data"]["verified"]
    assert read_entry(root_connection, dn) == before
    assert PASSWORD not in caplog.text and "Wrong-Secret-9?" not in caplog.text
    # the other kind's URL does not find the account
    other = "admin" if kind == "user" else "user"
    assert api.post(f"/api/verify_password/{other}/{mail}", {"password": PASSWORD}).json == failed(
        "NO_SUCH_ACCOUNT", detail=mail)


def test_refusals(api, accounts, new_domain):
    mail, _ = accounts["user"]
    assert api.post(f"/api/verify_password/user/{mail}").json == failed("INVALID_PARAMETER", param="password",
                                                                         detail="is required")
    result = api.post(f"/api/verify_password/user/{mail}", params={"password": PASSWORD})
    assert result.status_code == 400 and result.json["param"] == "password"
    assert api.post(f"/api/verify_password/user/{mail}", {"password": ""}).status_code == 400
    assert api.post("/api/verify_password/user/nobody@nowhere.test", {"password": PASSWORD}).status_code == 404
    # a domain admin of the user's domain, and a standalone normal admin: global admins only
    domain = mail.split("@")[1]
    assert api.post(f"/api/user/boss@{domain}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/admins/{domain}", {"addAdmin": f"boss@{domain}"}).status_code == 200
    for username in (f"boss@{domain}", accounts["admin"][0]):
        normal = ApiClient(api.app).login(username, PASSWORD)
        for kind, target in (("user", mail), ("admin", accounts["admin"][0])):
            result = normal.post(f"/api/verify_password/{kind}/{target}", {"password": PASSWORD})
            assert result.status_code == 403 and result.json["_msg"] == "PERMISSION_DENIED", result.text
    assert ApiClient(api.app).post(f"/api/verify_password/user/{mail}", {"password": PASSWORD}).status_code == 401


def test_wrong_answers_count_against_the_accounts_login_throttling(make_app, new_domain):
    api = ApiClient(make_app(LOGIN_MAX_FAILURES=3, LOGIN_FAILURE_WINDOW=600)).login()
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    mail = f"boss@{domain}"
    assert api.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/admins/{domain}", {"addAdmin": mail}).status_code == 200
    for _ in range(5):  # right answers give their attempt back
        assert api.post(f"/api/verify_password/user/{mail}", {"password": PASSWORD}).json["_data"]["verified"]
    for _ in range(3):
        assert api.post(f"/api/verify_password/user/{mail}", {"password": "nope"}).json["_data"] == {
            "verified": False}
    result = api.post(f"/api/verify_password/user/{mail}", {"password": PASSWORD})
    assert result.status_code == 429 and result.json["_msg"] == "TOO_MANY_LOGIN_FAILURES"
    # the account's own login is throttled as well, from any address
    other = ApiClient(api.app, remote_addr="192.0.2.7")
    assert other.post("/api/login", {"username": mail, "password": PASSWORD}).status_code == 429
    # another account is not
    assert api.post(f"/api/user/u2@{domain}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/verify_password/user/u2@{domain}", {"password": PASSWORD}).json["_data"]["verified"]


def test_the_bind_uses_a_connection_of_its_own(api, accounts, monkeypatch):
    mail, _ = accounts["user"]
    client = api.app.services.directory.client
    opened = []
    real_open = client._open

    def counting_open(*args, **kwargs):
        conn = real_open(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(client, "_open", counting_open)
    for _ in range(2):
        assert api.post(f"/api/verify_password/user/{mail}", {"password": PASSWORD}).json["_data"]["verified"]
    assert len(opened) == 2  # one short-lived connection per check, neither kept
    assert all(conn not in (client._state.connection, client._state.auth_connection) for conn in opened)
    # the request's connection keeps its identity: the next write still works as vmailadmin
    assert api.put(f"/api/user/{mail}", {"name": "Still writable"}).status_code == 200
