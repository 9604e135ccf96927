"""/api/maillist/<mail> and /api/maillists/<domain> (old-style lists) against the real test slapd."""

import threading

import ldap3
import pytest

from tests.conftest import (
    SUFFIX,
    ApiClient,
    _ssha,
    alias_dn,
    count_entries,
    domain_dn,
    externals_dn,
    list_dn,
    read_entry,
    user_dn,
)

BASEDN = f"o=domains,{SUFFIX}"
PASSWORD = "Secret-pw1!"


def list_count(conn, domain):
    return int(read_entry(conn, domain_dn(domain))["domainCurrentListNumber"][0])


def groups_of(conn, dn):
    return sorted((read_entry(conn, dn) or {}).get("memberOfGroup", []))


def members_on_list(conn, mail):
    return sorted(v.lower() for v in read_entry(conn, list_dn(mail)).get("member", []))


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    return name


@pytest.fixture
def accounts(api, domain):
    """Two users and an alias in ``domain``."""
    for name in ("alice", "bob"):
        assert api.post(f"/api/user/{name}@{domain}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/alias/sales@{domain}", {"members": "boss@x.test"}).status_code == 201
    return [f"alice@{domain}", f"bob@{domain}", f"sales@{domain}"]


def test_create_writes_what_iredmail_writes(api, root_connection, domain, accounts):
    mail = f"team@{domain}"
    members = accounts + ["carol@external.test", "dave@external.test"]
    result = api.post(f"/api/maillist/{mail}", {"cn": "The team", "members": ",".join(members)})
    assert result.status_code == 201, result.text
    entry = read_entry(root_connection, list_dn(mail))
    assert entry["objectClass"] == ["mailList"]
    assert entry["mail"] == [mail] and entry["cn"] == ["The team"]
    assert entry["accountStatus"] == ["active"]
    assert sorted(entry["enabledService"]) == ["deliver", "mail"]
    assert entry["accessPolicy"] == ["public"]
    for absent in ("mtaTransport", "mailingListID", "domainStatus", "listModerator", "listAllowedUser"):
        assert absent not in entry, absent
    # internal members: memberOfGroup on their own entry and their DN on the list
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == [mail]
    assert groups_of(root_connection, user_dn(f"bob@{domain}")) == [mail]
    assert groups_of(root_connection, alias_dn(f"sales@{domain}")) == [mail]
    assert members_on_list(root_connection, mail) == sorted(
        [user_dn(f"alice@{domain}").lower(), user_dn(f"bob@{domain}").lower(), alias_dn(f"sales@{domain}").lower()])
    # external members: one mailExternalUser entry for the list
    external = read_entry(root_connection, externals_dn(mail))
    assert external["objectClass"] == ["mailExternalUser"]
    assert external["memberOfGroup"] == [mail]
    assert sorted(external["mail"]) == ["carol@external.test", "dave@external.test"]
    assert external["accountStatus"] == ["active"]
    assert sorted(external["enabledService"]) == ["deliver", "mail"]
    assert list_count(root_connection, domain) == 1


def test_create_without_members_and_defaults(api, root_connection, domain):
    assert api.post(f"/api/maillist/Empty@{domain.upper()}").status_code == 201
    entry = read_entry(root_connection, list_dn(f"empty@{domain}"))
    assert entry["cn"] == ["empty"] and entry["accessPolicy"] == ["public"] and "member" not in entry
    assert read_entry(root_connection, externals_dn(f"empty@{domain}")) is None


@pytest.mark.parametrize("given,stored", [
    ("public", "public"), ("Domain", "domain"), ("SUBDOMAIN", "subdomain"), ("membersOnly", "membersonly"),
    ("moderatorsonly", "moderatorsonly"), ("MembersAndModeratorsOnly", "membersandmoderatorsonly"),
    ("allowedonly", "moderatorsonly"),
])
def test_access_policies_are_stored_lower_case(api, root_connection, domain, given, stored):
    assert api.post(f"/api/maillist/p@{domain}", {"accessPolicy": given}).status_code == 201
    assert read_entry(root_connection, list_dn(f"p@{domain}"))["accessPolicy"] == [stored]
    api.put(f"/api/maillist/p@{domain}", {"accessPolicy": "public"})
    assert api.put(f"/api/maillist/p@{domain}", {"accessPolicy": given}).status_code == 200
    assert read_entry(root_connection, list_dn(f"p@{domain}"))["accessPolicy"] == [stored]


