"""A request that dies half-way leaves a state that the same request, repeated, finishes."""

from iredapi_ldap.directory import entries
from iredapi_ldap.directory import users as user_directory
from iredapi_ldap.store.deleted_mailboxes import list_deleted_mailboxes
from tests.conftest import SUFFIX, count_entries, read_entry

PASSWORD = "Secret-pw1!"


def _domain_dn(domain):
    return f"domainName={domain},o=domains,{SUFFIX}"


def test_user_delete_that_died_before_the_entry_went_is_finished_by_a_retry(api, root_connection, new_domain,
                                                                            monkeypatch):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail, other = f"victim@{domain}", f"friend@{domain}"
    api.post(f"/api/user/{mail}", {"password": PASSWORD, "mailQuota": "4"})
    api.post(f"/api/user/{other}", {"password": PASSWORD})
    api.put(f"/api/user/{other}", {"forwarding": mail})
    real = user_directory.delete_user_entry

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(user_directory, "delete_user_entry", crash)
    assert api.delete(f"/api/user/{mail}").status_code == 500
    assert read_entry(root_connection, f"mail={mail},ou=Users,{_domain_dn(domain)}") is not None
    assert "mailForwardingAddress" not in read_entry(root_connection, f"mail={other},ou=Users,{_domain_dn(domain)}")

    monkeypatch.setattr(user_directory, "delete_user_entry", real)
    assert api.delete(f"/api/user/{mail}").status_code == 200
    assert read_entry(root_connection, f"mail={mail},ou=Users,{_domain_dn(domain)}") is None
    assert [r["username"] for r in list_deleted_mailboxes(api.app.services.admin_store, domain)] == [mail]
    entry = read_entry(root_connection, _domain_dn(domain))
    assert entry["domainCurrentUserNumber"] == ["1"] and entry["domainCurrentQuotaSize"] == ["0"]


def test_domain_delete_that_died_half_way_is_finished_by_a_retry(api, root_connection, new_domain, monkeypatch):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    for i in range(6):
        api.post(f"/api/user/u{i}@{domain}", {"password": PASSWORD})
    real, deleted = entries.delete_entry, []

    def crash_after_three(directory, dn, before_delete=None):
        if len(deleted) == 3:
            raise RuntimeError("worker killed")
        deleted.append(dn)
        return real(directory, dn, before_delete)

    monkeypatch.setattr(entries, "delete_entry", crash_after_three)
    assert api.delete(f"/api/domain/{domain}").status_code == 500
    assert 0 < count_entries(root_connection, _domain_dn(domain), "(objectClass=mailUser)") < 6

    monkeypatch.setattr(entries, "delete_entry", real)
    assert api.delete(f"/api/domain/{domain}").status_code == 200
    assert count_entries(root_connection, _domain_dn(domain)) == 0
    rows = list_deleted_mailboxes(api.app.services.admin_store, domain)
    assert sorted(r["username"] for r in rows) == [f"u{i}@{domain}" for i in range(6)]


def test_domain_disable_that_died_half_way_is_finished_by_a_retry(api, root_connection, new_domain, monkeypatch):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    for i in range(4):
        api.post(f"/api/user/u{i}@{domain}", {"password": PASSWORD})
    ldap = api.app.services.directory.client
    real_modify, calls = ldap.modify, []

    def crash_on_second(dn, changes):
        calls.append(dn)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_modify(dn, changes)

    monkeypatch.setattr(ldap, "modify", crash_on_second)
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 500
    # It died half-way: one account disabled, the others and the domain itself not yet.
    assert count_entries(root_connection, _domain_dn(domain), "(&(objectClass=mailUser)(domainStatus=disabled))") == 1
    assert read_entry(root_connection, _domain_dn(domain))["accountStatus"] == ["active"]
    monkeypatch.setattr(ldap, "modify", real_modify)
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert count_entries(root_connection, _domain_dn(domain), "(&(objectClass=mailUser)(domainStatus=disabled))") == 4
    assert read_entry(root_connection, _domain_dn(domain))["accountStatus"] == ["disabled"]
