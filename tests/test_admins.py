"""Standalone admins: /api/admin/<mail> and /api/admins (issue 14), on the real slapd."""

import uuid

import ldap3
import pytest

from tests.conftest import GLOBAL_ADMIN, SUFFIX, ApiClient, domain_dn, failed, read_entry

PASSWORD = "Admin-Secret-2!"
ADMINS = f"o=domainAdmins,{SUFFIX}"


def admin_dn(mail):
    return f"mail={mail},{ADMINS}"


def new_admin_mail():
    return f"a{uuid.uuid4().hex[:10]}@admins.test"


@pytest.fixture
def admin_mail(api):
    mail = new_admin_mail()
    result = api.post(f"/api/admin/{mail}", {"name": "Boss", "password": PASSWORD, "language": "de_DE"})
    assert result.status_code == 201, result.text
    return mail


def test_create_read_and_log_in_at_once(api, root_connection):
    mail = new_admin_mail()
    result = api.post(f"/api/admin/{mail}", {
        "name": "Domain Boss", "password": PASSWORD, "language": "fr_fr", "maxDomains": "3", "maxQuota": "2",
        "quotaUnit": "gb", "maxUsers": "100", "maxAliases": "0", "maxLists": "7",
        "disableViewingMailLog": "yes", "disableManagingQuarantinedMails": "no"})
    assert result.status_code == 201, result.text
    entry = read_entry(root_connection, admin_dn(mail))
    assert entry["objectClass"] == ["mailAdmin"]
    assert entry["cn"] == ["Domain Boss"] and entry["preferredLanguage"] == ["fr_FR"]
    assert entry["accountStatus"] == ["active"] and "domainGlobalAdmin" not in entry
    assert entry["userPassword"][0].startswith("{")
    assert sorted(entry["accountSetting"]) == sorted([
        "create_new_domains:yes", "create_max_domains:3", "create_max_quota:2", "create_quota_unit:GB",
        "create_max_users:100", "create_max_lists:7"])
    assert entry["disabledService"] == ["view_mail_log"]
    data = api.get(f"/api/admin/{mail}").json["_data"]
    assert "userPassword" not in data and data["mail"] == [mail] and data["managed_domains"] == []
    # a created admin logs in at once
    ApiClient(api.app).login(mail, PASSWORD)


def test_global_admin_discards_normal_admin_parameters(api, root_connection):
    mail = new_admin_mail()
    result = api.post(f"/api/admin/{mail}", {"password": PASSWORD, "isGlobalAdmin": "yes", "maxUsers": "5"})
    assert result.status_code == 201, result.text
    assert result.headers["X-Ignored-Parameters"] == "maxUsers"
    entry = read_entry(root_connection, admin_dn(mail))
    assert entry["domainGlobalAdmin"] == ["yes"] and "accountSetting" not in entry
    boss = ApiClient(api.app).login(mail, PASSWORD)
    assert boss.get("/api/admins").status_code == 200  # a global admin


def test_list_admins(api, admin_mail):
    listed = api.get("/api/admins").json["_data"]
    assert admin_mail in [d["mail"][0] for d in listed]
    assert all("userPassword" not in d for d in listed)
    assert admin_mail in api.get("/api/admins", params={"email_only": "yes"}).json["_data"]
    api.put(f"/api/admin/{admin_mail}", {"accountStatus": "disabled"})
    disabled = api.get("/api/admins", params={"disabled_only": "yes", "email_only": "yes"}).json["_data"]
    assert admin_mail in disabled


def test_update(api, admin_mail, root_connection):
    result = api.put(f"/api/admin/{admin_mail}", {"name": "", "language": "en_US", "maxUsers": "9",
                                                  "maxDomains": "2", "disableManagingQuarantinedMails": "yes"})
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, admin_dn(admin_mail))
    assert "cn" not in entry and entry["preferredLanguage"] == ["en_US"]
    assert sorted(entry["accountSetting"]) == ["create_max_domains:2", "create_max_users:9", "create_new_domains:yes"]
    assert entry["disabledService"] == ["manage_quarantined_mails"]
    assert api.put(f"/api/admin/{admin_mail}", {"maxUsers": "0", "maxDomains": "0",
                                                "disableManagingQuarantinedMails": "no"}).status_code == 200
    entry = read_entry(root_connection, admin_dn(admin_mail))
    assert "accountSetting" not in entry and "disabledService" not in entry
    # a new password works at once, the old one no more
    assert api.put(f"/api/admin/{admin_mail}", {"password": "Other-Secret-3!"}).status_code == 200
    ApiClient(api.app).login(admin_mail, "Other-Secret-3!")
    assert ApiClient(api.app).post("/api/login", {"username": admin_mail, "password": PASSWORD}).status_code == 401


