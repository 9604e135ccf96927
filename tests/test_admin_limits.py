"""A normal admin's limits (maxDomains, maxUsers, maxAliases, maxLists, maxQuota), summed over the
domains it manages (issue 14), on the real slapd; the race through real gunicorn workers is in
test_admin_limit_races.py."""

import time
import uuid

import ldap3
import pytest

from iredapi_ldap.directory import admin_limits
from tests.conftest import SUFFIX, ApiClient, count_entries, domain_dn, read_entry

PASSWORD = "Admin-Secret-2!"


def admin_dn(mail):
    return f"mail={mail},o=domainAdmins,{SUFFIX}"


def make_admin(api, **limits):
    mail = f"n{uuid.uuid4().hex[:8]}@admins.test"
    assert api.post(f"/api/admin/{mail}", {"password": PASSWORD, **limits}).status_code == 201
    return mail, ApiClient(api.app).login(mail, PASSWORD)


def leases(conn, mail):
    return [v for v in read_entry(conn, admin_dn(mail)).get("accountSetting", []) if v.startswith("iredapiLease:")]


def test_only_admins_given_max_domains_create_domains(api, new_domain, root_connection):
    _, plain = make_admin(api)
    domain = new_domain()
    result = plain.post(f"/api/domain/{domain}")
    assert result.status_code == 403 and result.json["_msg"] == "PERMISSION_DENIED"
    assert read_entry(root_connection, domain_dn(domain)) is None


def test_max_domains_and_the_creator_manages_them(api, new_domain, root_connection):
    mail, admin = make_admin(api, maxDomains="2")
    first, second, third = new_domain(), new_domain(), new_domain()
    # a creator may set what a domain admin may change, not limits or the transport
    result = admin.post(f"/api/domain/{first}", {"numberOfUsers": "100"})
    assert result.status_code == 403 and result.json["param"] == "numberOfUsers"
    assert read_entry(root_connection, domain_dn(first)) is None
    for domain in (first, second):
        assert admin.post(f"/api/domain/{domain}", {"name": "Mine", "language": "de_DE"}).status_code == 201
        assert read_entry(root_connection, domain_dn(domain))["domainAdmin"] == [mail]
    assert sorted(admin.get("/api/domains", params={"name_only": "yes"}).json["_data"]) == sorted([first, second])
    result = admin.post(f"/api/domain/{third}")
    assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT", result.text
    assert read_entry(root_connection, domain_dn(third)) is None
    assert leases(root_connection, mail) == []
    # a domain given up makes room
    assert api.put(f"/api/domain/admins/{second}", {"removeAdmin": mail}).status_code == 200
    assert admin.post(f"/api/domain/{third}").status_code == 201
    # maxDomains=0: no more domain creation at all
    assert api.put(f"/api/admin/{mail}", {"maxDomains": "0"}).status_code == 200
    assert admin.post(f"/api/domain/{new_domain()}").json["_msg"] == "PERMISSION_DENIED"


def test_max_users_aliases_lists_over_all_its_domains(api, new_domain, root_connection):
    mail, admin = make_admin(api, maxDomains="2", maxUsers="3", maxAliases="1", maxLists="1")
    one, two = new_domain(), new_domain()
    assert admin.post(f"/api/domain/{one}").status_code == 201
    assert api.post(f"/api/domain/{two}").status_code == 201  # made by the global admin, given to it
    assert api.put(f"/api/domain/admins/{two}", {"addAdmin": mail}).status_code == 200
    for user in (f"a@{one}", f"b@{one}", f"c@{two}"):
        assert admin.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
    result = admin.post(f"/api/user/d@{two}", {"password": PASSWORD})
    assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT", result.text
    assert count_entries(root_connection, domain_dn(two), "(objectClass=mailUser)") == 1
    assert read_entry(root_connection, domain_dn(two))["domainCurrentUserNumber"] == ["1"]
    # a global admin is not bound by it; what it creates counts
    assert api.post(f"/api/user/e@{two}", {"password": PASSWORD}).status_code == 201
    assert admin.delete(f"/api/user/a@{one}").status_code == 200
    assert admin.post(f"/api/user/d@{two}", {"password": PASSWORD}).json["_msg"] == "EXCEEDED_ADMIN_LIMIT"
    assert admin.delete(f"/api/user/b@{one}").status_code == 200
    assert admin.post(f"/api/user/d@{two}", {"password": PASSWORD}).status_code == 201
    assert admin.post(f"/api/alias/x@{one}").status_code == 201
    assert admin.post(f"/api/alias/y@{two}").json["_msg"] == "EXCEEDED_ADMIN_LIMIT"
    assert admin.post(f"/api/maillist/l@{two}").status_code == 201
    assert admin.post(f"/api/maillist/m@{one}").json["_msg"] == "EXCEEDED_ADMIN_LIMIT"
    assert count_entries(root_connection, domain_dn(two), "(objectClass=mailAlias)") == 0
    assert leases(root_connection, mail) == []


