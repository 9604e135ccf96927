"""Creates that race a domain's status change or its delete (issue 10, items 9 and 11).

Each race is made deterministic by running the other request's directory work at the
worst moment of the create: after it read the domain, before it added its entry.  The same
races with real concurrency, through a multi-worker gunicorn, are in test_domain_status_race.py.
"""

import logging

import pytest

from iredapi_ldap import authorization, errors, provisioning
from iredapi_ldap.directory import domains as domain_directory
from iredapi_ldap.directory import users as user_directory
from iredapi_ldap.directory.admins import Admin
from tests.conftest import GLOBAL_ADMIN, SUFFIX, domain_dn, read_entry

PASSWORD = "Secret-pw1!"
GLOBAL = Admin(username=GLOBAL_ADMIN, dn=f"mail={GLOBAL_ADMIN},o=domainAdmins,{SUFFIX}", is_global=True)
CREATES = {
    "user": ("/api/user/{}", {"password": PASSWORD}, "ou=Users"),
    "alias": ("/api/alias/{}", {"members": "someone@elsewhere.test"}, "ou=Aliases"),
    "list": ("/api/maillist/{}", {"members": "someone@elsewhere.test"}, "ou=Groups"),
}


def account_dn(kind, mail):
    return f"mail={mail},{CREATES[kind][2]},{domain_dn(mail.split('@')[1])}"


def ok(result, status=200):
    assert result.status_code == status, result.text
    return result


def set_status(directory, domain, status):
    domain_directory.update_domain(directory, domain, {"accountStatus": status},
                                   domain_directory.get_domain(directory, domain))


def after_the_domain_read(monkeypatch, action):
    """Run ``action(directory, admin, domain)`` once, right after a request read its domain."""
    real, done = authorization.managed_account_domain, []

    def read_then_act(directory, admin, mail):
        entry = real(directory, admin, mail)
        if not done:
            done.append(mail)
            action(directory, admin, mail.split("@", 1)[1])
        return entry

    monkeypatch.setattr(authorization, "managed_account_domain", read_then_act)


# -- item 9: a create that read the status before a change ---------------------------------


@pytest.mark.parametrize("kind", CREATES)
@pytest.mark.parametrize("change", ["disabled", "active"])
def test_an_account_created_while_the_domain_status_changed_follows_the_new_status(
        api, root_connection, new_domain, monkeypatch, kind, change):
    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}", {"accountStatus": "active" if change == "disabled" else "disabled"}), 201)
    after_the_domain_read(monkeypatch, lambda directory, admin, name: set_status(directory, name, change))
    mail = f"new@{domain}"
    path, form, _ = CREATES[kind]
    ok(api.post(path.format(mail), form), 201)
    assert read_entry(root_connection, domain_dn(domain))["accountStatus"] == [change]
    entry = read_entry(root_connection, account_dn(kind, mail))
    assert entry.get("domainStatus") == (["disabled"] if change == "disabled" else None)
    if kind == "list":  # its external-member entry too
        externals = read_entry(root_connection, f"memberOfGroup={mail},ou=Externals,{domain_dn(domain)}")
        assert externals.get("domainStatus") == (["disabled"] if change == "disabled" else None)


def test_an_external_member_entry_added_by_a_list_update_while_the_domain_is_disabled_follows(
        api, root_connection, new_domain, monkeypatch):
    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}"), 201)
    mail = f"list@{domain}"
    ok(api.post(f"/api/maillist/{mail}"), 201)
    after_the_domain_read(monkeypatch, lambda directory, admin, name: set_status(directory, name, "disabled"))
    ok(api.put(f"/api/maillist/{mail}", {"addMember": "someone@elsewhere.test"}))
    externals = read_entry(root_connection, f"memberOfGroup={mail},ou=Externals,{domain_dn(domain)}")
    assert externals["mail"] == ["someone@elsewhere.test"] and externals["domainStatus"] == ["disabled"]


@pytest.mark.parametrize("change", ["disabled", "active"])
def test_a_status_change_sweeps_again_after_writing_the_domain(api, root_connection, new_domain, monkeypatch,
                                                               change):
    """An account added after the first sweep passed, by a create that read the status before
    the domain's write, is caught by the sweep after the write."""
    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}", {"accountStatus": "active" if change == "disabled" else "disabled"}), 201)
    real, calls = domain_directory.set_accounts_domain_status, []
    late = f"mail=late@{domain},ou=Users,{domain_dn(domain)}"

    def sweep(directory, name, disabled):
        count = real(directory, name, disabled)
        if not calls:
            attributes = {"objectClass": ["inetOrgPerson", "mailUser"], "mail": [f"late@{domain}"], "cn": ["late"],
                          "sn": ["late"], "uid": ["late"], "accountStatus": ["active"]}
            if change == "active":
                attributes["domainStatus"] = ["disabled"]  # as read before the enable
            root_connection.add(late, attributes=attributes)
        calls.append(name)
        return count

    monkeypatch.setattr(domain_directory, "set_accounts_domain_status", sweep)
    ok(api.put(f"/api/domain/{domain}", {"accountStatus": change}))
    assert read_entry(root_connection, late).get("domainStatus") == (["disabled"] if change == "disabled" else None)