def test_create_in_a_disabled_domain_marks_list_and_externals(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"accountStatus": "disabled"})
    assert api.post(f"/api/maillist/off@{domain}", {"members": "x@ext.test"}).status_code == 201
    assert read_entry(root_connection, list_dn(f"off@{domain}"))["domainStatus"] == ["disabled"]
    assert read_entry(root_connection, externals_dn(f"off@{domain}"))["domainStatus"] == ["disabled"]


@pytest.mark.parametrize("form,code,param", [
    ({"members": "not-an-address"}, "INVALID_MAIL", "members"),
    ({"members": "{self}"}, "INVALID_MAIL", "members"),
    ({"members": "alice@{domain},ghost@{domain}"}, "NO_SUCH_ACCOUNT", "members"),
    ({"accessPolicy": "open"}, "INVALID_ACCESS_POLICY", "accessPolicy"),
    ({"accessPolicy": ""}, "INVALID_ACCESS_POLICY", "accessPolicy"),
    ({"moderators": "nope"}, "INVALID_MAIL", "moderators"),
])
def test_bad_create_parameters_create_nothing(api, root_connection, domain, accounts, form, code, param):
    mail = f"eve@{domain}"
    form = {k: v.format(self=mail, domain=domain) for k, v in form.items()}
    result = api.post(f"/api/maillist/{mail}", form)
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == param
    assert read_entry(root_connection, list_dn(mail)) is None
    assert read_entry(root_connection, externals_dn(mail)) is None
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == []
    assert list_count(root_connection, domain) == 0


def test_address_taken_is_409_and_changes_nothing(api, root_connection, domain, accounts):
    api.put(f"/api/user/alice@{domain}", {"addAlias": f"ali@{domain}"})
    api.post(f"/api/maillist/team@{domain}")
    for taken in (f"alice@{domain}", f"ali@{domain}", f"sales@{domain}", f"team@{domain}"):
        result = api.post(f"/api/maillist/{taken}", {"members": f"bob@{domain},x@ext.test"})
        assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", taken
    assert groups_of(root_connection, user_dn(f"bob@{domain}")) == []
    assert list_count(root_connection, domain) == 1


def test_members_by_alias_address_nested_lists_and_alias_domains(api, root_connection, domain, accounts):
    root_connection.modify(domain_dn(domain), {"domainAliasName": [(ldap3.MODIFY_ADD, [f"alias-{domain}"])]})
    api.put(f"/api/user/alice@{domain}", {"addAlias": f"ali@{domain}"})
    api.post(f"/api/maillist/inner@{domain}")
    result = api.post(f"/api/maillist/outer@{domain}",
                      {"members": f"ali@{domain},inner@{domain},someone@alias-{domain}"})
    assert result.status_code == 201, result.text
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == [f"outer@{domain}"]
    assert groups_of(root_connection, list_dn(f"inner@{domain}")) == [f"outer@{domain}"]
    # an address in an alias domain is left to Postfix, as an external member
    assert read_entry(root_connection, externals_dn(f"outer@{domain}"))["mail"] == [f"someone@alias-{domain}"]
    assert api.get(f"/api/maillist/outer@{domain}").json["_data"]["members"] == sorted(
        [f"alice@{domain}", f"inner@{domain}", f"someone@alias-{domain}"])
    # removing by the alias address finds the account
    api.put(f"/api/maillist/outer@{domain}", {"removeMember": f"ali@{domain}"})
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == []


def test_add_and_remove_members(api, root_connection, domain, accounts):
    mail = f"crew@{domain}"
    api.post(f"/api/maillist/{mail}", {"members": f"alice@{domain}"})
    assert read_entry(root_connection, externals_dn(mail)) is None
    result = api.put(f"/api/maillist/{mail}", {"addMember": f"bob@{domain},x@ext.test,Alice@{domain}"})
    assert result.status_code == 200, result.text
    assert groups_of(root_connection, user_dn(f"bob@{domain}")) == [mail]
    assert read_entry(root_connection, externals_dn(mail))["mail"] == ["x@ext.test"]  # made by the first
    # adding what is there and removing what is not changes nothing and is no error
    snapshot = [read_entry(root_connection, dn) for dn in (list_dn(mail), externals_dn(mail),
                                                          user_dn(f"alice@{domain}"), user_dn(f"bob@{domain}"))]
    result = api.put(f"/api/maillist/{mail}", {"addMember": f"bob@{domain},X@ext.test",
                                               "removeMember": f"sales@{domain},nobody@ext.test"})
    assert result.status_code == 200, result.text
    assert [read_entry(root_connection, dn) for dn in (list_dn(mail), externals_dn(mail), user_dn(f"alice@{domain}"),
                                                       user_dn(f"bob@{domain}"))] == snapshot
    api.put(f"/api/maillist/{mail}", {"removeMember": f"alice@{domain},x@ext.test"})
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == []
    assert members_on_list(root_connection, mail) == [user_dn(f"bob@{domain}").lower()]
    assert read_entry(root_connection, externals_dn(mail)) is None  # deleted with the last
    assert api.get(f"/api/maillist/{mail}").json["_data"]["members"] == [f"bob@{domain}"]


def test_members_reset(api, root_connection, domain, accounts):
    mail = f"reset@{domain}"
    api.post(f"/api/maillist/{mail}", {"members": f"alice@{domain},bob@{domain},x@ext.test,y@ext.test"})
    api.put(f"/api/maillist/{mail}", {"members": f"bob@{domain},sales@{domain},y@ext.test,z@ext.test"})
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == []
    assert groups_of(root_connection, alias_dn(f"sales@{domain}")) == [mail]
    assert sorted(read_entry(root_connection, externals_dn(mail))["mail"]) == ["y@ext.test", "z@ext.test"]
    assert api.get(f"/api/maillist/{mail}").json["_data"]["members"] == sorted(
        [f"bob@{domain}", f"sales@{domain}", "y@ext.test", "z@ext.test"])
    api.put(f"/api/maillist/{mail}", {"members": ""})
    assert "member" not in read_entry(root_connection, list_dn(mail))
    assert groups_of(root_connection, user_dn(f"bob@{domain}")) == []
    assert read_entry(root_connection, externals_dn(mail)) is None


def test_moderators(api, root_connection, domain):
    mail = f"mod@{domain}"
    api.post(f"/api/maillist/{mail}", {"moderators": "m1@x.test", "accessPolicy": "moderatorsOnly"})
    entry = read_entry(root_connection, list_dn(mail))
    assert entry["listModerator"] == ["m1@x.test"] and entry["listAllowedUser"] == ["m1@x.test"]
    api.put(f"/api/maillist/{mail}", {"addModerator": "m2@x.test,M1@x.test"})
    entry = read_entry(root_connection, list_dn(mail))
    assert sorted(entry["listModerator"]) == sorted(entry["listAllowedUser"]) == ["m1@x.test", "m2@x.test"]
    api.put(f"/api/maillist/{mail}", {"removeModerator": "m1@x.test,none@x.test"})
    assert api.get(f"/api/maillist/{mail}").json["_data"]["moderators"] == ["m2@x.test"]
    api.put(f"/api/maillist/{mail}", {"moderators": ""})
    entry = read_entry(root_connection, list_dn(mail))
    assert "listModerator" not in entry and "listAllowedUser" not in entry


