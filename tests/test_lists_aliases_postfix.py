"""Lists and aliases made through the API, as Debian's Postfix sees them.

``postmap -q`` with iRedMail's LDAP lookup tables (tests/mailstack/postfix, checked
against ../shared/upstream/postfix-ldap by test_mailstack_configs.py), binding as the
read-only cn=vmail to the test slapd.
"""

import pytest

PASSWORD = "Secret-pw1!"


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    for user in ("alice", "bob"):
        assert api.post(f"/api/user/{user}@{name}", {"password": PASSWORD}).status_code == 201
    return name


def expand(postfix, address):
    """What virtual_alias_maps makes of ``address``: Postfix asks virtual_alias_maps,
    virtual_group_maps, virtual_group_members_maps and catchall_maps in this order
    (main.cf.ldap) and takes the first answer."""
    for map_name in ("virtual_alias_maps", "virtual_group_maps", "virtual_group_members_maps", "catchall_maps"):
        found = postfix.lookup(map_name, address)
        if found:
            return sorted(found)
    return []


def test_alias_resolves_to_its_members(mailstack, api, domain):
    postfix = mailstack.postfix
    alias = f"info@{domain}"
    members = [f"alice@{domain}", "carol@external.test", "dave@external.test"]
    assert api.post(f"/api/alias/{alias}", {"members": ",".join(members)}).status_code == 201
    assert sorted(postfix.lookup("virtual_alias_maps", alias)) == sorted(members)

    api.put(f"/api/alias/{alias}", {"removeMember": "dave@external.test", "addMember": f"bob@{domain}"})
    assert sorted(postfix.lookup("virtual_alias_maps", alias)) == sorted(
        [f"alice@{domain}", f"bob@{domain}", "carol@external.test"])

    api.put(f"/api/alias/{alias}", {"accountStatus": "disabled"})
    assert postfix.lookup("virtual_alias_maps", alias) == []
    api.put(f"/api/alias/{alias}", {"accountStatus": "active"})
    assert postfix.lookup("virtual_alias_maps", alias) != []

    assert api.delete(f"/api/alias/{alias}").status_code == 200
    assert expand(postfix, alias) == []


def test_list_expands_through_the_group_maps(mailstack, api, domain):
    postfix = mailstack.postfix
    listed = f"team@{domain}"
    assert api.post(f"/api/alias/sales@{domain}", {"members": "boss@external.test"}).status_code == 201
    result = api.post(f"/api/maillist/{listed}",
                      {"members": f"alice@{domain},bob@{domain},sales@{domain},carol@external.test"})
    assert result.status_code == 201, result.text
    # the list expands to its members: users and external addresses as they are, the alias
    # by its address (which virtual_alias_maps expands in turn)
    assert sorted(postfix.lookup("virtual_group_maps", listed)) == sorted(
        [f"alice@{domain}", f"bob@{domain}", f"sales@{domain}", "carol@external.test"])
    assert postfix.lookup("virtual_alias_maps", listed) == []  # a list is not an alias
    assert postfix.lookup("virtual_group_members_maps", f"alice@{domain}") == [f"alice@{domain}"]
    assert postfix.lookup("virtual_alias_maps", f"sales@{domain}") == ["boss@external.test"]

    api.put(f"/api/maillist/{listed}", {"removeMember": f"bob@{domain},carol@external.test"})
    assert sorted(postfix.lookup("virtual_group_maps", listed)) == sorted([f"alice@{domain}", f"sales@{domain}"])

    api.put(f"/api/maillist/{listed}", {"addMember": "dave@external.test"})
    assert sorted(postfix.lookup("virtual_group_maps", listed)) == sorted(
        [f"alice@{domain}", f"sales@{domain}", "dave@external.test"])

    # Postfix does not look at the list's own status; the suspended memberships do it.
    api.put(f"/api/maillist/{listed}", {"accountStatus": "disabled"})
    assert postfix.lookup("virtual_group_maps", listed) == []
    api.put(f"/api/maillist/{listed}", {"accountStatus": "active"})
    assert sorted(postfix.lookup("virtual_group_maps", listed)) == sorted(
        [f"alice@{domain}", f"sales@{domain}", "dave@external.test"])

    # a disabled member is not expanded
    api.put(f"/api/alias/sales@{domain}", {"accountStatus": "disabled"})
    assert sorted(postfix.lookup("virtual_group_maps", listed)) == sorted([f"alice@{domain}", "dave@external.test"])

    assert api.delete(f"/api/maillist/{listed}").status_code == 200
    assert expand(postfix, listed) == []


