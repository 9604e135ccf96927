"""POST /api/{user,alias,maillist}/<mail>/change_email/<new_mail>: renames on the real slapd.

The entry moves (modrdn) and every reference follows; bad input changes nothing; a rename that
dies half-way is finished by repeating it.
"""

import ldap3
import pytest
import sqlalchemy as sa

from iredapi_ldap.directory import renames
from iredapi_ldap.store import throttle as throttle_store
from iredapi_ldap.store.tables import throttle, throttle_tracking
from tests.conftest import (
    SUFFIX,
    ApiClient,
    _ssha,
    alias_dn,
    count_entries,
    domain_dn,
    externals_dn,
    failed,
    list_dn,
    read_entry,
    user_dn,
)

PASSWORD = "Secret-pw1!"


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    return name


def _lower(values):
    return sorted(v.lower() for v in values or [])


def _throttle_accounts(api):
    with api.app.services.iredapd_store.transaction() as conn:
        return sorted(conn.execute(sa.select(throttle.c.account, throttle.c.kind)).all())


def _alias_domain(root_connection, domain, mail, alias_domain):
    """An alias domain as iRedMail records it (domainAliasName), and the user's address in it."""
    root_connection.modify(domain_dn(domain), {"domainAliasName": [(ldap3.MODIFY_ADD, [alias_domain])]})
    root_connection.modify(user_dn(mail), {"shadowAddress": [(ldap3.MODIFY_ADD, [mail.split("@")[0] + "@"
                                                                                 + alias_domain])]})


def _world(api, root_connection, domain, new_domain):
    """A user old@ named everywhere an address can be named."""
    old = f"old@{domain}"
    assert api.post(f"/api/user/{old}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    assert api.put(f"/api/user/{old}", {"forwarding": f"{old},copy@elsewhere.test"}).status_code == 200
    api.post(f"/api/user/friend@{domain}", {"password": PASSWORD})
    api.put(f"/api/user/friend@{domain}", {"forwarding": f"{old},x@elsewhere.test"})
    api.post(f"/api/alias/team@{domain}", {"members": f"{old},friend@{domain}"})
    api.post(f"/api/maillist/list@{domain}", {"members": f"{old},y@elsewhere.test", "moderators": old})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [old])]})
    root_connection.modify(user_dn(old), {"enabledService": [(ldap3.MODIFY_ADD, ["domainadmin"])]})
    # (no external-member entry can hold old@: slapd's unique overlay keeps the address of an
    # account out of them; list renames test those entries)
    other = new_domain()
    api.post(f"/api/domain/{other}")
    api.post(f"/api/alias/fw@{other}", {"members": old})
    _alias_domain(root_connection, domain, old, f"alias-{domain}")
    return old, other


def test_user_rename_moves_the_entry_and_every_reference(api, make_app, root_connection, domain, new_domain):
    old, other = _world(api, root_connection, domain, new_domain)
    new = f"new@{domain}"
    alias_domain = f"alias-{domain}"
    before = read_entry(root_connection, user_dn(old))
    api.post(f"/api/throttle/{old}/outbound", {"period": "60", "max_msgs": "5"})
    with api.app.services.iredapd_store.transaction() as conn:
        tid = conn.execute(sa.select(throttle.c.id).where(throttle.c.account == old)).scalar_one()
        conn.execute(sa.insert(throttle_tracking).values(tid=tid, account=old, period=60, cur_msgs=3))
    # the user is a domain admin with an open session
    root_connection.modify(user_dn(old), {"userPassword": [(ldap3.MODIFY_REPLACE, [_ssha("Admin-Pw-9")])]})
    session = ApiClient(make_app()).login(old, "Admin-Pw-9")

    result = api.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    assert result.json["_data"] == {"mail": new}

    assert read_entry(root_connection, user_dn(old)) is None
    after = read_entry(root_connection, user_dn(new))
    assert after["mail"] == [new] and after["uid"] == ["new"]
    assert after["cn"] == ["new"] and after["sn"] == ["new"]  # derived from the local part, as on create
    assert after["homeDirectory"] == before["homeDirectory"]  # the maildir stays
    assert after["userPassword"] and after["mailQuota"] == before["mailQuota"]
    assert _lower(after["shadowAddress"]) == [f"new@{alias_domain}"]
    assert _lower(after["mailForwardingAddress"]) == sorted(["copy@elsewhere.test", new])
    assert _lower(read_entry(root_connection, user_dn(f"friend@{domain}"))["mailForwardingAddress"]) == sorted(
        [new, "x@elsewhere.test"])
    assert _lower(read_entry(root_connection, alias_dn(f"team@{domain}"))["mailForwardingAddress"]) == sorted(
        [new, f"friend@{domain}"])
    listed = read_entry(root_connection, list_dn(f"list@{domain}"))
    assert [m.lower() for m in listed["member"]] == [user_dn(new).lower()]
    assert _lower(listed["listModerator"]) == [new] and _lower(listed["listAllowedUser"]) == [new]
    assert _lower(after["memberOfGroup"]) == [f"list@{domain}"]
    assert new in _lower(read_entry(root_connection, domain_dn(domain))["domainAdmin"])
    assert old not in _lower(read_entry(root_connection, domain_dn(domain))["domainAdmin"])
    assert _lower(read_entry(root_connection, alias_dn(f"fw@{other}"))["mailForwardingAddress"]) == [new]
    # no entry anywhere still names the old address or DN
    assert count_entries(root_connection, f"o=domains,{SUFFIX}",
                         f"(|(mail={old})(shadowAddress={old})(mailForwardingAddress={old})(domainAdmin={old})"
                         f"(listAllowedUser={old})(listModerator={old})(member={user_dn(old)})"
                         f"(shadowAddress=old@{alias_domain}))") == 0
    assert _throttle_accounts(api) == [(new, "outbound")]
    with api.app.services.iredapd_store.transaction() as conn:
        assert conn.execute(sa.select(throttle_tracking.c.account)).scalars().all() == [new]
    # the renamed admin's session goes on under the new name, on the domain it manages
    me = session.get(f"/api/user/{new}")
    assert me.status_code == 200, me.text
    assert me.json["_data"]["managed_domains"] == [domain]
    # the API sees the profile under the new address, and the old one is free again
    assert api.get(f"/api/user/{old}").status_code == 404
    assert api.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201