@pytest.mark.parametrize("form,code,param", [
    ({"members": "a@x.test", "addMember": "b@x.test"}, "CONFLICTING_PARAMETERS", "addMember"),
    ({"moderators": "a@x.test", "removeModerator": "b@x.test"}, "CONFLICTING_PARAMETERS", "removeModerator"),
    ({"addMember": "bob@{domain}", "removeMember": "bob@{domain}"}, "CONFLICTING_PARAMETERS", "removeMember"),
    ({"addMember": "bob@{domain},ghost@{domain}"}, "NO_SUCH_ACCOUNT", "addMember"),
    ({"members": "x@ext.test,{self}"}, "INVALID_MAIL", "members"),
    ({"removeMember": "bad address"}, "INVALID_MAIL", "removeMember"),
    ({"accessPolicy": "nobody"}, "INVALID_ACCESS_POLICY", "accessPolicy"),
    ({"accountStatus": "off"}, "INVALID_ACCOUNT_STATUS", "accountStatus"),
])
def test_bad_update_parameters_change_nothing(api, root_connection, domain, accounts, form, code, param):
    mail = f"kim@{domain}"
    api.post(f"/api/maillist/{mail}", {"members": f"alice@{domain},x@ext.test"})
    dns = (list_dn(mail), externals_dn(mail), user_dn(f"alice@{domain}"), user_dn(f"bob@{domain}"))
    before = [read_entry(root_connection, dn) for dn in dns]
    form = {k: v.format(self=mail, domain=domain) for k, v in form.items()}
    result = api.put(f"/api/maillist/{mail}", {"cn": "changed", **form})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == param
    assert [read_entry(root_connection, dn) for dn in dns] == before


def test_get_profile_members_and_moderators(api, domain, accounts):
    mail = f"info@{domain}"
    api.post(f"/api/maillist/{mail}", {"name": "Info", "members": f"bob@{domain},z@ext.test,alice@{domain}",
                                       "moderators": "boss@x.test"})
    data = api.get(f"/api/maillist/{mail.upper()}").json["_data"]
    assert data["mail"] == [mail] and data["cn"] == ["Info"] and data["accessPolicy"] == ["public"]
    assert data["members"] == [f"alice@{domain}", f"bob@{domain}", "z@ext.test"]
    assert data["moderators"] == ["boss@x.test"]
    result = api.get(f"/api/maillist/nobody@{domain}")
    assert result.status_code == 404 and result.json["msg"] == "NO_SUCH_ACCOUNT"


def test_lists_made_by_other_tools(api, root_connection, domain, accounts):
    """memberOfGroup only (no member DNs), as the iRedMail how-to makes them; mlmmj lists are not ours."""
    mail = f"legacy@{domain}"
    root_connection.add(list_dn(mail), attributes={"objectClass": ["mailList"], "mail": [mail],
                                                   "accountStatus": ["active"], "enabledService": ["mail", "deliver"]})
    root_connection.modify(user_dn(f"alice@{domain}"), {"memberOfGroup": [(ldap3.MODIFY_ADD, [mail])]})
    root_connection.add(externals_dn(mail), attributes={"objectClass": ["mailExternalUser"], "memberOfGroup": [mail],
                                                        "mail": ["old@ext.test"], "accountStatus": ["active"]})
    assert api.get(f"/api/maillist/{mail}").json["_data"]["members"] == [f"alice@{domain}", "old@ext.test"]
    api.put(f"/api/maillist/{mail}", {"addMember": f"bob@{domain}"})
    assert members_on_list(root_connection, mail) == sorted(
        [user_dn(f"alice@{domain}").lower(), user_dn(f"bob@{domain}").lower()])
    assert read_entry(root_connection, externals_dn(mail))["mail"] == ["old@ext.test"]
    mlmmj = f"news@{domain}"
    root_connection.add(list_dn(mlmmj), attributes={
        "objectClass": ["mailList"], "mail": [mlmmj], "accountStatus": ["active"],
        "enabledService": ["mail", "deliver", "mlmmj"], "mtaTransport": [f"mlmmj:{domain}/news"]})
    for method in ("GET", "PUT", "DELETE"):
        assert api.request(method, f"/api/maillist/{mlmmj}").status_code == 404, method
    assert api.post(f"/api/maillist/{mlmmj}").status_code == 409
    assert sorted(api.get(f"/api/maillists/{domain}", params={"email_only": "yes"}).json["_data"]) == [mail]