def test_disabled_or_deleted_admin_is_out_at_its_next_request(make_app, root_connection):
    # a recheck interval far away: the sessions must end at once, not at the recheck
    app = make_app(SESSION_RECHECK_INTERVAL=3600)
    api = ApiClient(app).login()
    first, second = new_admin_mail(), new_admin_mail()
    for mail in (first, second):
        assert api.post(f"/api/admin/{mail}", {"password": PASSWORD, "isGlobalAdmin": "yes"}).status_code == 201
    one, two = ApiClient(app).login(first, PASSWORD), ApiClient(app).login(second, PASSWORD)
    assert one.get("/api/domains").status_code == 200 and two.get("/api/domains").status_code == 200
    assert api.put(f"/api/admin/{first}", {"accountStatus": "disabled"}).status_code == 200
    assert one.get("/api/domains").status_code == 401
    assert one.post("/api/login", {"username": first, "password": PASSWORD}).status_code == 401
    assert api.delete(f"/api/admin/{second}").status_code == 200
    assert two.get("/api/domains").status_code == 401
    # demoted: its session ends too (it would otherwise keep global rights until the recheck)
    third = new_admin_mail()
    assert api.post(f"/api/admin/{third}", {"password": PASSWORD, "isGlobalAdmin": "yes"}).status_code == 201
    three = ApiClient(app).login(third, PASSWORD)
    assert three.get("/api/admins").status_code == 200
    assert api.put(f"/api/admin/{third}", {"isGlobalAdmin": "no"}).status_code == 200
    assert three.get("/api/admins").status_code == 401
    assert ApiClient(app).login(third, PASSWORD).get("/api/admins").status_code == 403


def test_delete_removes_it_from_every_domain(api, admin_mail, new_domain, root_connection):
    domains = [new_domain() for _ in range(3)]
    for domain in domains:
        assert api.post(f"/api/domain/{domain}").status_code == 201
        root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin_mail, "x@other.test"])]})
    assert api.get(f"/api/admin/{admin_mail}").json["_data"]["managed_domains"] == sorted(domains)
    assert api.delete(f"/api/admin/{admin_mail}").status_code == 200
    assert read_entry(root_connection, admin_dn(admin_mail)) is None
    for domain in domains:
        assert read_entry(root_connection, domain_dn(domain))["domainAdmin"] == ["x@other.test"]
    assert api.get(f"/api/admin/{admin_mail}").json == failed("NO_SUCH_ACCOUNT", detail=admin_mail)
    assert api.delete(f"/api/admin/{admin_mail}").status_code == 404


@pytest.mark.parametrize("form, param, code", [
    ({"password": PASSWORD, "quotaUnit": "PB", "maxQuota": "1"}, "quotaUnit", "INVALID_PARAMETER"),
    ({"password": PASSWORD, "maxQuota": "1"}, "quotaUnit", "INVALID_PARAMETER"),
    ({"password": PASSWORD, "quotaUnit": "GB"}, "quotaUnit", "INVALID_PARAMETER"),
    ({"password": PASSWORD, "maxUsers": "-1"}, "maxUsers", "INVALID_NUMBER"),
    ({"password": PASSWORD, "maxDomains": "many"}, "maxDomains", "INVALID_NUMBER"),
    ({"password": PASSWORD, "language": "xx_XX"}, "language", "INVALID_LANGUAGE"),
    ({"password": PASSWORD, "accountStatus": "maybe"}, "accountStatus", "INVALID_ACCOUNT_STATUS"),
    ({"password": PASSWORD, "isGlobalAdmin": "perhaps"}, "isGlobalAdmin", "INVALID_PARAMETER"),
    ({"password": "short"}, "password", "PW_SHORTER_THAN_MIN_LENGTH"),
    ({"password_hash": "{SSHA}nope"}, "password_hash", "INVALID_PASSWORD_SCHEME"),
    ({"password": PASSWORD, "password_hash": "{PLAIN}x"}, "password_hash", "CONFLICTING_PARAMETERS"),
    ({"name": "no password"}, "password", "INVALID_PARAMETER"),
])
def test_bad_input_is_refused_and_nothing_changes(api, admin_mail, root_connection, form, param, code):
    mail = new_admin_mail()
    result = api.post(f"/api/admin/{mail}", form)
    assert result.status_code == 400 and result.json["_msg"] == code and result.json["param"] == param, result.text
    assert read_entry(root_connection, admin_dn(mail)) is None
    if "password" in form and len(form) == 1 or "name" in form:
        return  # PUT takes no required password
    before = read_entry(root_connection, admin_dn(admin_mail))
    result = api.put(f"/api/admin/{admin_mail}", form)
    assert result.status_code == 400 and result.json["_msg"] == code and result.json["param"] == param, result.text
    assert read_entry(root_connection, admin_dn(admin_mail)) == before


