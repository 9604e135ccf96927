"""/api/domain/<domain> and /api/domains against the real test slapd."""

import ldap3
import pytest

from tests.conftest import SUFFIX, ApiClient, count_entries, domain_dn, failed, read_entry

BASEDN = f"o=domains,{SUFFIX}"


def settings_of(entry):
    return sorted(entry.get("accountSetting", []))


def test_create_writes_the_entry_iredmail_writes(api, root_connection, new_domain):
    domain = new_domain()
    result = api.post(f"/api/domain/{domain}", {"cn": "Example Inc.", "quota": "2048", "defaultQuota": "1024",
                                                "maxUserQuota": "4096", "numberOfUsers": "20",
                                                "numberOfAliases": "30", "preferredLanguage": "de_DE"})
    assert result.status_code == 201, result.text
    assert result.json == {"_success": True, "success": True}
    entry = read_entry(root_connection, domain_dn(domain))
    assert entry["objectClass"] == ["mailDomain"]
    assert entry["domainName"] == [domain]
    assert entry["mtaTransport"] == ["dovecot"]
    assert entry["enabledService"] == ["mail"]
    assert entry["accountStatus"] == ["active"]
    assert entry["cn"] == ["Example Inc."]
    assert settings_of(entry) == sorted([
        "domainQuota:2048:MB", "defaultQuota:1024", "maxUserQuota:4096", "numberOfUsers:20",
        "numberOfAliases:30", "defaultLanguage:de_DE"])
    assert entry["domainCurrentUserNumber"] == ["0"]
    for ou in ("Users", "Groups", "Aliases", "Externals"):
        assert read_entry(root_connection, f"ou={ou},{domain_dn(domain)}")["objectClass"] == [
            "top", "organizationalUnit"]


def test_create_lower_cases_and_takes_the_newer_spellings(api, root_connection, new_domain):
    domain = new_domain()
    result = api.post(f"/api/domain/{domain.upper()}", {"name": "Shop", "language": "fr_FR",
                                                         "transport": "lmtp:unix:private/dovecot-lmtp"})
    assert result.status_code == 201, result.text
    entry = read_entry(root_connection, domain_dn(domain))
    assert entry["cn"] == ["Shop"]
    assert entry["mtaTransport"] == ["lmtp:unix:private/dovecot-lmtp"]
    assert settings_of(entry) == ["defaultLanguage:fr_FR"]


def test_create_without_parameters_and_json_body(api, root_connection, new_domain):
    domain, other = new_domain(), new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    assert "cn" not in read_entry(root_connection, domain_dn(domain))
    assert api.post(f"/api/domain/{other}", json={"cn": "JSON", "numberOfUsers": 5}).status_code == 201
    assert settings_of(read_entry(root_connection, domain_dn(other))) == ["numberOfUsers:5"]


def test_create_existing_domain_is_409_and_changes_nothing(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"cn": "first"})
    result = api.post(f"/api/domain/{domain}", {"cn": "second"})
    assert result.status_code == 409
    assert result.json == failed("ALREADY_EXISTS", detail=domain)
    assert read_entry(root_connection, domain_dn(domain))["cn"] == ["first"]


@pytest.mark.parametrize("bad", [
    "nodot", "-lead.com", "trail-.com", "a..b.com", "exa mple.com", "example.c0m", "x" * 64 + ".com",
    "example.com.", "%2A.com", "a,b.com", "a=b.com", "a+b.com", "(x).com",
])
def test_invalid_domain_names_are_400_and_create_nothing(api, root_connection, bad):
    before = count_entries(root_connection, BASEDN, "(objectClass=mailDomain)")
    result = api.post(f"/api/domain/{bad}", {"cn": "x"})
    assert result.status_code == 400, (bad, result.text)
    assert result.json["msg"] == "INVALID_DOMAIN_NAME"
    assert count_entries(root_connection, BASEDN, "(objectClass=mailDomain)") == before


