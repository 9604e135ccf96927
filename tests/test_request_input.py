"""Reading request bodies in the application (Falcon's TestClient): chunked bodies, the size
limit, JSON nested too deeply, text that cannot be encoded, the logout cookie.  What only a
real server shows (chunk framing, slow clients, gunicorn's own errors) is in
tests/test_http_server.py."""

import json

import pytest
import sqlalchemy as sa

from iredapi_ldap.store import tables
from tests.conftest import domain_dn, read_entry, user_dn

MB = 1024 * 1024
PASSWORD = "Secret-pw1!"


def chunked(client, method, path, body, content_type="application/x-www-form-urlencoded"):
    """What a WSGI server hands on for ``Transfer-Encoding: chunked``: the decoded body as
    wsgi.input, and no CONTENT_LENGTH."""
    headers = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
    if client.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return client.client.simulate_request(method, path, body=body, headers=headers,
                                          extras={"CONTENT_LENGTH": ""})


# -- chunked bodies ------------------------------------------------------------------------

def test_a_chunked_form_put_changes_the_entry(api, root_connection, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"cn": "before"}).status_code == 201
    result = chunked(api, "PUT", f"/api/domain/{domain}", b"cn=after&numberOfUsers=7")
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, domain_dn(domain))
    assert entry["cn"] == ["after"] and "numberOfUsers:7" in entry["accountSetting"]


def test_a_chunked_json_post_creates_the_domain_with_its_limits(api, root_connection, new_domain):
    domain = new_domain()
    result = chunked(api, "POST", f"/api/domain/{domain}", json.dumps({"numberOfUsers": 3, "quota": 100}).encode(),
                     content_type="application/json")
    assert result.status_code == 201, result.text
    entry = read_entry(root_connection, domain_dn(domain))
    assert sorted(entry["accountSetting"]) == ["domainQuota:100:MB", "numberOfUsers:3"]


def test_a_chunked_body_that_is_not_valid_is_refused(api, root_connection, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"cn": "kept"}).status_code == 201
    before = read_entry(root_connection, domain_dn(domain))
    result = chunked(api, "PUT", f"/api/domain/{domain}", b"cn=x&numberOfUsers=many")
    assert result.status_code == 400 and result.json["param"] == "numberOfUsers"
    assert read_entry(root_connection, domain_dn(domain)) == before


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_a_chunked_body_over_one_mib_is_413_closes_and_changes_nothing(api, root_connection, new_domain,
                                                                       content_type):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"cn": "kept"}).status_code == 201
    before = read_entry(root_connection, domain_dn(domain))
    result = chunked(api, "PUT", f"/api/domain/{domain}", b"cn=" + b"a" * MB, content_type)
    assert result.status_code == 413
    assert result.json["success"] is False and result.json["msg"] == "MALFORMED_REQUEST"
    assert result.headers["Connection"] == "close"  # the rest of the body is never read
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_a_chunked_body_of_exactly_one_mib_is_read(api, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    result = chunked(api, "PUT", f"/api/domain/{domain}", b"cn=" + b"a" * (MB - 3))
    # read in full and refused by the parameter's own rule, not by the size limit
    assert result.status_code == 400 and result.json["param"] == "cn"


def test_a_content_length_body_over_one_mib_closes_the_connection(api, new_domain):
    domain = new_domain()
    result = api.request("PUT", f"/api/domain/{domain}", body=b"cn=" + b"a" * MB,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status_code == 413 and result.headers["Connection"] == "close"
    # other errors keep the connection
    assert "Connection" not in api.put(f"/api/domain/{domain}", {"bogus": "1"}).headers


# -- JSON nested too deeply ----------------------------------------------------------------------

@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json_is_400_and_changes_nothing(api, root_connection, new_domain, depth):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"cn": "kept"}).status_code == 201
    before = read_entry(root_connection, domain_dn(domain))
    body = b'{"cn": ' + b"[" * depth + b"]" * depth + b"}"
    result = api.request("PUT", f"/api/domain/{domain}", body=body, headers={"Content-Type": "application/json"})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == "MALFORMED_REQUEST"
    assert read_entry(root_connection, domain_dn(domain)) == before


# -- text that cannot be encoded --------------------------------------------------------------------

