"""GET /api/ldif/...: RFC 2849 LDIF that ldapadd turns back into the same entries."""

import subprocess

import ldap3
import pytest

from tests.conftest import SUFFIX, ApiClient, _ssha, alias_dn, domain_dn, failed, list_dn, user_dn

PASSWORD = "Secret-pw1!"


@pytest.fixture
def domain(api, root_connection, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    for i in range(5):
        assert api.post(f"/api/user/u{i}@{name}", {"password": PASSWORD}).status_code == 201
    # values RFC 2849 allows only base64-encoded: non-ASCII text, a leading space, a leading colon
    api.put(f"/api/user/u0@{name}", {"cn": "Zoë Ünïcode", "sn": ":colon"})
    api.post(f"/api/alias/al@{name}", {"members": f"u1@{name},out@elsewhere.test"})
    api.post(f"/api/maillist/li@{name}", {"members": f"u2@{name},ext@elsewhere.test", "moderators": f"u3@{name}"})
    root_connection.add(f"mail=@{name},ou=Users,{domain_dn(name)}", attributes={
        "objectClass": ["inetOrgPerson", "mailUser"], "mail": [f"@{name}"], "cn": ["catch-all"],
        "sn": ["catch-all"], "uid": ["catch-all"], "accountStatus": ["active"],
        "mailForwardingAddress": [f"u4@{name}"]})
    return name


def _tree(root_connection, base, scope=ldap3.SUBTREE):
    """{dn: {attribute: sorted values}} of the user attributes below ``base``, behind the API's back."""
    _, result, response, _ = root_connection.search(base, "(objectClass=*)", search_scope=scope, attributes=["*"])
    return {r["dn"].lower(): {k.lower(): sorted(v) for k, v in r["raw_attributes"].items()}
            for r in response if r.get("type") == "searchResEntry"}


def _ldap(ldap_server, tool, *args, text=None):
    result = subprocess.run([tool, "-Q", "-Y", "EXTERNAL", "-H", ldap_server.ldapi_uri, *args], input=text,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def test_a_domain_export_recreates_the_domain(api, root_connection, ldap_server, domain):
    before = _tree(root_connection, domain_dn(domain))
    assert len(before) == 1 + 4 + 5 + 1 + 1 + 1 + 1  # domain, ou=, users, catch-all, alias, list, externals
    result = api.get(f"/api/ldif/domain/{domain}")
    assert result.status_code == 200, result.text
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    text = result.text
    unfolded = text.replace("\n ", "")  # RFC 2849 folds lines longer than 76 characters
    assert text.startswith("version: 1\n\n")
    assert f"dn: {domain_dn(domain)}\n" in unfolded
    assert "\ncn:: " in text and "\nsn:: " in text  # base64 where the RFC requires it
    assert "Zoë" not in text and "hasSubordinates" not in text
    assert "\nuserPassword: {" in text  # the hashes travel: the export is a backup
    # parents before children
    assert (unfolded.index(f"dn: {domain_dn(domain)}\n") < unfolded.index(f"dn: ou=Users,{domain_dn(domain)}\n")
            < unfolded.index(f"dn: {user_dn(f'u0@{domain}')}\n"))

    _ldap(ldap_server, "ldapdelete", "-r", domain_dn(domain))
    assert _tree(root_connection, domain_dn(domain)) == {}
    _ldap(ldap_server, "ldapadd", text=text)
    assert _tree(root_connection, domain_dn(domain)) == before
    assert api.get(f"/api/user/u0@{domain}").json["_data"]["cn"] == ["Zoë Ünïcode"]


@pytest.mark.parametrize("kind,address,dn_of", [
    ("user", "u0@{d}", user_dn), ("alias", "al@{d}", alias_dn), ("maillist", "li@{d}", list_dn),
    ("catchall", "{d}", lambda d: f"mail=@{d},ou=Users,{domain_dn(d)}"),
])
def test_an_account_export_recreates_the_account(api, root_connection, ldap_server, domain, kind, address, dn_of):
    name = address.format(d=domain)
    dn = dn_of(name)
    before = _tree(root_connection, dn, ldap3.BASE)
    assert len(before) == 1
    result = api.get(f"/api/ldif/{kind}/{name}")
    assert result.status_code == 200, result.text
    assert result.text.count("\ndn: ") + result.text.startswith("dn: ") == 1
    _ldap(ldap_server, "ldapdelete", dn)
    _ldap(ldap_server, "ldapadd", text=result.text)
    assert _tree(root_connection, dn, ldap3.BASE) == before


def test_a_standalone_admin_export(api, root_connection, ldap_server, new_domain):
    admin = f"exported@{new_domain()}"
    dn = f"mail={admin},o=domainAdmins,{SUFFIX}"
    root_connection.add(dn, attributes={"objectClass": ["mailAdmin"], "mail": [admin], "cn": ["Ädmin"],
                                        "userPassword": [_ssha("Admin-Pw-9")], "accountStatus": ["active"]})
    before = _tree(root_connection, dn, ldap3.BASE)
    text = api.get(f"/api/ldif/admin/{admin}").text
    _ldap(ldap_server, "ldapdelete", dn)
    _ldap(ldap_server, "ldapadd", text=text)
    assert _tree(root_connection, dn, ldap3.BASE) == before


def test_ldif_export_refusals(api, make_app, root_connection, domain, new_domain):
    assert api.get(f"/api/ldif/user/ghost@{domain}").json == failed("NO_SUCH_ACCOUNT", detail=f"ghost@{domain}")
    assert api.get(f"/api/ldif/alias/u0@{domain}").status_code == 404  # a user, not an alias
    assert api.get(f"/api/ldif/domain/{new_domain()}").json["_msg"] == "NO_SUCH_DOMAIN"
    assert api.get(f"/api/ldif/catchall/{new_domain()}").status_code == 404
    assert api.get("/api/ldif/user/not-an-address").json == failed(
        "INVALID_MAIL", detail="expected one address of the form user@domain")
    assert api.get("/api/ldif/domain/bad..name").json["_msg"] == "INVALID_DOMAIN_NAME"
    # global admins only: not even a domain admin of the domain
    admin = f"exporter@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app()).login(admin, "Admin-Pw-9")
    for path in (f"/api/ldif/domain/{domain}", f"/api/ldif/user/u0@{domain}", f"/api/ldif/catchall/{domain}",
                 f"/api/ldif/admin/{admin}", f"/api/ldif/alias/al@{domain}", f"/api/ldif/maillist/li@{domain}"):
        result = client.get(path)
        assert result.json == failed("PERMISSION_DENIED", detail="only global admins may do this"), path
    assert ApiClient(make_app()).get(f"/api/ldif/domain/{domain}").status_code == 401


def test_a_domain_export_goes_page_by_page(api, domain):
    from iredapi_ldap.directory import export

    small_pages = "".join(export.export(api.app.services.directory, "domain", domain, page_size=2))
    assert small_pages == api.get(f"/api/ldif/domain/{domain}").text


def test_a_domain_export_without_hassubordinates_walks_the_containers(api, domain, monkeypatch):
    """A server or ACL that keeps hasSubordinates back: the domain and its ou= containers are walked."""
    from iredapi_ldap.directory import export

    whole = api.get(f"/api/ldif/domain/{domain}").text
    monkeypatch.setattr(export, "_HAS_CHILDREN", "x-unanswered")
    assert api.get(f"/api/ldif/domain/{domain}").text == whole


def test_an_export_leaves_out_a_limited_admins_lease(api, root_connection, new_domain):
    """The lease a limited admin's create holds (admin_limits) is the request's, not the admin's:
    restored from an export it would hold up the admin's creates until it expired."""
    admin = f"leased@{new_domain()}"
    dn = f"mail={admin},o=domainAdmins,{SUFFIX}"
    lease = "iredapiLease:4102444800:0123456789abcdef"
    root_connection.add(dn, attributes={"objectClass": ["mailAdmin"], "mail": [admin], "cn": ["Leased"],
                                        "userPassword": [_ssha("Admin-Pw-9")], "accountStatus": ["active"],
                                        "accountSetting": ["create_max_users:3", lease]})
    text = api.get(f"/api/ldif/admin/{admin}").text
    assert "accountSetting: create_max_users:3" in text
    assert "iredapiLease" not in text