def test_disabling_suspends_memberships_and_enabling_restores_them(api, root_connection, domain, accounts):
    mail = f"pause@{domain}"
    api.post(f"/api/maillist/{mail}", {"members": f"alice@{domain},sales@{domain},x@ext.test"})
    assert api.put(f"/api/maillist/{mail}", {"accountStatus": "disabled"}).status_code == 200
    assert read_entry(root_connection, list_dn(mail))["accountStatus"] == ["disabled"]
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == []
    assert groups_of(root_connection, alias_dn(f"sales@{domain}")) == []
    assert read_entry(root_connection, externals_dn(mail))["accountStatus"] == ["disabled"]
    members = [f"alice@{domain}", f"sales@{domain}", "x@ext.test"]
    assert api.get(f"/api/maillist/{mail}").json["_data"]["members"] == members
    # membership changes while disabled are kept, and take effect on enabling
    api.put(f"/api/maillist/{mail}", {"addMember": f"bob@{domain},y@ext.test", "removeMember": "x@ext.test"})
    assert groups_of(root_connection, user_dn(f"bob@{domain}")) == []
    assert api.put(f"/api/maillist/{mail}", {"accountStatus": "active"}).status_code == 200
    for member in (user_dn(f"alice@{domain}"), user_dn(f"bob@{domain}"), alias_dn(f"sales@{domain}")):
        assert groups_of(root_connection, member) == [mail], member
    external = read_entry(root_connection, externals_dn(mail))
    assert external["accountStatus"] == ["active"] and external["mail"] == ["y@ext.test"]
    assert api.get(f"/api/maillists/{domain}", params={"email_only": "yes", "disabled_only": "yes"}
                   ).json["_data"] == []


def test_a_half_done_request_is_finished_by_repeating_it(api, root_connection, domain, accounts):
    mail = f"crash@{domain}"
    api.post(f"/api/maillist/{mail}")
    # the list's member DN was written, the member's memberOfGroup was not
    root_connection.modify(list_dn(mail), {"member": [(ldap3.MODIFY_ADD, [user_dn(f"bob@{domain}")])]})
    assert api.put(f"/api/maillist/{mail}", {"addMember": f"bob@{domain}"}).status_code == 200
    assert groups_of(root_connection, user_dn(f"bob@{domain}")) == [mail]
    # a DN left by an account deleted behind our back is dropped on the next membership change
    root_connection.modify(list_dn(mail), {"member": [(ldap3.MODIFY_ADD, [user_dn(f"gone@{domain}")])]})
    api.put(f"/api/maillist/{mail}", {"addMember": f"alice@{domain}"})
    assert members_on_list(root_connection, mail) == sorted(
        [user_dn(f"alice@{domain}").lower(), user_dn(f"bob@{domain}").lower()])


def test_delete_removes_memberships_externals_and_references(api, root_connection, domain, accounts):
    mail = f"bye@{domain}"
    api.post(f"/api/maillist/{mail}", {"members": f"alice@{domain},sales@{domain},x@ext.test"})
    api.post(f"/api/maillist/outer@{domain}", {"members": f"{mail},bob@{domain}"})
    api.post(f"/api/alias/fwd@{domain}", {"members": f"{mail},keep@x.test"})
    api.put(f"/api/user/alice@{domain}", {"addAlias": f"ali@{domain}"})
    assert groups_of(root_connection, list_dn(mail)) == [f"outer@{domain}"]
    result = api.delete(f"/api/maillist/{mail}", params={"archive": "yes"})
    assert result.status_code == 200, result.text
    assert read_entry(root_connection, list_dn(mail)) is None
    assert read_entry(root_connection, externals_dn(mail)) is None
    assert groups_of(root_connection, user_dn(f"alice@{domain}")) == []
    assert groups_of(root_connection, alias_dn(f"sales@{domain}")) == []
    assert members_on_list(root_connection, f"outer@{domain}") == [user_dn(f"bob@{domain}").lower()]
    assert read_entry(root_connection, alias_dn(f"fwd@{domain}"))["mailForwardingAddress"] == ["keep@x.test"]
    assert list_count(root_connection, domain) == 1
    assert api.delete(f"/api/maillist/{mail}").json["msg"] == "NO_SUCH_ACCOUNT"
    assert list_count(root_connection, domain) == 1