def test_max_quota(api, new_domain, root_connection):
    mail, admin = make_admin(api, maxDomains="1", maxQuota="1", quotaUnit="GB")
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    assert admin.post(f"/api/user/a@{domain}", {"password": PASSWORD, "quota": "600"}).status_code == 201
    result = admin.post(f"/api/user/b@{domain}", {"password": PASSWORD, "quota": "600"})
    assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT"
    assert result.json["param"] == "quota"
    result = admin.post(f"/api/user/b@{domain}", {"password": PASSWORD})  # unlimited
    assert result.status_code == 403 and result.json["param"] == "quota"
    assert admin.post(f"/api/user/b@{domain}", {"password": PASSWORD, "quota": "424"}).status_code == 201
    assert read_entry(root_connection, domain_dn(domain))["domainCurrentQuotaSize"] == [str(1024 * 1024 * 1024)]


def test_a_dead_holders_lease_is_taken_over_and_a_live_one_waited_for(api, new_domain, root_connection,
                                                                      monkeypatch):
    mail, admin = make_admin(api, maxDomains="3")
    expired = "iredapiLease:1000:deadbeef"
    root_connection.modify(admin_dn(mail), {"accountSetting": [(ldap3.MODIFY_ADD, [expired])]})
    assert admin.post(f"/api/domain/{new_domain()}").status_code == 201
    assert leases(root_connection, mail) == []
    live = f"iredapiLease:{int(time.time()) + 20}:cafe"
    root_connection.modify(admin_dn(mail), {"accountSetting": [(ldap3.MODIFY_ADD, [live])]})
    monkeypatch.setattr(admin_limits, "_WAIT_SECONDS", 0.3)
    domain = new_domain()
    result = admin.post(f"/api/domain/{domain}")
    assert result.status_code == 409 and result.json["_msg"] == "CONCURRENT_UPDATE"
    assert read_entry(root_connection, domain_dn(domain)) is None
    assert leases(root_connection, mail) == [live]


def test_the_lease_is_not_shown(api, root_connection):
    mail, _ = make_admin(api, maxUsers="5")
    root_connection.modify(admin_dn(mail), {"accountSetting": [(ldap3.MODIFY_ADD, ["iredapiLease:1000:ab"])]})
    assert api.get(f"/api/admin/{mail}").json["_data"]["accountSetting"] == ["create_max_users:5"]
    listed = [d for d in api.get("/api/admins").json["_data"] if d["mail"] == [mail]]
    assert listed[0]["accountSetting"] == ["create_max_users:5"]


@pytest.mark.parametrize("limits", [{}, {"maxUsers": "0"}])
def test_unlimited_admins_take_no_lease(api, new_domain, root_connection, limits, monkeypatch):
    mail, admin = make_admin(api, maxDomains="1", **limits)
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    taken = []
    monkeypatch.setattr(admin_limits, "_take_lease", lambda *a: taken.append(a) or "x")
    assert admin.post(f"/api/user/u@{domain}", {"password": PASSWORD}).status_code == 201
    assert taken == []


def test_max_quota_holds_on_quota_changes(api, new_domain, root_connection):
    mail, admin = make_admin(api, maxDomains="1", maxQuota="1", quotaUnit="GB")
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    assert admin.post(f"/api/user/a@{domain}", {"password": PASSWORD, "quota": "600"}).status_code == 201
    assert admin.post(f"/api/user/b@{domain}", {"password": PASSWORD, "quota": "400"}).status_code == 201
    before = read_entry(root_connection, f"mail=b@{domain},ou=Users,{domain_dn(domain)}")
    for quota in ("500", "0"):
        result = admin.put(f"/api/user/b@{domain}", {"quota": quota})
        assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT", result.text
    assert read_entry(root_connection, f"mail=b@{domain},ou=Users,{domain_dn(domain)}") == before
    assert admin.put(f"/api/user/b@{domain}", {"quota": "424"}).status_code == 200
    assert admin.put(f"/api/user/b@{domain}", {"quota": "100"}).status_code == 200  # lowering always works
    assert api.put(f"/api/user/b@{domain}", {"quota": "0"}).status_code == 200  # a global admin is not bound