def test_internationalised_domain_is_stored_as_punycode(api, root_connection):
    result = api.post("/api/domain/bücher-test.example", {"cn": "IDN"})
    assert result.status_code == 201, result.text
    assert read_entry(root_connection, domain_dn("xn--bcher-test-9db.example"))["domainName"] == [
        "xn--bcher-test-9db.example"]
    assert api.get("/api/domain/xn--bcher-test-9db.example").json["_data"]["cn"] == ["IDN"]
    api.delete("/api/domain/bücher-test.example")


@pytest.mark.parametrize("name,value", [
    ("quota", "-1"), ("quota", "abc"), ("defaultQuota", "1.5"), ("maxUserQuota", "-2"),
    ("numberOfUsers", "-2"), ("numberOfAliases", "ten"), ("numberOfLists", ""),
    ("minPasswordLength", "-1"), ("quota", "99999999999999999999"),
])
def test_bad_numbers_are_400_naming_the_parameter(api, root_connection, new_domain, name, value):
    domain = new_domain()
    result = api.post(f"/api/domain/{domain}", {name: value})
    assert result.status_code == 400
    assert result.json["msg"] == "INVALID_NUMBER"
    assert result.json["param"] == name
    assert read_entry(root_connection, domain_dn(domain)) is None
    api.post(f"/api/domain/{domain}", {"numberOfUsers": "3"})
    result = api.put(f"/api/domain/{domain}", {name: value})
    assert result.status_code == 400 and result.json["param"] == name
    assert settings_of(read_entry(root_connection, domain_dn(domain))) == ["numberOfUsers:3"]


@pytest.mark.parametrize("form,code", [
    ({"cn": "a", "name": "b"}, "CONFLICTING_PARAMETERS"),
    ({"preferredLanguage": "english"}, "INVALID_LANGUAGE"),
    ({"accountStatus": "paused"}, "INVALID_ACCOUNT_STATUS"),
    ({"transport": "dove cot"}, "INVALID_TRANSPORT"),
    ({"cn": "line\nbreak"}, "INVALID_PARAMETER"),
    ({"minPasswordLength": "12", "maxPasswordLength": "8"}, "INVALID_NUMBER"),
])
def test_bad_parameters_change_nothing(api, root_connection, new_domain, form, code):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"cn": "kept"})
    before = read_entry(root_connection, domain_dn(domain))
    result = api.put(f"/api/domain/{domain}", form)
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_put_updates_each_parameter(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"cn": "old", "quota": "100", "numberOfUsers": "5"})
    result = api.put(f"/api/domain/{domain}", {
        "cn": "new", "quota": "20480", "preferredLanguage": "en_US", "defaultQuota": "1024",
        "maxUserQuota": "2048", "numberOfUsers": "20", "numberOfAliases": "30", "numberOfLists": "-1",
        "minPasswordLength": "10", "maxPasswordLength": "64", "transport": "lmtp:inet:127.0.0.1:24"})
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, domain_dn(domain))
    assert entry["cn"] == ["new"]
    assert entry["mtaTransport"] == ["lmtp:inet:127.0.0.1:24"]
    assert settings_of(entry) == sorted([
        "domainQuota:20480:MB", "defaultLanguage:en_US", "defaultQuota:1024", "maxUserQuota:2048",
        "numberOfUsers:20", "numberOfAliases:30", "numberOfLists:-1", "minPasswordLength:10",
        "maxPasswordLength:64"])
    # 0 means unlimited / unset: the key goes away; an empty cn removes the name.
    api.put(f"/api/domain/{domain}", {"quota": "0", "numberOfUsers": "0", "cn": ""})
    entry = read_entry(root_connection, domain_dn(domain))
    assert "cn" not in entry
    assert not any(s.startswith(("domainQuota:", "numberOfUsers:")) for s in entry["accountSetting"])
    assert "numberOfLists:-1" in entry["accountSetting"]