def test_a_repeated_rename_answers_the_same_and_changes_nothing(api, root_connection, domain):
    old, new = f"a@{domain}", f"b@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 200
    entry = read_entry(root_connection, user_dn(new))
    again = api.post(f"/api/user/{old}/change_email/{new}")
    assert again.status_code == 200 and again.json["_data"] == {"mail": new}
    assert read_entry(root_connection, user_dn(new)) == entry


def test_alias_rename(api, root_connection, domain):
    alias, new = f"sales@{domain}", f"vente@{domain}"
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    api.post(f"/api/alias/{alias}", {"members": f"u@{domain},out@elsewhere.test"})
    api.post(f"/api/alias/all@{domain}", {"members": alias})
    api.put(f"/api/user/u@{domain}", {"forwarding": alias})
    api.post(f"/api/maillist/list@{domain}", {"members": alias})
    assert api.post(f"/api/alias/{alias}/change_email/{new}").status_code == 200
    # Pro's documentation styles this one as a PUT: taken too (here, the repeat of a done rename)
    assert api.put(f"/api/alias/{alias}/change_email/{new}").status_code == 200
    assert read_entry(root_connection, alias_dn(alias)) is None
    entry = read_entry(root_connection, alias_dn(new))
    assert entry["mail"] == [new] and "shadowAddress" not in entry and "uid" not in entry
    assert entry["cn"] == ["vente"]
    assert _lower(entry["mailForwardingAddress"]) == sorted([f"u@{domain}", "out@elsewhere.test"])
    assert _lower(entry["memberOfGroup"]) == [f"list@{domain}"]
    assert _lower(read_entry(root_connection, alias_dn(f"all@{domain}"))["mailForwardingAddress"]) == [new]
    assert _lower(read_entry(root_connection, user_dn(f"u@{domain}"))["mailForwardingAddress"]) == [new]
    assert api.get(f"/api/maillist/list@{domain}").json["_data"]["members"] == [new]
    assert api.get(f"/api/alias/{new}").status_code == 200