LONE_SURROGATE = '"caf\\ud800"'  # valid JSON; decodes to a str that no UTF-8 encoder takes


def json_body(**values):
    """A JSON object whose values are given as JSON source text."""
    return ("{" + ", ".join(f'"{name}": {text}' for name, text in values.items()) + "}").encode()


@pytest.fixture
def user_with_quota(api, root_connection, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"quota": "300"}).status_code == 201
    mail = f"u@{domain}"
    assert api.post(f"/api/user/{mail}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    return mail, read_entry(root_connection, user_dn(mail)), read_entry(root_connection, domain_dn(domain))


@pytest.mark.parametrize("name", ["cn", "gn", "sn", "employeeid", "mailQuota"])
def test_a_lone_surrogate_in_a_user_put_is_400_naming_it_and_changes_nothing(api, root_connection,
                                                                             user_with_quota, name):
    mail, user_before, domain_before = user_with_quota
    # with a quota change, which reserves on the domain's counter before the write
    body = json_body(mailQuota='"20"', **{name: LONE_SURROGATE}) if name != "mailQuota" else \
        json_body(mailQuota=LONE_SURROGATE)
    result = api.request("PUT", f"/api/user/{mail}", body=body, headers={"Content-Type": "application/json"})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == "INVALID_PARAMETER" and result.json["param"] == name
    assert read_entry(root_connection, user_dn(mail)) == user_before
    assert read_entry(root_connection, domain_dn(mail.split("@")[1])) == domain_before  # counters too


def test_a_lone_surrogate_in_a_list_or_a_name_is_400(api, root_connection, user_with_quota):
    mail, user_before, _ = user_with_quota
    for body in (b'{"forwarding": ["a@x.test", "\\udfff@x.test"]}', b'{"c\\ud800n": "x"}'):
        result = api.request("PUT", f"/api/user/{mail}", body=body, headers={"Content-Type": "application/json"})
        assert result.status_code == 400, result.text
        assert result.json["msg"] == "INVALID_PARAMETER"
        assert result.json["param"] in ("forwarding", "c\\ud800n")
    assert read_entry(root_connection, user_dn(mail)) == user_before


def test_a_lone_surrogate_in_a_user_create_is_400_and_creates_nothing(api, root_connection, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"quota": "300"}).status_code == 201
    before = read_entry(root_connection, domain_dn(domain))
    body = json_body(password=f'"{PASSWORD}"', mailQuota='"10"', cn=LONE_SURROGATE)
    result = api.request("POST", f"/api/user/new@{domain}", body=body, headers={"Content-Type": "application/json"})
    assert result.status_code == 400 and result.json["param"] == "cn"
    assert read_entry(root_connection, user_dn(f"new@{domain}")) is None
    assert read_entry(root_connection, domain_dn(domain)) == before


def rows(app, table):
    with app.services.admin_store.transaction() as conn:
        return conn.execute(sa.select(table)).mappings().all()


@pytest.mark.parametrize("name", ["username", "password"])
def test_a_lone_surrogate_at_login_is_400_naming_it(make_app, name):
    from tests.conftest import ApiClient

    app = make_app(LOGIN_MAX_FAILURES=10)
    client = ApiClient(app)
    values = {"username": '"root@example.com"', "password": '"Admin-Secret-1!"', name: LONE_SURROGATE}
    result = client.request("POST", "/api/login", body=json_body(**values),
                             headers={"Content-Type": "application/json"})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == "INVALID_PARAMETER" and result.json["param"] == name
    assert "Set-Cookie" not in result.headers
    assert rows(app, tables.api_sessions) == [] and rows(app, tables.login_failures) == []


# -- cookies ------------------------------------------------------------------------------------------

def test_logout_expires_the_cookie_with_logins_attributes(make_app):
    from tests.conftest import ApiClient

    client = ApiClient(make_app())
    login = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    logout = client.post("/api/logout")
    assert logout.status_code == 200
    set_in, unset = login.cookies["iRedAdmin-LDAP"], logout.cookies["iRedAdmin-LDAP"]
    assert unset.value == "" and unset.expires is not None and unset.expires.year == 1970
    assert set_in.same_site == unset.same_site == "Strict"
    assert set_in.path == unset.path == "/" and unset.http_only is True