def test_put_keeps_settings_other_tools_wrote(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    root_connection.modify(domain_dn(domain), {"accountSetting": [(ldap3.MODIFY_ADD, ["defaultList:a@x.test"])]})
    api.put(f"/api/domain/{domain}", {"numberOfUsers": "7"})
    assert settings_of(read_entry(root_connection, domain_dn(domain))) == ["defaultList:a@x.test", "numberOfUsers:7"]


def test_put_and_get_of_a_missing_domain_are_404(api, new_domain):
    domain = new_domain()
    assert api.put(f"/api/domain/{domain}", {"cn": "x"}).json == {
        "_success": False, "success": False, "_msg": "NO_SUCH_DOMAIN", "msg": "NO_SUCH_DOMAIN", "detail": domain}
    assert api.get(f"/api/domain/{domain}").status_code == 404
    assert api.delete(f"/api/domain/{domain}").status_code == 404


def _add_user_entry(conn, domain, local, **extra):
    dn = f"mail={local}@{domain},ou=Users,{domain_dn(domain)}"
    attributes = {"objectClass": ["inetOrgPerson", "mailUser", "shadowAccount", "amavisAccount"],
                  "mail": [f"{local}@{domain}"], "uid": [local], "cn": [local], "sn": [local],
                  "accountStatus": ["active"], "enabledService": ["mail", "deliver"],
                  "homeDirectory": [f"/var/vmail/vmail1/{domain}/{local}/"]}
    attributes.update(extra)
    status, result, _, _ = conn.add(dn, attributes=attributes)
    assert result["result"] == 0, result
    return dn


def test_disabling_a_domain_marks_every_account_and_enabling_clears_it(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    users = [_add_user_entry(root_connection, domain, f"u{i}") for i in range(3)]
    alias_dn = f"mail=team@{domain},ou=Aliases,{domain_dn(domain)}"
    root_connection.add(alias_dn, attributes={"objectClass": ["mailAlias"], "mail": [f"team@{domain}"],
                                              "accountStatus": ["active"]})
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert read_entry(root_connection, domain_dn(domain))["accountStatus"] == ["disabled"]
    for dn in users + [alias_dn]:
        assert read_entry(root_connection, dn)["domainStatus"] == ["disabled"]
    # a retry (e.g. after a crash half-way) is harmless
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "active"}).status_code == 200
    assert read_entry(root_connection, domain_dn(domain))["accountStatus"] == ["active"]
    for dn in users + [alias_dn]:
        assert "domainStatus" not in read_entry(root_connection, dn)


def test_delete_removes_the_subtree_and_records_maildirs(api, root_connection, new_domain):
    from iredapi_ldap.store.deleted_mailboxes import list_deleted_mailboxes

    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    for i in range(3):
        _add_user_entry(root_connection, domain, f"user{i}")
    result = api.delete(f"/api/domain/{domain}/keep_mailbox_days/30")
    assert result.status_code == 200, result.text
    assert count_entries(root_connection, domain_dn(domain)) == 0
    rows = list_deleted_mailboxes(api.app.services.admin_store, domain=domain)
    assert sorted(r["username"] for r in rows) == [f"user{i}@{domain}" for i in range(3)]
    assert {r["maildir"] for r in rows} == {f"/var/vmail/vmail1/{domain}/user{i}/" for i in range(3)}
    assert all(r["delete_date"] is not None for r in rows)


def test_delete_keep_mailbox_days_must_be_a_number(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    result = api.delete(f"/api/domain/{domain}/keep_mailbox_days/soon")
    assert result.status_code == 400 and result.json["param"] == "keep_mailbox_days"
    assert read_entry(root_connection, domain_dn(domain)) is not None


def test_get_returns_the_profile(api, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"cn": "Profile", "numberOfUsers": "9"})
    result = api.get(f"/api/domain/{domain}")
    assert result.status_code == 200
    data = result.json["_data"]
    assert data["domainName"] == [domain]
    assert data["cn"] == ["Profile"]
    assert data["accountSetting"] == ["numberOfUsers:9"]
    assert result.json["success"] is True