def test_list_rename_moves_memberships_and_the_external_entry(api, root_connection, domain):
    mail, new = f"staff@{domain}", f"crew@{domain}"
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    api.post(f"/api/alias/a@{domain}", {"members": "x@elsewhere.test"})
    api.post(f"/api/maillist/{mail}", {"members": f"u@{domain},a@{domain},ext@elsewhere.test",
                                       "moderators": f"u@{domain}", "name": "The Staff"})
    api.post(f"/api/maillist/parent@{domain}", {"members": mail})
    api.post(f"/api/alias/fw@{domain}", {"members": mail})
    assert api.post(f"/api/maillist/{mail}/change_email/{new}").status_code == 200
    assert read_entry(root_connection, list_dn(mail)) is None
    entry = read_entry(root_connection, list_dn(new))
    assert entry["mail"] == [new] and "shadowAddress" not in entry
    assert entry["cn"] == ["The Staff"]  # a chosen name stays
    assert _lower(entry["memberOfGroup"]) == [f"parent@{domain}"]
    for member in (user_dn(f"u@{domain}"), alias_dn(f"a@{domain}")):
        assert _lower(read_entry(root_connection, member)["memberOfGroup"]) == [new]
    assert read_entry(root_connection, externals_dn(mail)) is None
    external = read_entry(root_connection, externals_dn(new))
    assert _lower(external["memberOfGroup"]) == [new] and _lower(external["mail"]) == ["ext@elsewhere.test"]
    assert [m.lower() for m in read_entry(root_connection, list_dn(f"parent@{domain}"))["member"]] == [
        list_dn(new).lower()]
    assert _lower(read_entry(root_connection, alias_dn(f"fw@{domain}"))["mailForwardingAddress"]) == [new]
    data = api.get(f"/api/maillist/{new}").json["_data"]
    assert data["members"] == sorted([f"u@{domain}", f"a@{domain}", "ext@elsewhere.test"])
    assert data["moderators"] == [f"u@{domain}"]
    assert count_entries(root_connection, f"o=domains,{SUFFIX}", f"(memberOfGroup={mail})") == 0


def test_a_disabled_list_is_renamed_with_its_suspended_members(api, root_connection, domain):
    mail, new = f"quiet@{domain}", f"hush@{domain}"
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    api.post(f"/api/maillist/{mail}", {"members": f"u@{domain},ext@elsewhere.test"})
    api.put(f"/api/maillist/{mail}", {"accountStatus": "disabled"})
    assert api.post(f"/api/maillist/{mail}/change_email/{new}").status_code == 200
    assert "memberOfGroup" not in read_entry(root_connection, user_dn(f"u@{domain}"))
    assert api.put(f"/api/maillist/{new}", {"accountStatus": "active"}).status_code == 200
    assert _lower(read_entry(root_connection, user_dn(f"u@{domain}"))["memberOfGroup"]) == [new]
    assert read_entry(root_connection, externals_dn(new))["accountStatus"] == ["active"]


# -- refusals: nothing changes --------------------------------------------------------------------

def _snapshot(root_connection, domain):
    import ldap3 as l3

    _, _, response, _ = root_connection.search(domain_dn(domain), "(objectClass=*)", search_scope=l3.SUBTREE,
                                               attributes=["*"])
    return sorted((r["dn"], sorted((k, sorted(map(str, v))) for k, v in r["raw_attributes"].items()))
                  for r in response if r.get("type") == "searchResEntry")