def test_a_limited_admin_stays_in_its_domains(api, new_domain, root_connection):
    mail, admin = make_admin(api, maxDomains="2", maxUsers="5")
    mine, other = new_domain(), new_domain()
    assert admin.post(f"/api/domain/{mine}").status_code == 201
    assert api.post(f"/api/domain/{other}").status_code == 201
    for path in (f"/api/user/u@{other}", f"/api/alias/a@{other}", f"/api/maillist/l@{other}"):
        result = admin.post(path, {"password": PASSWORD} if "/user/" in path else None)
        assert result.status_code == 403 and result.json["_msg"] == "PERMISSION_DENIED", (path, result.text)
    assert count_entries(root_connection, domain_dn(other), "(|(objectClass=mailUser)(objectClass=mailAlias)"
                                                            "(objectClass=mailList))") == 0
    # bad input on a domain create changes nothing, and leaves no lease
    bad = new_domain()
    assert admin.post(f"/api/domain/{bad}", {"language": "xx"}).json["_msg"] == "INVALID_LANGUAGE"
    assert admin.post(f"/api/domain/{mine}").json["_msg"] == "ALREADY_EXISTS"
    assert read_entry(root_connection, domain_dn(bad)) is None and leases(root_connection, mail) == []


def test_an_admin_deleted_meanwhile_creates_nothing(api, new_domain, root_connection, monkeypatch):
    mail, admin = make_admin(api, maxDomains="2", maxUsers="5")
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    real = admin_limits.read_admin
    monkeypatch.setattr(admin_limits, "read_admin", lambda directory, who: None)
    result = admin.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    assert result.status_code == 403, result.text
    monkeypatch.setattr(admin_limits, "read_admin", real)
    assert count_entries(root_connection, domain_dn(domain), "(objectClass=mailUser)") == 0


def test_lease_expiry_allows_for_other_hosts_clocks(api, new_domain, root_connection, monkeypatch):
    """The expiry is the holder's clock: one that expired by ours a moment ago may be a host's
    whose clock is behind, and is waited for; one far ahead of any clock (a clock that jumped)
    does not block the admin for ever."""
    mail, admin = make_admin(api, maxDomains="3")
    monkeypatch.setattr(admin_limits, "_WAIT_SECONDS", 0.3)
    just_expired = f"iredapiLease:{int(time.time()) - 5}:cafe"
    root_connection.modify(admin_dn(mail), {"accountSetting": [(ldap3.MODIFY_ADD, [just_expired])]})
    domain = new_domain()
    result = admin.post(f"/api/domain/{domain}")
    assert result.status_code == 409 and result.json["_msg"] == "CONCURRENT_UPDATE"
    assert read_entry(root_connection, domain_dn(domain)) is None
    assert leases(root_connection, mail) == [just_expired]
    root_connection.modify(admin_dn(mail), {"accountSetting": [(ldap3.MODIFY_DELETE, [just_expired])]})
    far_ahead = f"iredapiLease:{int(time.time()) + 86400}:beef"
    root_connection.modify(admin_dn(mail), {"accountSetting": [(ldap3.MODIFY_ADD, [far_ahead])]})
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    assert leases(root_connection, mail) == []


def _lose_the_answer_of_the_lease_add(monkeypatch, directory, failure):
    """directory.modify that carries out the first lease add, then fails as ``failure()``."""
    real = type(directory).modify
    done = []

    def modify(self, dn, changes, assertion=None):
        adds = [values for kind, values in changes.get("accountSetting", []) if kind == "MODIFY_ADD"]
        real(self, dn, changes, assertion)
        if not done and any(v.startswith("iredapiLease:") for values in adds for v in values):
            done.append(dn)
            raise failure(dn)

    monkeypatch.setattr(type(directory), "modify", modify)
    return done