def test_nested_list_and_deleted_members(mailstack, api, domain):
    postfix = mailstack.postfix
    inner, outer = f"inner@{domain}", f"outer@{domain}"
    api.post(f"/api/maillist/{inner}", {"members": f"bob@{domain},x@external.test"})
    api.post(f"/api/maillist/{outer}", {"members": f"alice@{domain},{inner}"})
    assert sorted(postfix.lookup("virtual_group_maps", outer)) == sorted([f"alice@{domain}", inner])
    assert sorted(postfix.lookup("virtual_group_maps", inner)) == sorted([f"bob@{domain}", "x@external.test"])

    # deleting an account takes it out of the lists it was in
    api.delete(f"/api/user/alice@{domain}")
    api.delete(f"/api/maillist/{inner}")
    assert postfix.lookup("virtual_group_maps", outer) == []
    assert api.get(f"/api/maillist/{outer}").json["_data"]["members"] == []


def test_disabled_domain_stops_lists_and_aliases(mailstack, api, domain):
    postfix = mailstack.postfix
    api.post(f"/api/alias/info@{domain}", {"members": "x@external.test"})
    api.post(f"/api/maillist/team@{domain}", {"members": f"alice@{domain},y@external.test"})
    assert postfix.lookup("virtual_alias_maps", f"info@{domain}") == ["x@external.test"]
    assert sorted(postfix.lookup("virtual_group_maps", f"team@{domain}")) == sorted(
        [f"alice@{domain}", "y@external.test"])

    api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"})
    assert postfix.lookup("virtual_alias_maps", f"info@{domain}") == []
    assert postfix.lookup("virtual_group_maps", f"team@{domain}") == []
    # made while the domain is disabled: also marked
    api.post(f"/api/alias/late@{domain}", {"members": "z@external.test"})
    api.post(f"/api/maillist/late-list@{domain}", {"members": "z@external.test"})
    assert postfix.lookup("virtual_alias_maps", f"late@{domain}") == []
    assert postfix.lookup("virtual_group_maps", f"late-list@{domain}") == []

    api.put(f"/api/domain/{domain}", {"accountStatus": "active"})
    assert postfix.lookup("virtual_alias_maps", f"late@{domain}") == ["z@external.test"]
    assert postfix.lookup("virtual_group_maps", f"late-list@{domain}") == ["z@external.test"]


def test_a_domain_admins_members_in_other_domains_get_the_mail(mailstack, api, make_app, root_connection, domain,
                                                                new_domain):
    """A domain admin's alias members outside its domains are forwarding addresses, its list
    members outside the domains hosted here external members (issue 10, item 8); Postfix
    delivers to both: the alias or list gives the address, which resolves as usual."""
    from tests.test_aliases import _domain_admin

    postfix = mailstack.postfix
    client, other = _domain_admin(api, make_app, root_connection, domain, new_domain)
    assert api.post(f"/api/maillist/theirs@{other}", {"members": f"stranger@{other}"}).status_code == 201
    assert client.post(f"/api/maillist/team@{domain}",
                       {"members": f"alice@{domain},someone@unhosted-elsewhere.test"}).status_code == 201
    assert client.post(f"/api/alias/info@{domain}", {"members": f"stranger@{other}"}).status_code == 201
    assert sorted(postfix.lookup("virtual_group_maps", f"team@{domain}")) == sorted(
        [f"alice@{domain}", "someone@unhosted-elsewhere.test"])
    assert expand(postfix, f"theirs@{other}") == [f"stranger@{other}"]
    assert expand(postfix, f"info@{domain}") == [f"stranger@{other}"]
    assert expand(postfix, f"stranger@{other}") == [f"stranger@{other}"]  # itself: final, its mailbox
    assert postfix.lookup("virtual_mailbox_maps", f"stranger@{other}") != []