def test_bad_renames_are_refused_and_change_nothing(api, root_connection, domain, new_domain):
    other = new_domain()
    api.post(f"/api/domain/{other}")
    old = f"old@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    api.post(f"/api/user/taken@{domain}", {"password": PASSWORD, })
    api.put(f"/api/user/taken@{domain}", {"aliases": f"shadow@{domain}"})
    api.post(f"/api/alias/al@{domain}", {"members": "x@elsewhere.test"})
    api.post(f"/api/maillist/li@{domain}", {"members": "x@elsewhere.test"})
    _alias_domain(root_connection, domain, old, f"alias-{domain}")
    # the new address's twin in the alias domain is someone else's alias address
    api.put(f"/api/user/taken@{domain}", {"addAlias": f"twin@alias-{domain}"})
    root_connection.add(f"mail=boss@{domain},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [f"boss@{domain}"], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    snapshot = _snapshot(root_connection, domain)
    cases = [
        # a standalone admin's address: a renamed user admin would manage that admin's domains
        (f"/api/user/{old}/change_email/boss@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/user/{old}/change_email/new@{other}", 400, failed("INVALID_MAIL", param="new_mail")),
        (f"/api/user/{old}/change_email/{old}", 400, failed("INVALID_MAIL", param="new_mail")),
        (f"/api/user/{old}/change_email/not-an-address", 400, failed("INVALID_MAIL", param="new_mail")),
        (f"/api/user/{old}/change_email/taken@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/user/{old}/change_email/shadow@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/user/{old}/change_email/al@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/user/{old}/change_email/li@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/user/{old}/change_email/twin@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/alias/al@{domain}/change_email/taken@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/maillist/li@{domain}/change_email/al@{domain}", 409, failed("ALREADY_EXISTS", param="new_mail")),
        (f"/api/user/ghost@{domain}/change_email/new@{domain}", 404, failed("NO_SUCH_ACCOUNT")),
        (f"/api/alias/{old}/change_email/new@{domain}", 404, failed("NO_SUCH_ACCOUNT")),  # a user, not an alias
        (f"/api/maillist/al@{domain}/change_email/new@{domain}", 404, failed("NO_SUCH_ACCOUNT")),
    ]
    for path, status, body in cases:
        result = api.post(path)
        assert result.status_code == status, (path, result.text)
        assert {k: v for k, v in result.json.items() if k != "detail"} == body, (path, result.text)
    assert _snapshot(root_connection, domain) == snapshot


def test_domain_admins_rename_only_in_their_domains_and_not_global_admins(api, make_app, root_connection, domain,
                                                                           new_domain):
    other = new_domain()
    api.post(f"/api/domain/{other}")
    api.post(f"/api/user/theirs@{other}", {"password": PASSWORD})
    api.post(f"/api/user/boss@{domain}", {"password": PASSWORD})
    root_connection.modify(user_dn(f"boss@{domain}"), {"domainGlobalAdmin": [(ldap3.MODIFY_ADD, ["yes"])]})
    api.post(f"/api/user/mine@{domain}", {"password": PASSWORD})
    admin = f"renamer@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app()).login(admin, "Admin-Pw-9")
    snapshot = _snapshot(root_connection, other), _snapshot(root_connection, domain)
    assert client.post(f"/api/user/theirs@{other}/change_email/new@{other}").json == failed(
        "PERMISSION_DENIED", detail="you do not manage this domain")
    assert client.post(f"/api/user/boss@{domain}/change_email/chief@{domain}").status_code == 403
    assert (_snapshot(root_connection, other), _snapshot(root_connection, domain)) == snapshot
    assert client.post(f"/api/user/mine@{domain}/change_email/ours@{domain}").status_code == 200
    assert read_entry(root_connection, user_dn(f"ours@{domain}")) is not None
    assert api.post(f"/api/user/boss@{domain}/change_email/chief@{domain}").status_code == 200
    assert ApiClient(make_app()).post(f"/api/user/mine@{domain}/change_email/x@{domain}").status_code == 401
    assert api.get(f"/api/user/ours@{domain}/change_email/x@{domain}").status_code == 405


# -- a rename that dies half-way ------------------------------------------------------------------

def _crash(*args, **kwargs):
    raise RuntimeError("worker killed")


@pytest.mark.parametrize("step", ["claim", "references", "move", "throttle", "finish_own_entry"])
def test_a_rename_that_died_half_way_is_finished_by_repeating_it(api, root_connection, domain, new_domain,
                                                                 monkeypatch, step):
    old, other = _world(api, root_connection, domain, new_domain)
    new = f"new@{domain}"
    api.post(f"/api/throttle/{old}/outbound", {"period": "60", "max_msgs": "5"})
    if step == "throttle":
        monkeypatch.setattr(throttle_store, "rename_account", _crash)
    elif step == "references":
        real = renames.rename_references

        def crash_after_some(directory, mapping, old_dn, new_dn):
            # a crash in the middle of the references: half of them written
            writes = []
            real_modify = directory.client.modify

            def modify(dn, changes, **kw):
                if len(writes) == 2:
                    raise RuntimeError("worker killed")
                writes.append(dn)
                return real_modify(dn, changes, **kw)

            monkeypatch.setattr(directory.client, "modify", modify)
            return real(directory, mapping, old_dn, new_dn)

        monkeypatch.setattr(renames, "rename_references", crash_after_some)
    else:
        monkeypatch.setattr(renames, step, _crash)
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    result = api.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    assert read_entry(root_connection, user_dn(old)) is None
    after = read_entry(root_connection, user_dn(new))
    assert after["uid"] == ["new"] and _lower(after["shadowAddress"]) == [f"new@alias-{domain}"]
    assert count_entries(root_connection, f"o=domains,{SUFFIX}",
                         f"(|(mail={old})(shadowAddress={old})(mailForwardingAddress={old})(domainAdmin={old})"
                         f"(listAllowedUser={old})(listModerator={old})(member={user_dn(old)})"
                         f"(shadowAddress=old@alias-{domain}))") == 0
    assert count_entries(root_connection, f"o=domains,{SUFFIX}",
                         f"(|(mailForwardingAddress={new})(listModerator={new})(member={user_dn(new)}))") == 5
    assert _lower(read_entry(root_connection, alias_dn(f"fw@{other}"))["mailForwardingAddress"]) == [new]
    assert _throttle_accounts(api) == [(new, "outbound")]


def test_a_list_rename_that_died_after_the_move_is_finished(api, root_connection, domain, monkeypatch):
    mail, new = f"staff@{domain}", f"crew@{domain}"
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    api.post(f"/api/maillist/{mail}", {"members": f"u@{domain},ext@elsewhere.test"})
    monkeypatch.setattr(renames, "finish_own_entry", _crash)
    assert api.post(f"/api/maillist/{mail}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    assert api.post(f"/api/maillist/{mail}/change_email/{new}").status_code == 200
    assert "shadowAddress" not in read_entry(root_connection, list_dn(new))
    assert _lower(read_entry(root_connection, user_dn(f"u@{domain}"))["memberOfGroup"]) == [new]
    assert _lower(read_entry(root_connection, externals_dn(new))["memberOfGroup"]) == [new]


# -- Dovecot and Postfix after a rename -----------------------------------------------------------

def _expand(postfix, address):
    # Postfix asks virtual_alias_maps, virtual_group_maps, virtual_group_members_maps and
    # catchall_maps in this order (iRedMail's main.cf.ldap) and takes the first answer.
    for map_name in ("virtual_alias_maps", "virtual_group_maps", "virtual_group_members_maps", "catchall_maps"):
        found = postfix.lookup(map_name, address)
        if found:
            return sorted(found)
    return []


def test_dovecot_and_postfix_follow_a_user_rename(api, mailstack, root_connection, domain):
    old, new = f"old@{domain}", f"new@{domain}"
    alias_domain = f"alias-{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    root_connection.modify(domain_dn(domain), {"domainAliasName": [(ldap3.MODIFY_ADD, [alias_domain])],
                                               "enabledService": [(ldap3.MODIFY_ADD, ["domainalias"])]})
    root_connection.modify(user_dn(old), {"shadowAddress": [(ldap3.MODIFY_ADD, [f"old@{alias_domain}"])]})
    api.post(f"/api/alias/team@{domain}", {"members": old})
    api.post(f"/api/maillist/list@{domain}", {"members": old})
    home = read_entry(root_connection, user_dn(old))["homeDirectory"][0]
    dovecot, postfix = mailstack.dovecot, mailstack.postfix
    assert dovecot.auth_ok(old, PASSWORD) and dovecot.auth_ok(f"old@{alias_domain}", PASSWORD)

    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 200

    assert dovecot.auth_ok(new, PASSWORD)
    assert dovecot.auth_ok(f"new@{alias_domain}", PASSWORD)
    assert not dovecot.auth_ok(old, PASSWORD) and not dovecot.auth_ok(f"old@{alias_domain}", PASSWORD)
    found = dovecot.user(new)
    assert found["home"] == home  # the old maildir, under the new login
    assert found["user"] == new
    assert postfix.lookup("virtual_mailbox_maps", new) == [home + "/Maildir/"]
    assert postfix.lookup("virtual_mailbox_maps", f"new@{alias_domain}") == [home + "/Maildir/"]
    assert postfix.lookup("virtual_mailbox_maps", old) == []
    assert postfix.lookup("virtual_mailbox_maps", f"old@{alias_domain}") == []
    assert postfix.lookup("sender_login_maps", new) == [new]
    assert postfix.lookup("sender_login_maps", old) == []
    assert postfix.lookup("virtual_alias_maps", f"team@{domain}") == [new]
    assert postfix.lookup("virtual_group_maps", f"list@{domain}") == [new]