def test_deleting_a_user_or_alias_takes_it_out_of_every_list(api, root_connection, domain, accounts):
    api.put(f"/api/user/alice@{domain}", {"addAlias": f"ali@{domain}"})
    api.post(f"/api/maillist/one@{domain}", {"members": f"alice@{domain},bob@{domain},sales@{domain}"})
    api.post(f"/api/maillist/two@{domain}", {"members": f"alice@{domain},x@ext.test"})
    # an address that was external when added (say, before its domain moved here)
    root_connection.modify(externals_dn(f"two@{domain}"), {"mail": [(ldap3.MODIFY_ADD, [f"ali@{domain}"])]})
    assert api.delete(f"/api/user/alice@{domain}").status_code == 200
    assert api.delete(f"/api/alias/sales@{domain}").status_code == 200
    assert api.get(f"/api/maillist/one@{domain}").json["_data"]["members"] == [f"bob@{domain}"]
    assert members_on_list(root_connection, f"one@{domain}") == [user_dn(f"bob@{domain}").lower()]
    assert api.get(f"/api/maillist/two@{domain}").json["_data"]["members"] == ["x@ext.test"]
    assert "member" not in read_entry(root_connection, list_dn(f"two@{domain}"))
    api.put(f"/api/maillist/two@{domain}", {"removeMember": "x@ext.test"})
    api.post(f"/api/user/solo@{domain}", {"password": PASSWORD})
    root_connection.add(externals_dn(f"two@{domain}"), attributes={
        "objectClass": ["mailExternalUser"], "memberOfGroup": [f"two@{domain}"], "mail": [f"solo@{domain}"]})
    api.delete(f"/api/user/solo@{domain}")
    assert read_entry(root_connection, externals_dn(f"two@{domain}")) is None  # its last address went


def test_number_of_lists_limit_and_parallel_creates(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"numberOfLists": "4"})
    assert api.post(f"/api/maillist/first@{domain}").status_code == 201
    app = make_app()
    clients = [ApiClient(app).login() for _ in range(5)]
    results, barrier = [None] * 20, threading.Barrier(20)

    def run(i):
        barrier.wait()
        results[i] = clients[i % 5].post(f"/api/maillist/p{i}@{domain}", {"members": "x@ext.test"}).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(201) == 3 and set(results) == {201, 403}, results
    assert count_entries(root_connection, f"ou=Groups,{domain_dn(domain)}", "(objectClass=mailList)") == 4
    # a refused list leaves no external entry behind
    assert count_entries(root_connection, f"ou=Externals,{domain_dn(domain)}", "(objectClass=mailExternalUser)") == 3
    assert list_count(root_connection, domain) == 4
    result = api.post(f"/api/maillist/late@{domain}")
    assert result.status_code == 403 and result.json["msg"] == "EXCEEDED_DOMAIN_ACCOUNT_LIMIT"
    api.delete(f"/api/maillist/first@{domain}")
    assert api.post(f"/api/maillist/late@{domain}").status_code == 201
    assert list_count(root_connection, domain) == 4


def test_listing(api, domain):
    for name in ("l1", "l2", "l3"):
        api.post(f"/api/maillist/{name}@{domain}")
    api.put(f"/api/maillist/l3@{domain}", {"accountStatus": "disabled"})
    assert sorted(api.get(f"/api/maillists/{domain}", params={"email_only": "yes"}).json["_data"]) == [
        f"l1@{domain}", f"l2@{domain}", f"l3@{domain}"]
    assert api.get(f"/api/maillists/{domain}", params={"disabled_only": "yes", "email_only": "yes"}).json == {
        "_success": True, "success": True, "_data": [f"l3@{domain}"]}
    profiles = api.get(f"/api/maillists/{domain}").json["_data"]
    assert sorted(p["mail"][0] for p in profiles) == [f"l1@{domain}", f"l2@{domain}", f"l3@{domain}"]


