"""The response envelope: every answer is JSON, errors carry a code and the right status,
bad bodies change nothing, and X-Directory-Round-Trips tells what a request cost."""

import json
import logging

import pytest
import sqlalchemy as sa

from iredapi_ldap.directory.connection import LdapOperationError
from iredapi_ldap.store import tables
from tests.conftest import ApiClient, base_settings, domain_dn, failed, read_entry

ROUND_TRIPS = "X-Directory-Round-Trips"


def session_count(app):
    with app.services.admin_store.transaction() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tables.api_sessions)).scalar()


def assert_json(result):
    """The response is JSON, says so, and parses; returns the parsed body."""
    assert result.headers["Content-Type"].startswith("application/json"), result.headers
    return json.loads(result.text)


@pytest.fixture
def domain_with_entry(api, root_connection, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", {"cn": "kept"}).status_code == 201
    return domain, read_entry(root_connection, domain_dn(domain))


# -- routing errors -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/nothing", "/api/domain", "/api/domain/a.test/extra/x", "/", "/iredadmin"])
def test_unknown_route_is_404_not_found(api, path):
    result = api.get(path)
    assert result.status_code == 404
    body = assert_json(result)
    assert body["success"] is False and body["msg"] == "NOT_FOUND"
    assert set(body) <= {"_success", "success", "_msg", "msg", "detail"}


def test_unknown_route_is_404_without_login_too(anonymous):
    result = anonymous.get("/api/nothing")
    assert result.status_code == 404 and assert_json(result)["msg"] == "NOT_FOUND"


def test_wrong_method_is_405_with_an_allow_header(api, anonymous):
    result = anonymous.get("/api/login")
    assert result.status_code == 405
    assert assert_json(result) == failed("METHOD_NOT_ALLOWED", detail="405 Method Not Allowed")
    assert "POST" in result.headers["Allow"] and "GET" not in result.headers["Allow"]
    result = api.request("PATCH", "/api/domains")
    assert result.status_code == 405 and assert_json(result)["msg"] == "METHOD_NOT_ALLOWED"
    assert [m.strip() for m in result.headers["Allow"].split(",")] == ["GET", "OPTIONS"]


def test_options_answers_json_with_the_allowed_methods(api):
    result = api.request("OPTIONS", "/api/domains")
    assert result.status_code == 200
    assert assert_json(result) == {"_success": True, "success": True}
    assert "GET" in result.headers["Allow"]


# -- bad bodies change nothing ----------------------------------------------------------

@pytest.mark.parametrize("body", [b"{", b'{"cn": }', b"\xff\xfe", b"[1, 2]", b'"cn"'])
def test_malformed_json_is_400_and_changes_nothing(api, root_connection, domain_with_entry, body):
    domain, before = domain_with_entry
    result = api.request("PUT", f"/api/domain/{domain}", body=body, headers={"Content-Type": "application/json"})
    assert result.status_code == 400
    assert assert_json(result)["msg"] == "MALFORMED_REQUEST"
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_json_value_of_the_wrong_shape_is_400_naming_it(api, root_connection, domain_with_entry):
    domain, before = domain_with_entry
    result = api.put(f"/api/domain/{domain}", json={"cn": {"nested": "object"}})
    assert result.status_code == 400
    assert assert_json(result)["param"] == "cn"
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_raw_non_ascii_byte_in_a_form_body_is_400(api, root_connection, domain_with_entry):
    domain, before = domain_with_entry
    result = api.request("PUT", f"/api/domain/{domain}", body=b"cn=Caf\xe9",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status_code == 400
    body = assert_json(result)
    assert body["msg"] == "MALFORMED_REQUEST" and "percent-encoded" in body["detail"]
    assert read_entry(root_connection, domain_dn(domain)) == before
    # percent-encoded, the same text is fine
    assert api.put(f"/api/domain/{domain}", {"cn": "Café"}).status_code == 200
    assert read_entry(root_connection, domain_dn(domain))["cn"] == ["Café"]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml"])
def test_unsupported_content_type_is_400(api, root_connection, domain_with_entry, content_type):
    domain, before = domain_with_entry
    result = api.request("PUT", f"/api/domain/{domain}", body=b"cn=changed", headers={"Content-Type": content_type})
    assert result.status_code == 400
    assert assert_json(result)["msg"] == "MALFORMED_REQUEST"
    assert read_entry(root_connection, domain_dn(domain)) == before


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_body_over_one_mib_is_413(api, root_connection, domain_with_entry, content_type):
    domain, before = domain_with_entry
    big = b"cn=" + b"a" * (1024 * 1024)
    result = api.request("PUT", f"/api/domain/{domain}", body=big, headers={"Content-Type": content_type})
    assert result.status_code == 413
    assert assert_json(result)["success"] is False
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_body_of_exactly_one_mib_is_read(api, domain_with_entry):
    domain, _ = domain_with_entry
    body = b"cn=" + b"a" * (1024 * 1024 - 3)
    result = api.request("PUT", f"/api/domain/{domain}", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    # read in full and refused by the parameter's own rule, not by the size limit
    assert result.status_code == 400 and result.json["param"] == "cn"


@pytest.mark.parametrize("how", ["body", "query", "both"])
def test_repeated_key_is_400_naming_it(api, root_connection, domain_with_entry, how):
    domain, before = domain_with_entry
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if how == "body":
        result = api.request("PUT", f"/api/domain/{domain}", body="cn=a&cn=b", headers=headers)
    elif how == "query":
        result = api.request("PUT", f"/api/domain/{domain}", params={"cn": ["a", "b"]})
    else:
        result = api.request("PUT", f"/api/domain/{domain}?cn=a", body="cn=b", headers=headers)
    assert result.status_code == 400
    body = assert_json(result)
    assert body["msg"] == "INVALID_PARAMETER" and body["param"] == "cn"
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_bad_login_bodies_create_no_session(anonymous):
    app = anonymous.app
    for result in (
        anonymous.request("POST", "/api/login", body=b"{", headers={"Content-Type": "application/json"}),
        anonymous.request("POST", "/api/login", body=b"username=root@example.com&username=x@example.com"
                          b"&password=Admin-Secret-1!", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        anonymous.request("POST", "/api/login", body=b"username=root@example.com&password=Admin-Secret-1!",
                          headers={"Content-Type": "text/plain"}),
    ):
        assert result.status_code == 400, result.text
        assert "Set-Cookie" not in result.headers
    assert session_count(app) == 0
    assert anonymous.get("/api/domains").status_code == 401


# -- unexpected errors ------------------------------------------------------------------

def test_unexpected_exception_is_500_without_a_traceback(api, monkeypatch, caplog, domain_with_entry):
    domain, _ = domain_with_entry

    def broken(*args, **kwargs):
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(api.app.services.directory.client, "read", broken)
    with caplog.at_level(logging.ERROR):
        result = api.get(f"/api/domain/{domain}", headers={"Accept": "text/html"})
    assert result.status_code == 500
    assert assert_json(result) == failed("INTERNAL_ERROR")
    assert "secret-internal-detail" not in result.text and "Traceback" not in result.text
    # ... but the log has what an admin needs
    assert "secret-internal-detail" in caplog.text
    assert any(r.exc_info for r in caplog.records)


def test_unexpected_ldap_result_is_500(api, monkeypatch, domain_with_entry):
    domain, _ = domain_with_entry

    def refused(dn, *args, **kwargs):
        raise LdapOperationError(80, "other", dn)

    monkeypatch.setattr(api.app.services.directory.client, "read", refused)
    result = api.get(f"/api/domain/{domain}")
    assert result.status_code == 500
    assert assert_json(result) == failed("INTERNAL_ERROR")
    assert "other" not in result.text


def test_ldap_server_down_is_503_server_down(tmp_path):
    from iredapi_ldap.app import create_app
    from iredapi_ldap.localslapd import free_port

    settings = base_settings(f"ldap://127.0.0.1:{free_port()}", ldap_timeout=2, DATA_DIR=str(tmp_path))
    client = ApiClient(create_app(settings))
    result = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert result.status_code == 503
    assert assert_json(result)["msg"] == "SERVER_DOWN"
    assert "Set-Cookie" not in result.headers


def test_sql_server_down_is_503_sql_server_down(make_app):
    from iredapi_ldap.localslapd import free_port

    app = make_app(iredadmin_db_url=f"mysql+pymysql://u:p@127.0.0.1:{free_port()}/iredadmin", SQL_TIMEOUT=2,
                   LOGIN_MAX_FAILURES=3)
    client = ApiClient(app)
    result = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert result.status_code == 503
    assert assert_json(result)["msg"] == "SQL_SERVER_DOWN"
    assert "p@127" not in result.text  # no connection string in the answer
    client.cookies["iRedAdmin-LDAP"] = "some-token"
    result = client.get("/api/domains")
    assert result.status_code == 503 and assert_json(result)["msg"] == "SQL_SERVER_DOWN"


# -- never HTML ---------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,logged_in", [
    ("GET", "/api/nothing", False), ("DELETE", "/api/login", False), ("GET", "/api/domains", False),
    ("GET", "/api/domain/bad_name", True), ("GET", "/api/domain/missing.test", True),
])
def test_errors_are_json_even_when_html_is_asked_for(make_app, method, path, logged_in):
    client = ApiClient(make_app())
    if logged_in:
        client.login()
    result = client.request(method, path, headers={"Accept": "text/html,application/xhtml+xml"})
    assert result.status_code >= 400
    body = assert_json(result)
    assert body["success"] is False and body["msg"]
    assert "<html" not in result.text.lower()


def test_pro_envelope_uses_underscored_keys(make_app, new_domain):
    client = ApiClient(make_app(API_ENVELOPE="pro", STRICT_PARAMETERS=True))
    login = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert login.status_code == 200 and assert_json(login) == {"_success": True}
    domain = new_domain()
    assert assert_json(client.post(f"/api/domain/{domain}", {"cn": "Pro"})) == {"_success": True}
    data = assert_json(client.get(f"/api/domain/{domain}"))
    assert set(data) == {"_success", "_data"} and data["_data"]["cn"] == ["Pro"]
    missing = client.get(f"/api/domain/{new_domain()}")
    assert missing.status_code == 404 and assert_json(missing)["_msg"] == "NO_SUCH_DOMAIN"
    assert "success" not in missing.json and "msg" not in missing.json
    for result, code in ((client.get("/api/nothing"), "NOT_FOUND"),
                         (client.request("PATCH", "/api/domains"), "METHOD_NOT_ALLOWED"),
                         (client.put(f"/api/domain/{domain}", {"bogus": "1"}), "UNKNOWN_PARAMETER"),
                         (ApiClient(client.app).get("/api/domains"), "LOGIN_REQUIRED")):
        body = assert_json(result)
        assert body["_success"] is False and body["_msg"] == code and "msg" not in body
    assert assert_json(client.request("OPTIONS", "/api/domains")) == {"_success": True}


def test_pro_envelope_for_unexpected_errors(make_app, monkeypatch):
    client = ApiClient(make_app(API_ENVELOPE="pro")).login()
    for method in ("search", "paged_search"):
        monkeypatch.setattr(client.app.services.directory.client, method, lambda *a, **k: 1 / 0)
    result = client.get("/api/domains")
    assert result.status_code == 500 and assert_json(result) == {"_success": False, "_msg": "INTERNAL_ERROR"}


# -- directory round trips -------------------------------------------------------------------

def round_trips(result):
    return int(result.headers[ROUND_TRIPS])


def test_round_trips_login_2_get_2_put_2_post_6(make_app, new_domain):
    client = ApiClient(make_app())
    # login of a standalone admin: read its entry under o=domainAdmins + bind as it
    login = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert login.status_code == 200 and round_trips(login) == 2
    domain = new_domain()
    # POST domain: add the domain entry, look whether the name is another domain's alias
    # domain (issue 13), then its four OUs (Users, Groups, Aliases, Externals)
    assert round_trips(client.post(f"/api/domain/{domain}", {"cn": "x"})) == 6
    # GET domain for a global admin whose session needs no recheck: one base read, and one of
    # its catch-all account (its destinations are the answer's "catchall")
    for _ in range(3):  # counted per request, not summed over the connection's life
        assert round_trips(client.get(f"/api/domain/{domain}")) == 2
    # PUT domain: read the entry (scope + current settings) + one modify
    assert round_trips(client.put(f"/api/domain/{domain}", {"cn": "y", "numberOfUsers": "3"})) == 2
    # GET domains: one search
    assert round_trips(client.get("/api/domains")) == 1


def test_round_trips_with_a_session_recheck_add_one(make_app, new_domain):
    client = ApiClient(make_app(SESSION_RECHECK_INTERVAL=0)).login()
    domain = new_domain()
    assert round_trips(client.post(f"/api/domain/{domain}")) == 1 + 6
    # the admin's own entry is read again, then the domain and its catch-all
    assert round_trips(client.get(f"/api/domain/{domain}")) == 1 + 2


def test_requests_refused_before_the_directory_cost_nothing(make_app, anonymous):
    assert round_trips(anonymous.get("/api/domains")) == 0  # no session
    assert round_trips(anonymous.get("/api/nothing")) == 0
    assert round_trips(ApiClient(make_app(ENABLE_RESTFUL_API=False)).get("/api/domains")) == 0
    bad = anonymous.post("/api/login", {"username": "not-an-address", "password": "x"})
    assert bad.status_code == 400 and round_trips(bad) == 0