def test_postfix_follows_alias_and_list_renames(api, mailstack, domain):
    postfix = mailstack.postfix
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    api.post(f"/api/alias/sales@{domain}", {"members": f"u@{domain},out@elsewhere.test"})
    api.post(f"/api/maillist/staff@{domain}", {"members": f"u@{domain},ext@elsewhere.test"})
    members = sorted([f"u@{domain}", "out@elsewhere.test"])
    assert _expand(postfix, f"sales@{domain}") == members
    assert api.post(f"/api/alias/sales@{domain}/change_email/vente@{domain}").status_code == 200
    assert sorted(postfix.lookup("virtual_alias_maps", f"vente@{domain}")) == members
    assert _expand(postfix, f"sales@{domain}") == []
    assert api.post(f"/api/maillist/staff@{domain}/change_email/crew@{domain}").status_code == 200
    assert sorted(postfix.lookup("virtual_group_maps", f"crew@{domain}")) == sorted(
        [f"u@{domain}", "ext@elsewhere.test"])
    assert _expand(postfix, f"staff@{domain}") == []


def test_an_account_created_at_the_new_address_during_the_rename_wins(api, root_connection, domain, monkeypatch):
    """slapd's unique overlay never compares a mail with a shadowAddress: an alias created with the
    new address after the rename looked finds the claim only by the rename's second look."""
    old, new = f"old@{domain}", f"new@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    before = read_entry(root_connection, user_dn(old))
    real = renames.claim

    def racing_claim(directory, rename):
        root_connection.add(alias_dn(new), attributes={"objectClass": ["mailAlias"], "mail": [new],
                                                       "accountStatus": ["active"]})
        return real(directory, rename)

    monkeypatch.setattr(renames, "claim", racing_claim)
    result = api.post(f"/api/user/{old}/change_email/{new}")
    assert result.json == failed("ALREADY_EXISTS", param="new_mail", detail=new)
    assert read_entry(root_connection, user_dn(old)) == before
    assert read_entry(root_connection, user_dn(new)) is None