def test_listing_an_empty_domain(api, domain):
    assert api.get(f"/api/maillists/{domain}").json == {"_success": True, "success": True, "_data": []}


def test_domain_admin_scope(api, make_app, root_connection, domain, new_domain):
    other = new_domain()
    api.post(f"/api/domain/{other}")
    api.post(f"/api/maillist/theirs@{other}")
    api.post(f"/api/user/stranger@{other}", {"password": PASSWORD})
    api.post(f"/api/user/local@{domain}", {"password": PASSWORD})
    admin = f"listadmin@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app()).login(admin, "Admin-Pw-9")
    assert client.post(f"/api/maillist/mine@{domain}", {"members": f"local@{domain},x@ext.test"}).status_code == 201
    # an account of a domain it does not manage is refused: its entry is not written
    for result in (client.post(f"/api/maillist/mine2@{domain}", {"members": f"stranger@{other}"}),
                   client.put(f"/api/maillist/mine@{domain}", {"addMember": f"stranger@{other}"})):
        assert result.status_code == 403 and result.json["param"] in ("members", "addMember"), result.text
    assert read_entry(root_connection, list_dn(f"mine2@{domain}")) is None
    assert groups_of(root_connection, user_dn(f"stranger@{other}")) == []
    for result in (client.post(f"/api/maillist/x@{other}"), client.get(f"/api/maillist/theirs@{other}"),
                   client.put(f"/api/maillist/theirs@{other}", {"cn": "x"}),
                   client.delete(f"/api/maillist/theirs@{other}"), client.get(f"/api/maillists/{other}")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert read_entry(root_connection, list_dn(f"theirs@{other}"))["cn"] == ["theirs"]
    # a global admin may
    assert api.put(f"/api/maillist/mine@{domain}", {"addMember": f"stranger@{other}"}).status_code == 200
    assert groups_of(root_connection, user_dn(f"stranger@{other}")) == [f"mine@{domain}"]
    assert read_entry(root_connection, externals_dn(f"mine@{domain}"))["mail"] == ["x@ext.test"]
    assert api.get(f"/api/maillist/mine@{domain}").json["_data"]["members"] == sorted(
        [f"local@{domain}", f"stranger@{other}", "x@ext.test"])


def test_round_trips(api, domain, accounts):
    # domain read, one search (address + members), counter, add, the search for an alias address
    # that raced the add, 2 memberOfGroup writes, external entry, the domain's status read again
    result = api.post(f"/api/maillist/rt@{domain}", {"members": f"alice@{domain},bob@{domain},x@ext.test"})
    assert result.status_code == 201 and result.headers["X-Directory-Round-Trips"] == "9"
    # domain read, list read, membership search, new-member search, memberOfGroup write, list modify
    result = api.put(f"/api/maillist/rt@{domain}", {"addMember": f"sales@{domain}", "cn": "RT"})
    assert result.status_code == 200 and result.headers["X-Directory-Round-Trips"] == "6"
    # no membership change: domain read, list read, list modify
    result = api.put(f"/api/maillist/rt@{domain}", {"accessPolicy": "domain", "addModerator": "m@x.test"})
    assert result.status_code == 200 and result.headers["X-Directory-Round-Trips"] == "3"
    # domain read, list read, membership search
    result = api.get(f"/api/maillist/rt@{domain}")
    assert result.status_code == 200 and result.headers["X-Directory-Round-Trips"] == "3"


def test_addresses_with_dn_special_characters(api, root_connection, domain):
    """'+' and '=' are escaped in DNs; the list's member values must still match."""
    member = f"a+b=c@{domain}"
    assert api.post(f"/api/user/{member}", {"password": PASSWORD}).status_code == 201
    mail = f"odd+list@{domain}"
    assert api.post(f"/api/maillist/{mail}", {"members": f"{member},x+y@ext.test"}).status_code == 201
    assert api.get(f"/api/maillist/{mail}").json["_data"]["members"] == [member, "x+y@ext.test"]
    api.put(f"/api/maillist/{mail}", {"accountStatus": "disabled"})
    assert api.get(f"/api/maillist/{mail}").json["_data"]["members"] == [member, "x+y@ext.test"]
    api.put(f"/api/maillist/{mail}", {"accountStatus": "active"})
    user_entry = f"mail=a\\+b\\=c@{domain},ou=Users,{domain_dn(domain)}"
    assert groups_of(root_connection, user_entry) == [mail]
    assert api.put(f"/api/maillist/{mail}", {"addMember": member}).status_code == 200
    assert len(read_entry(root_connection, f"mail=odd\\+list@{domain},ou=Groups,{domain_dn(domain)}")["member"]) == 1
    assert api.delete(f"/api/user/{member}").status_code == 200
    assert "member" not in read_entry(root_connection, f"mail=odd\\+list@{domain},ou=Groups,{domain_dn(domain)}")
    assert api.delete(f"/api/maillist/{mail}").status_code == 200
    assert read_entry(root_connection, f"memberOfGroup=odd\\+list@{domain},ou=Externals,{domain_dn(domain)}") is None


# -- a domain admin cannot probe other domains through members (issue 10, item 8) ---------------

def test_members_outside_a_domain_admins_domains_answer_alike(api, make_app, root_connection, domain, new_domain):
    from tests.test_aliases import _domain_admin, _same_answer

    client, other = _domain_admin(api, make_app, root_connection, domain, new_domain)
    api.post(f"/api/maillist/theirs@{other}")
    # Another hosted domain's addresses are refused alike, whether an account has them or not
    # (they cannot be external members: the unique overlay); an unhosted address is external.
    hosted = [f"stranger@{other}", f"theirs@{other}", f"ghost@{other}"]
    created = _same_answer([client.post(f"/api/maillist/p{i}@{domain}", {"members": address})
                            for i, address in enumerate(hosted)])
    assert created.status_code == 403 and created.json["msg"] == "PERMISSION_DENIED"
    for i in range(len(hosted)):
        assert read_entry(root_connection, list_dn(f"p{i}@{domain}")) is None
    assert groups_of(root_connection, user_dn(f"stranger@{other}")) == []
    assert groups_of(root_connection, list_dn(f"theirs@{other}")) == []
    assert client.post(f"/api/maillist/q@{domain}").status_code == 201
    updated = _same_answer([client.put(f"/api/maillist/q@{domain}", {"addMember": address}) for address in hosted])
    assert updated.status_code == 403
    unhosted = "someone@unhosted-elsewhere.test"
    assert client.put(f"/api/maillist/q@{domain}", {"addMember": unhosted}).status_code == 200
    assert api.get(f"/api/maillist/q@{domain}").json["_data"]["members"] == [unhosted]
    result = client.post(f"/api/maillist/p9@{domain}", {"members": f"ghost@{domain}"})
    assert result.status_code == 400 and result.json["msg"] == "NO_SUCH_ACCOUNT"
    # a global admin's answers are as before: accounts elsewhere are internal members, a missing
    # account in a hosted domain is refused
    assert api.post(f"/api/maillist/g1@{domain}", {"members": f"stranger@{other}"}).status_code == 201
    assert groups_of(root_connection, user_dn(f"stranger@{other}")) == [f"g1@{domain}"]
    result = api.post(f"/api/maillist/g2@{domain}", {"members": f"ghost@{other}"})
    assert result.status_code == 400 and result.json["msg"] == "NO_SUCH_ACCOUNT"
    assert api.post(f"/api/maillist/g3@{domain}", {"members": "x@unhosted-elsewhere.test"}).status_code == 201
    assert read_entry(root_connection, externals_dn(f"g3@{domain}"))["mail"] == ["x@unhosted-elsewhere.test"]