def test_a_lease_add_whose_answer_was_lost_is_ours(api, new_domain, root_connection, monkeypatch):
    """The connection went away after slapd added the lease; the add, repeated on a new
    connection, fails its assertion: the request finds its own lease and goes on, and gives it
    back (it does not wait for itself and leave it behind)."""
    from iredapi_ldap.directory.connection import ASSERTION_FAILED, LdapOperationError

    mail, admin = make_admin(api, maxDomains="3")
    monkeypatch.setattr(admin_limits, "_WAIT_SECONDS", 0.5)
    done = _lose_the_answer_of_the_lease_add(monkeypatch, api.app.services.directory,
                                             lambda dn: LdapOperationError(ASSERTION_FAILED, "assertion failed", dn))
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    assert done and read_entry(root_connection, domain_dn(domain)) is not None
    assert leases(root_connection, mail) == []


def test_a_lease_add_without_answer_is_given_back(api, new_domain, root_connection, monkeypatch):
    from iredapi_ldap import errors

    mail, admin = make_admin(api, maxDomains="3")
    done = _lose_the_answer_of_the_lease_add(
        monkeypatch, api.app.services.directory,
        lambda dn: errors.BackendUnavailable(errors.SERVER_DOWN, detail="the directory did not answer"))
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 503
    assert done and read_entry(root_connection, domain_dn(domain)) is None
    assert leases(root_connection, mail) == []


def test_a_normal_admin_may_not_claim_an_alias_domain(api, new_domain, root_connection):
    """Postfix's transport_maps_domain.cf asks (|(domainName=%s)(domainAliasName=%s)): a domain
    by the name of another domain's alias domain would break that alias domain's mail and take
    its free addresses."""
    victim, alias = new_domain(), new_domain()
    assert api.post(f"/api/domain/{victim}").status_code == 201
    root_connection.modify(domain_dn(victim), {"domainAliasName": [(ldap3.MODIFY_ADD, [alias])],
                                               "enabledService": [(ldap3.MODIFY_ADD, ["domainalias"])]})
    mail, admin = make_admin(api, maxDomains="3")
    result = admin.post(f"/api/domain/{alias}")
    assert result.status_code == 409 and result.json["_msg"] == "ALREADY_EXISTS"
    assert read_entry(root_connection, domain_dn(alias)) is None
    assert leases(root_connection, mail) == []
    assert admin.post(f"/api/domain/{new_domain()}").status_code == 201


def test_a_user_it_made_an_admin_creates_within_its_limits(api, new_domain, root_connection):
    """A limited admin may make a mail user of its domain an admin of it (Pro: domain admins
    promote users of their domains); that user's creates there count against the limited admin
    and are held within its limits, or the limits would be a formality."""
    mail, admin = make_admin(api, maxDomains="1", maxUsers="2", maxAliases="1", maxLists="1", maxQuota="1",
                             quotaUnit="GB")
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    helper = f"helper@{domain}"
    assert admin.post(f"/api/user/{helper}", {"password": PASSWORD, "quota": "100"}).status_code == 201
    assert admin.put(f"/api/domain/admins/{domain}", {"addAdmin": helper}).status_code == 200
    deputy = ApiClient(api.app).login(helper, PASSWORD)
    assert deputy.post(f"/api/user/one@{domain}", {"password": PASSWORD, "quota": "100"}).status_code == 201
    for result, param in ((deputy.post(f"/api/user/two@{domain}", {"password": PASSWORD, "quota": "100"}), None),
                          (deputy.put(f"/api/user/one@{domain}", {"quota": "2000"}), "quota")):
        assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT", result.text
        assert result.json.get("param") == param and mail in result.json["detail"]
    assert deputy.post(f"/api/alias/a@{domain}").status_code == 201
    assert deputy.post(f"/api/alias/b@{domain}").json["_msg"] == "EXCEEDED_ADMIN_LIMIT"
    assert deputy.post(f"/api/maillist/l@{domain}").status_code == 201
    assert deputy.post(f"/api/maillist/m@{domain}").json["_msg"] == "EXCEEDED_ADMIN_LIMIT"
    assert count_entries(root_connection, domain_dn(domain), "(objectClass=mailUser)") == 2
    assert leases(root_connection, mail) == []
    # a domain that no limited admin manages: its mail-user admins are bounded by nothing
    free = new_domain()
    assert api.post(f"/api/domain/{free}").status_code == 201
    assert api.put(f"/api/domain/admins/{free}", {"addAdmin": helper}).status_code == 200
    deputy = ApiClient(api.app).login(helper, PASSWORD)
    for name in ("x", "y", "z"):
        assert deputy.post(f"/api/user/{name}@{free}", {"password": PASSWORD}).status_code == 201