def test_two_renames_of_one_user_at_once_leave_one_rename(api, root_connection, domain, monkeypatch):
    """old@ -> b@ meets old@ -> a@, which moves the entry first: b@'s claim and the references it
    rewrote go to the entry where it is now, and the request says it lost."""
    old = f"old@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    api.post(f"/api/alias/team@{domain}", {"members": old})
    api.post(f"/api/maillist/list@{domain}", {"members": old})
    real = renames.move

    def overtaken(directory, rename):
        if rename.new == f"b@{domain}":
            monkeypatch.setattr(renames, "move", real)
            assert api.post(f"/api/user/{old}/change_email/a@{domain}").status_code == 200
        return real(directory, rename)

    monkeypatch.setattr(renames, "move", overtaken)
    assert api.post(f"/api/user/{old}/change_email/b@{domain}").json["_msg"] == "NO_SUCH_ACCOUNT"
    entry = read_entry(root_connection, user_dn(f"a@{domain}"))
    assert entry["mail"] == [f"a@{domain}"] and "shadowAddress" not in entry
    assert _lower(read_entry(root_connection, alias_dn(f"team@{domain}"))["mailForwardingAddress"]) == [
        f"a@{domain}"]
    assert [m.lower() for m in read_entry(root_connection, list_dn(f"list@{domain}"))["member"]] == [
        user_dn(f"a@{domain}").lower()]
    assert api.get(f"/api/user/b@{domain}").status_code == 404


def test_a_renames_cost_grows_with_the_references_not_with_the_domain(api, domain):
    def trips(result):
        assert result.status_code == 200, result.text
        return int(result.headers["X-Directory-Round-Trips"])

    api.post(f"/api/user/lonely@{domain}", {"password": PASSWORD})
    alone = trips(api.post(f"/api/user/lonely@{domain}/change_email/lonely2@{domain}"))
    for i in range(20):
        api.post(f"/api/user/bystander{i}@{domain}", {"password": PASSWORD})
        api.post(f"/api/alias/other{i}@{domain}", {"members": f"bystander{i}@{domain}"})
    assert trips(api.post(f"/api/user/lonely2@{domain}/change_email/lonely3@{domain}")) == alone
    member = f"member@{domain}"
    api.post(f"/api/user/{member}", {"password": PASSWORD})
    for i in range(3):
        api.post(f"/api/maillist/l{i}@{domain}", {"members": member})
        api.post(f"/api/alias/a{i}@{domain}", {"members": member})
    # one write per list (its member DN) and per alias; the memberOfGroup values move with the entry
    assert trips(api.post(f"/api/user/{member}/change_email/member2@{domain}")) == alone + 6