def test_a_create_reads_the_domain_status_once_more_after_its_add(make_app, new_domain):
    """The price of item 9 for a create: one base read (the round-trip header says so)."""
    from tests.conftest import ApiClient

    client = ApiClient(make_app()).login()
    domain = new_domain()
    ok(client.post(f"/api/domain/{domain}"), 201)
    ok(client.post(f"/api/user/first@{domain}", {"password": PASSWORD}), 201)
    result = ok(client.post(f"/api/user/second@{domain}", {"password": PASSWORD}), 201)
    # domain read, address lookup, counter write, add, racing alias-address search, status read
    assert int(result.headers["X-Directory-Round-Trips"]) == 6


# -- item 11: a create racing the domain's delete ------------------------------------------


@pytest.mark.parametrize("kind", CREATES)
def test_a_create_whose_domain_is_deleted_after_it_was_read_is_404(api, root_connection, new_domain, monkeypatch,
                                                                   caplog, kind):
    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}"), 201)
    after_the_domain_read(monkeypatch, lambda directory, admin, name: provisioning.delete_domain(
        api.app.services, name, admin, None))
    path, form, _ = CREATES[kind]
    with caplog.at_level(logging.WARNING):
        result = api.post(path.format(f"new@{domain}"), form)
    assert result.status_code == 404 and result.json["msg"] == "NO_SUCH_DOMAIN", result.text
    assert read_entry(root_connection, domain_dn(domain)) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.parametrize("kind", CREATES)
def test_a_create_whose_domain_goes_between_its_reservation_and_its_add_is_404(
        api, root_connection, new_domain, monkeypatch, caplog, kind):
    """Counters no longer matter once the domain is gone: giving the reservation back is skipped quietly."""
    from iredapi_ldap.directory import aliases, lists

    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}"), 201)
    module = {"user": user_directory, "alias": aliases, "list": lists}[kind]
    real = module.add_account_entry

    def delete_then_add(directory, name, dn, attributes):
        provisioning.delete_domain(api.app.services, name, GLOBAL, None)
        return real(directory, name, dn, attributes)

    monkeypatch.setattr(module, "add_account_entry", delete_then_add)
    path, form, _ = CREATES[kind]
    with caplog.at_level(logging.WARNING):
        result = api.post(path.format(f"new@{domain}"), form)
    assert result.status_code == 404 and result.json["msg"] == "NO_SUCH_DOMAIN", result.text
    assert read_entry(root_connection, domain_dn(domain)) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_create_whose_container_goes_again_is_404(api, root_connection, new_domain, monkeypatch):
    """The domain's delete removed the container the create had just put back."""
    from iredapi_ldap.directory import entries

    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}"), 201)
    users_ou = f"ou=Users,{domain_dn(domain)}"
    root_connection.delete(users_ou)
    real = entries.ensure_containers

    def put_back_then_lose(directory, name, ous=entries.dnlib.DOMAIN_OUS):
        real(directory, name, ous)
        root_connection.delete(users_ou)

    monkeypatch.setattr(entries, "ensure_containers", put_back_then_lose)
    result = api.post(f"/api/user/new@{domain}", {"password": PASSWORD})
    assert result.status_code == 404 and result.json["msg"] == "NO_SUCH_DOMAIN", result.text
    # the domain is still there (only its container went): the reservation was given back
    assert read_entry(root_connection, domain_dn(domain))["domainCurrentUserNumber"] == ["0"]


def test_the_domain_entry_modify_of_a_vanished_domain_is_404(api, root_connection, new_domain):
    """A counter write on a domain deleted since it was read (the reservation itself)."""
    from iredapi_ldap.directory import limits

    domain = new_domain()
    ok(api.post(f"/api/domain/{domain}"), 201)
    directory = api.app.services.directory
    entry = limits.read_domain(directory, domain)
    for ou in ("Users", "Groups", "Aliases", "Externals"):
        root_connection.delete(f"ou={ou},{domain_dn(domain)}")
    root_connection.delete(domain_dn(domain))
    with pytest.raises(errors.NoSuchObject) as raised:
        limits.adjust_counters(directory, domain, {limits.USERS: 1}, entry)
    assert raised.value.code == errors.NO_SUCH_DOMAIN