def test_taken_addresses(api, admin_mail, new_domain):
    assert api.post(f"/api/admin/{admin_mail}", {"password": PASSWORD}).json == failed("ALREADY_EXISTS",
                                                                                       detail=admin_mail)
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    assert api.post(f"/api/user/u@{domain}", {"password": PASSWORD}).status_code == 201
    result = api.post(f"/api/admin/u@{domain}", {"password": PASSWORD})
    assert result.status_code == 409 and result.json["_msg"] == "ALREADY_EXISTS"
    assert api.put(f"/api/admin/u@{domain}", {"name": "x"}).status_code == 404


def test_a_global_admin_cannot_disable_demote_or_delete_itself(api, root_connection):
    before = read_entry(root_connection, admin_dn(GLOBAL_ADMIN))
    assert before["domainGlobalAdmin"] == ["yes"]
    for form in ({"accountStatus": "disabled"}, {"isGlobalAdmin": "no"}):
        result = api.put(f"/api/admin/{GLOBAL_ADMIN}", form)
        assert result.status_code == 403 and result.json["_msg"] == "PERMISSION_DENIED", result.text
    assert api.delete(f"/api/admin/{GLOBAL_ADMIN}").status_code == 403
    assert read_entry(root_connection, admin_dn(GLOBAL_ADMIN)) == before


def test_standalone_global_admin_cannot_delete_itself(api):
    mail = new_admin_mail()
    assert api.post(f"/api/admin/{mail}", {"password": PASSWORD, "isGlobalAdmin": "yes"}).status_code == 201
    boss = ApiClient(api.app).login(mail, PASSWORD)
    assert boss.delete(f"/api/admin/{mail}").status_code == 403
    assert boss.put(f"/api/admin/{mail}", {"accountStatus": "disabled"}).status_code == 403
    # its own password: it keeps the session it used
    assert boss.put(f"/api/admin/{mail}", {"password": "Other-Secret-3!"}).status_code == 200
    assert boss.get("/api/admins").status_code == 200


def test_normal_admins_may_not_touch_admins(api, admin_mail, root_connection):
    other = new_admin_mail()
    assert api.post(f"/api/admin/{other}", {"password": PASSWORD}).status_code == 201
    normal = ApiClient(api.app).login(admin_mail, PASSWORD)
    before = read_entry(root_connection, admin_dn(other))
    for method, path, form in [
        ("GET", "/api/admins", None), ("GET", f"/api/admin/{other}", None),
        ("POST", f"/api/admin/{new_admin_mail()}", {"password": PASSWORD}),
        ("PUT", f"/api/admin/{other}", {"name": "x"}), ("PUT", f"/api/admin/{admin_mail}", {"maxDomains": "9"}),
        ("DELETE", f"/api/admin/{other}", None),
    ]:
        result = normal.request(method, path, form=form)
        assert result.status_code == 403 and result.json["_msg"] == "PERMISSION_DENIED", (method, path, result.text)
    assert read_entry(root_connection, admin_dn(other)) == before
    assert api.get("/api/admins", params={"email_only": "yes"}).json["_data"].count(other) == 1


def test_sessions_end_even_if_the_request_died_after_its_write(make_app, monkeypatch):
    """An operator's server died after the demotion (or the delete) was written but before the
    sessions ended: the demoted admin is not global at its next request once the PUT is repeated,
    and the deleted one is out although the repeat answers 404."""
    from iredapi_ldap.resources import admin as admin_resource

    app = make_app(SESSION_RECHECK_INTERVAL=3600)
    api = ApiClient(app).login()
    demoted, deleted = new_admin_mail(), new_admin_mail()
    for mail in (demoted, deleted):
        assert api.post(f"/api/admin/{mail}", {"password": PASSWORD, "isGlobalAdmin": "yes"}).status_code == 201
    one, two = ApiClient(app).login(demoted, PASSWORD), ApiClient(app).login(deleted, PASSWORD)

    def dying(real):
        def run(*args, **kwargs):
            real(*args, **kwargs)
            raise RuntimeError("killed")
        return run

    directory = admin_resource.admin_directory
    monkeypatch.setattr(directory, "update_admin", dying(directory.update_admin))
    monkeypatch.setattr(directory, "delete_admin", dying(directory.delete_admin))
    assert api.put(f"/api/admin/{demoted}", {"isGlobalAdmin": "no"}).status_code == 500
    assert api.delete(f"/api/admin/{deleted}").status_code == 500
    monkeypatch.undo()
    assert api.put(f"/api/admin/{demoted}", {"isGlobalAdmin": "no"}).status_code == 200
    assert one.get("/api/admins").status_code == 401
    assert api.delete(f"/api/admin/{deleted}").status_code == 404
    assert two.get("/api/domains").status_code == 401
    # a repeat that changes nothing leaves sessions that already have the right it asks for
    again = ApiClient(app).login(demoted, PASSWORD)
    assert api.put(f"/api/admin/{demoted}", {"isGlobalAdmin": "no"}).status_code == 200
    assert again.get("/api/domains").status_code == 200
