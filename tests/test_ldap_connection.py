"""How the API reaches slapd: ldap://, ldapi://, StartTLS with certificate checks, outages."""

import pytest

from tests.conftest import ApiClient


def _works(app, domain):
    client = ApiClient(app).login()
    result = client.post(f"/api/domain/{domain}")
    return result.status_code, result.json


def test_ldapi(make_app, ldap_server, new_domain):
    assert _works(make_app(ldap_uri=ldap_server.ldapi_uri), new_domain()) == (201, {"success": True})


def test_starttls_with_the_right_ca(make_app, ldap_server, new_domain):
    app = make_app(ldap_starttls=True, ldap_tls_ca_file=ldap_server.ca_file)
    assert _works(app, new_domain()) == (201, {"success": True})


def test_starttls_verifies_the_certificate_by_default(make_app, new_domain):
    # The test slapd's certificate is signed by slapdtest's own CA, which the system does not trust.
    client = ApiClient(make_app(ldap_starttls=True))
    result = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert result.status_code == 503 and result.json["msg"] == "SERVER_DOWN"


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_service_password_is_503_not_500(make_app, password):
    client = ApiClient(make_app(ldap_bind_password=password or "x"))
    result = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert result.status_code == 503 and result.json["msg"] == "SERVER_DOWN"


def test_reconnects_after_slapd_restarts(make_app, ldap_server, new_domain):
    client = ApiClient(make_app()).login()
    assert client.get("/api/domains").status_code == 200
    ldap_server.slapd.restart()
    domain = new_domain()
    assert client.post(f"/api/domain/{domain}").status_code == 201