@pytest.mark.parametrize("after_writes", [1, 3, 5, 6])
def test_a_list_rename_killed_after_some_writes_is_finished_by_repeating_it(api, root_connection, domain,
                                                                            monkeypatch, after_writes):
    mail, new = f"staff@{domain}", f"crew@{domain}"
    members = [f"u{i}@{domain}" for i in range(3)]
    for member in members:
        api.post(f"/api/user/{member}", {"password": PASSWORD})
    api.post(f"/api/maillist/{mail}", {"members": ",".join([*members, "ext@elsewhere.test"])})
    api.post(f"/api/alias/fw@{domain}", {"members": mail})
    ldap = api.app.services.directory.client
    real, writes = ldap.modify, []

    def killed(dn, changes, **kw):
        if len(writes) == after_writes:
            raise RuntimeError("worker killed")
        writes.append(dn)
        return real(dn, changes, **kw)

    monkeypatch.setattr(ldap, "modify", killed)
    assert api.post(f"/api/maillist/{mail}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    assert api.post(f"/api/maillist/{mail}/change_email/{new}").status_code == 200
    assert read_entry(root_connection, list_dn(mail)) is None
    assert "shadowAddress" not in read_entry(root_connection, list_dn(new))
    for member in members:
        assert _lower(read_entry(root_connection, user_dn(member))["memberOfGroup"]) == [new]
    assert _lower(read_entry(root_connection, externals_dn(new))["memberOfGroup"]) == [new]
    assert _lower(read_entry(root_connection, alias_dn(f"fw@{domain}"))["mailForwardingAddress"]) == [new]
    assert api.get(f"/api/maillist/{new}").json["_data"]["members"] == sorted([*members, "ext@elsewhere.test"])


def test_a_standalone_admin_at_the_renamed_address_keeps_its_domains(api, root_connection, domain, new_domain):
    """o=domainAdmins is outside the unique overlay's scope, so a mail user may share a standalone
    admin's address; renaming the user must not take the admin's domainAdmin values along (a
    domain admin could otherwise move a co-admin out of its domains)."""
    other = new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    shared = f"shared@{domain}"
    assert api.post(f"/api/admin/{shared}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/admins/{other}", {"addAdmin": shared}).status_code == 200
    assert api.post(f"/api/user/{shared}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/user/{shared}/change_email/renamed@{domain}").status_code == 200
    assert _lower(read_entry(root_connection, domain_dn(other), ["domainAdmin"])["domainAdmin"]) == [shared]


def test_the_old_address_stays_taken_until_a_rename_that_died_after_the_move_is_finished(
        api, root_connection, domain, monkeypatch):
    """The move keeps the old mail beside the new one until the rest has followed: after a crash
    there, a new account cannot be made at the old address (it would inherit what is still kept
    under it: throttle rows here, mlmmj subscriptions, sessions), and the repeat finishes."""
    old, new = f"old@{domain}", f"new@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    _alias_domain(root_connection, domain, old, f"alias-{domain}")
    api.post(f"/api/throttle/{old}/outbound", {"period": "60", "max_msgs": "5"})
    monkeypatch.setattr(throttle_store, "rename_account", _crash)
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    assert read_entry(root_connection, user_dn(old)) is None  # moved
    for kind in ("user", "alias", "maillist"):
        result = api.post(f"/api/{kind}/{old}", {"password": PASSWORD} if kind == "user" else {})
        assert result.status_code == 409 and result.json["_msg"] == "ALREADY_EXISTS", result.text
    assert _throttle_accounts(api) == [(old, "outbound")]
    result = api.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    moved = read_entry(root_connection, user_dn(new))
    assert moved["mail"] == [new] and moved["uid"] == ["new"]
    assert _lower(moved["shadowAddress"]) == [f"new@alias-{domain}"]
    assert _throttle_accounts(api) == [(new, "outbound")]
    # now the old address is free, and a new account there starts with nothing of the renamed one's
    assert api.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    assert _throttle_accounts(api) == [(new, "outbound")]


def test_a_rename_on_from_a_rename_that_died_after_the_move_takes_both_old_addresses_along(
        api, root_connection, domain, monkeypatch):
    """old -> new dies after the move; the client then renames new -> other: the entry ends with
    other as its only mail, and what was kept under old and new (throttle rows) follows."""
    old, new, other = f"old@{domain}", f"new@{domain}", f"other@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    api.post(f"/api/alias/team@{domain}", {"members": old})
    api.post(f"/api/throttle/{old}/outbound", {"period": "60", "max_msgs": "5"})
    monkeypatch.setattr(throttle_store, "rename_account", _crash)
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    result = api.post(f"/api/user/{new}/change_email/{other}")
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, user_dn(other))
    assert entry["mail"] == [other] and "shadowAddress" not in entry
    assert _throttle_accounts(api) == [(other, "outbound")]
    assert _lower(read_entry(root_connection, alias_dn(f"team@{domain}"))["mailForwardingAddress"]) == [other]
    assert api.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201


@pytest.mark.parametrize("change", ["addAliasDomain", "removeAliasDomain"])
def test_a_rename_racing_an_alias_domain_change_ends_with_the_domains_alias_domains(
        api, root_connection, domain, new_domain, monkeypatch, change):
    """An alias domain added or removed between the rename's read of the domain and its finish:
    the renamed entry ends with its address in each alias domain the domain has then, and none
    in another (an old-local-part address there would stay with it after the old address is a
    new account's; a new one in a removed alias domain would catch mail once that name is
    another domain's)."""
    old, new = f"old@{domain}", f"new@{domain}"
    alias = new_domain()
    if change == "removeAliasDomain":
        assert api.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    assert api.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    real = renames.move

    def racing_move(directory, rename):
        assert api.put(f"/api/domain/{domain}", {change: alias}).status_code == 200
        return real(directory, rename)

    monkeypatch.setattr(renames, "move", racing_move)
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 200
    shadow = _lower(read_entry(root_connection, user_dn(new)).get("shadowAddress"))
    assert shadow == ([f"new@{alias}"] if change == "addAliasDomain" else []), shadow