def test_list_domains_with_name_only_and_disabled_only(api, new_domain):
    active, disabled = new_domain(), new_domain()
    api.post(f"/api/domain/{active}")
    api.post(f"/api/domain/{disabled}", {"accountStatus": "disabled"})
    names = api.get("/api/domains", params={"name_only": "yes"}).json["_data"]
    assert active in names and disabled in names
    assert names == sorted(names)
    only_disabled = api.get("/api/domains", params={"name_only": "yes", "disabled_only": "yes"}).json["_data"]
    assert disabled in only_disabled and active not in only_disabled
    profiles = api.get("/api/domains").json["_data"]
    assert any(p["domainName"] == [active] for p in profiles)
    assert api.get("/api/domains", params={"verbose": "yes"}).headers["X-Ignored-Parameters"] == "verbose"


@pytest.mark.parametrize("path", [
    "/api/domain/*", "/api/domain/example.com)(objectClass=*", "/api/domain/x.com,o=domainAdmins",
    "/api/domain/..%2F..", "/api/domain/%00.com", "/api/domain/example.com%0A",
])
def test_injection_attempts_in_the_domain_are_refused(api, root_connection, path):
    before = count_entries(root_connection, SUFFIX)
    for method in ("GET", "POST", "PUT", "DELETE"):
        result = api.request(method, path)
        assert result.status_code in (400, 404), (method, path, result.text)
        assert result.json["success"] is False
    assert count_entries(root_connection, SUFFIX) == before


def _make_domain_admin(conn, mail, password_hash, domains):
    dn = f"mail={mail},o=domainAdmins,{SUFFIX}"
    conn.add(dn, attributes={"objectClass": ["mailAdmin"], "mail": [mail], "userPassword": [password_hash],
                             "accountStatus": ["active"]})
    for domain in domains:
        conn.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [mail])]})
    return dn


