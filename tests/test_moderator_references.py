"""Deleting a user or an alias takes its address out of lists' listModerator and
listAllowedUser, so a future account at the address cannot post as a moderator
(issue 10, item 14)."""

import pytest

from tests.conftest import SUFFIX, read_entry

PASSWORD = "Secret-pw1!"


def list_dn(mail):
    domain = mail.split("@")[1]
    return f"mail={mail},ou=Groups,domainName={domain},o=domains,{SUFFIX}"


def ok(result, status=200):
    assert result.status_code == status, result.text
    return result


@pytest.mark.parametrize("kind", ["user", "alias"])
def test_a_deleted_account_leaves_no_posting_rights(api, root_connection, new_domain, kind):
    domain, other = new_domain(), new_domain()
    for name in (domain, other):
        ok(api.post(f"/api/domain/{name}"), 201)
    mod, stays = f"mod@{domain}", f"stays@{domain}"
    create = {"user": ("/api/user/", {"password": PASSWORD}), "alias": ("/api/alias/", {})}[kind]
    ok(api.post(create[0] + mod, create[1]), 201)
    ok(api.post(f"/api/user/{stays}", {"password": PASSWORD}), 201)
    lists = [f"here@{domain}", f"there@{other}"]
    for mail in lists:
        ok(api.post(f"/api/maillist/{mail}", {"moderators": f"{mod},{stays}", "accessPolicy": "moderatorsonly"}),
           201)
        entry = read_entry(root_connection, list_dn(mail))
        assert sorted(entry["listModerator"]) == sorted(entry["listAllowedUser"]) == [mod, stays]

    ok(api.delete(create[0] + mod))
    ok(api.post(create[0] + mod, create[1]), 201)  # a new account at the same address
    for mail in lists:
        entry = read_entry(root_connection, list_dn(mail))
        assert entry["listModerator"] == [stays] and entry["listAllowedUser"] == [stays]
        assert ok(api.get(f"/api/maillist/{mail}")).json["_data"]["moderators"] == [stays]


@pytest.mark.parametrize("delete", ["user", "domain"])
def test_a_deleted_accounts_list_ownership_goes_too(api, root_connection, new_domain, delete):
    """iRedAPD lets a list's listOwner post whatever its access policy (as listModerator and
    listAllowedUser); iRedAdmin writes owners of old-style lists there.  A deleted account's
    ownership goes with it (renames move it), or a future account at the address would inherit it."""
    import ldap3

    domain, other = new_domain(), new_domain()
    for name in (domain, other):
        ok(api.post(f"/api/domain/{name}"), 201)
    owner, stays = f"owner@{domain}", f"stays@{other}"
    ok(api.post(f"/api/user/{owner}", {"password": PASSWORD}), 201)
    mail = f"there@{other}"
    ok(api.post(f"/api/maillist/{mail}", {"accessPolicy": "moderatorsonly"}), 201)
    root_connection.modify(list_dn(mail), {"listOwner": [(ldap3.MODIFY_ADD, [owner, stays])],
                                           "listAllowedUser": [(ldap3.MODIFY_ADD, [owner, stays])]})
    ok(api.delete(f"/api/user/{owner}" if delete == "user" else f"/api/domain/{domain}"))
    entry = read_entry(root_connection, list_dn(mail))
    assert entry["listOwner"] == [stays] and entry["listAllowedUser"] == [stays]