def test_renaming_a_user_leaves_the_sessions_of_a_standalone_admin_at_its_address_alone(make_app, root_connection,
                                                                                        domain):
    """A standalone admin and a mail user may share an address; the sessions that follow a
    renamed user are its own (by DN), not the standalone admin's, which would otherwise turn into
    sessions of the user (its rights at the next recheck) or end."""
    app = make_app(SESSION_RECHECK_INTERVAL=0)
    api = ApiClient(app).login()
    shared = f"shared@{domain}"
    assert api.post(f"/api/admin/{shared}", {"password": PASSWORD, "isGlobalAdmin": "yes"}).status_code == 201
    standalone = ApiClient(app).login(shared, PASSWORD)
    assert api.post(f"/api/user/{shared}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/user/{shared}/change_email/renamed@{domain}").status_code == 200
    result = standalone.get(f"/api/admin/{shared}")
    assert result.status_code == 200, result.text
    assert standalone.post(f"/api/user/x@{domain}", {"password": PASSWORD}).status_code == 201


def test_deleting_a_user_whose_rename_died_after_the_move_leaves_nothing_under_its_old_address(
        api, root_connection, domain, monkeypatch):
    """The entry keeps its old mail until its rename finishes; deleted instead, everything kept
    under the old address (throttle rows here, references) goes with it, or a new account at the
    old address would inherit it."""
    old, new = f"old@{domain}", f"new@{domain}"
    api.post(f"/api/user/{old}", {"password": PASSWORD})
    api.post(f"/api/throttle/{old}/outbound", {"period": "60", "max_msgs": "5"})
    monkeypatch.setattr(throttle_store, "rename_account", _crash)
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    api.post(f"/api/alias/late@{domain}", {"members": old})  # a reference to the old address meanwhile
    assert api.delete(f"/api/user/{new}").status_code == 200
    assert _throttle_accounts(api) == []
    assert "mailForwardingAddress" not in read_entry(root_connection, alias_dn(f"late@{domain}"))
    assert api.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    assert _throttle_accounts(api) == []


def test_a_repeat_of_a_done_rename_leaves_a_new_account_at_the_old_address_alone(api, root_connection, domain,
                                                                                  new_domain):
    """The rename answered (or its answer was lost and the client retries later); meanwhile the old
    address, free since the rename finished, became another account's: an alias that a user
    forwards to, and a standalone admin administering another domain.  The retry is the 200 of a
    done rename and must not rewrite their references as the renamed user's (the forwarding would
    go to the user; the other domain's domainAdmin would make the user that domain's admin)."""
    from tests.test_access import add_standalone_admin

    old, new, friend = f"a@{domain}", f"b@{domain}", f"friend@{domain}"
    boss, chief, other = f"boss@{domain}", f"chief@{domain}", new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    for mail in (old, friend, boss):
        assert api.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    for before, after in ((old, new), (boss, chief)):
        assert api.post(f"/api/user/{before}/change_email/{after}").status_code == 200
    assert api.post(f"/api/alias/{old}", {"members": "out@elsewhere.test"}).status_code == 201
    assert api.put(f"/api/user/{friend}", {"forwarding": old}).status_code == 200
    add_standalone_admin(root_connection, boss, "Admin-Pw-9", domains=[other])

    for before, after in ((old, new), (boss, chief)):
        again = api.post(f"/api/user/{before}/change_email/{after}")
        assert again.status_code == 200 and again.json["_data"] == {"mail": after}, again.text
    assert _lower(read_entry(root_connection, user_dn(friend))["mailForwardingAddress"]) == [old]
    assert _lower(read_entry(root_connection, domain_dn(other))["domainAdmin"]) == [boss]
    assert _lower(read_entry(root_connection, user_dn(chief))["mail"]) == [chief]


def test_no_standalone_admin_at_the_old_address_of_a_rename_half_way(api, root_connection, domain, new_domain,
                                                                     monkeypatch):
    """A user rename that died after its move keeps the old address as a second ``mail`` (slapd's
    unique overlay keeps it from new accounts under o=domains); a standalone admin lives outside
    that tree and was checked by DN only.  Made there and given another domain, the rename's repeat
    turned its domainAdmin value into the renamed user's: that user administered the domain."""
    old, new, other = f"boss@{domain}", f"chief@{domain}", new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    assert api.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    monkeypatch.setattr(renames, "finish_own_entry", _crash)
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    assert old in _lower(read_entry(root_connection, user_dn(new))["mail"])
    result = api.post(f"/api/admin/{old}", {"password": "Admin-Pw-9x"})
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", result.text
    assert api.post(f"/api/user/{old}/change_email/{new}").status_code == 200  # finished
    assert api.post(f"/api/admin/{old}", {"password": "Admin-Pw-9x"}).status_code == 201  # free now