def test_domain_admin_scope(api, make_app, root_connection, new_domain):
    from tests.conftest import _ssha

    mine, theirs = new_domain(), new_domain()
    api.post(f"/api/domain/{mine}", {"numberOfUsers": "5"})
    api.post(f"/api/domain/{theirs}")
    admin = f"admin@{mine}"
    _make_domain_admin(root_connection, admin, _ssha("Domain-Admin-1"), [mine])
    client = ApiClient(make_app()).login(admin, "Domain-Admin-1")

    assert client.get(f"/api/domain/{mine}").status_code == 200
    assert client.put(f"/api/domain/{mine}", {"cn": "Mine"}).status_code == 200
    for result in (client.get(f"/api/domain/{theirs}"), client.put(f"/api/domain/{theirs}", {"cn": "x"}),
                   client.get(f"/api/domain/{new_domain()}")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED"
    # limits and status are the global admin's
    result = client.put(f"/api/domain/{mine}", {"numberOfUsers": "500"})
    assert result.status_code == 403 and result.json["param"] == "numberOfUsers"
    assert "numberOfUsers:5" in read_entry(root_connection, domain_dn(mine))["accountSetting"]
    # no creating or deleting domains
    assert client.post(f"/api/domain/{new_domain()}").status_code == 403
    assert client.delete(f"/api/domain/{mine}").status_code == 403
    assert read_entry(root_connection, domain_dn(mine)) is not None
    names = client.get("/api/domains", params={"name_only": "yes"}).json["_data"]
    assert names == [mine]


# -- IDNA 2008 (issue 11), bounded quotas and punycode labels (issue 10) -----------------

def test_sharp_s_domains_are_stored_in_their_idna_2008_form(api, root_connection):
    """IDNA 2003 made straße.de into strasse.de, another domain that may be someone else's."""
    try:
        for name, stored in (("straße.de", "xn--strae-oqa.de"), ("faß.de", "xn--fa-hia.de")):
            result = api.post(f"/api/domain/{name}", {"cn": name})
            assert result.status_code == 201, result.text
            assert read_entry(root_connection, domain_dn(stored))["domainName"] == [stored]
            assert api.get(f"/api/domain/{stored}").json["_data"]["cn"] == [name]
        assert read_entry(root_connection, domain_dn("strasse.de")) is None
        assert read_entry(root_connection, domain_dn("fass.de")) is None
    finally:
        for name in ("xn--strae-oqa.de", "xn--fa-hia.de", "strasse.de", "fass.de"):
            api.delete(f"/api/domain/{name}")


@pytest.mark.parametrize("bad", [
    "☃.com", "xn--n3h.com", "\u0301a.com", "\u05d0a.com", "xn--zz.com", "xn---bbk.com", "bücher.xn--zz.de",
])
def test_names_idna_2008_refuses_are_400_and_create_nothing(api, root_connection, bad):
    before = count_entries(root_connection, BASEDN, "(objectClass=mailDomain)")
    result = api.post(f"/api/domain/{bad}", {"cn": "x"})
    assert result.status_code == 400, (bad, result.text)
    assert result.json["msg"] == "INVALID_DOMAIN_NAME"
    assert count_entries(root_connection, BASEDN, "(objectClass=mailDomain)") == before


@pytest.mark.parametrize("name,value,code", [
    ("quota", str(1024 ** 3 + 1), "INVALID_NUMBER"),
    ("defaultQuota", str(1024 ** 3 + 1), "INVALID_NUMBER"),
    ("defaultQuota", "999999999999999999", "INVALID_NUMBER"),  # once gave a user 1.05e24 bytes
    ("maxUserQuota", str(1024 ** 3 + 1), "INVALID_NUMBER"),
    ("numberOfUsers", str(2 ** 31), "INVALID_NUMBER"),
    ("numberOfAliases", str(2 ** 31), "INVALID_NUMBER"),
    ("numberOfLists", str(2 ** 31), "INVALID_NUMBER"),
    ("preferredLanguage", "xx_XX", "INVALID_LANGUAGE"),
    ("language", "en_GB", "INVALID_LANGUAGE"),  # in iRedAdmin's langmaps, but it ships no translation
    ("language", "deutsch", "INVALID_LANGUAGE"),
])
def test_limits_and_language_out_of_range_are_400_and_change_nothing(api, root_connection, new_domain, name,
                                                                     value, code):
    domain = new_domain()
    result = api.post(f"/api/domain/{domain}", {name: value})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == name
    assert read_entry(root_connection, domain_dn(domain)) is None
    api.post(f"/api/domain/{domain}", {"numberOfUsers": "3"})
    before = read_entry(root_connection, domain_dn(domain))
    result = api.put(f"/api/domain/{domain}", {"cn": "changed", name: value})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == name
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_limits_at_the_bounds_and_languages_in_any_case(api, root_connection, new_domain):
    domain = new_domain()
    top = str(1024 ** 3)
    result = api.post(f"/api/domain/{domain}", {"quota": top, "defaultQuota": top, "maxUserQuota": top,
                                                "numberOfUsers": str(2 ** 31 - 1), "language": "zh_cn"})
    assert result.status_code == 201, result.text
    assert settings_of(read_entry(root_connection, domain_dn(domain))) == sorted([
        f"domainQuota:{top}:MB", f"defaultQuota:{top}", f"maxUserQuota:{top}",
        f"numberOfUsers:{2 ** 31 - 1}", "defaultLanguage:zh_CN"])


@pytest.mark.parametrize("stored,form,param", [
    ({"maxPasswordLength": "10"}, {"minPasswordLength": "12"}, "minPasswordLength"),
    ({"minPasswordLength": "12"}, {"maxPasswordLength": "10"}, "maxPasswordLength"),
])
def test_password_lengths_are_checked_against_the_stored_other_one(api, root_connection, new_domain, stored,
                                                                     form, param):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}", stored).status_code == 201
    before = read_entry(root_connection, domain_dn(domain))
    result = api.put(f"/api/domain/{domain}", form)
    assert result.status_code == 400 and result.json["msg"] == "INVALID_NUMBER" and result.json["param"] == param
    assert read_entry(root_connection, domain_dn(domain)) == before
    # both in one request, consistent: fine; 0 unsets the limit
    assert api.put(f"/api/domain/{domain}", {"minPasswordLength": "12", "maxPasswordLength": "0"}).status_code == 200
