"""/api/alias/<mail> and /api/aliases/<domain> against the real test slapd."""

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


def alias_count(conn, domain):
    return int(read_entry(conn, domain_dn(domain))["domainCurrentAliasNumber"][0])


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    return name


def test_create_writes_the_entry_iredmail_writes(api, root_connection, domain):
    api.post(f"/api/user/alice@{domain}", {"password": PASSWORD})
    mail = f"info@{domain}"
    result = api.post(f"/api/alias/{mail}", {"cn": "Info desk", "members": f"Alice@{domain}, bob@elsewhere.test"})
    assert result.status_code == 201, result.text
    entry = read_entry(root_connection, alias_dn(mail))
    assert entry["objectClass"] == ["mailAlias"]
    assert entry["mail"] == [mail]
    assert entry["accountStatus"] == ["active"]
    assert entry["cn"] == ["Info desk"]
    assert sorted(entry["enabledService"]) == ["deliver", "mail"]
    assert sorted(entry["mailForwardingAddress"]) == sorted([f"alice@{domain}", "bob@elsewhere.test"])
    assert "accessPolicy" not in entry and "domainStatus" not in entry
    assert alias_count(root_connection, domain) == 1


def test_create_defaults_and_newer_spellings(api, root_connection, domain):
    assert api.post(f"/api/alias/Sales@{domain.upper()}", {"name": "Sales", "accessPolicy": "MembersOnly"}
                    ).status_code == 201
    entry = read_entry(root_connection, alias_dn(f"sales@{domain}"))
    assert entry["cn"] == ["Sales"] and entry["accessPolicy"] == ["membersonly"]
    assert "mailForwardingAddress" not in entry
    api.post(f"/api/alias/plain@{domain}", json={"accessPolicy": "allowedonly", "members": ["x@y.test"]})
    entry = read_entry(root_connection, alias_dn(f"plain@{domain}"))
    assert entry["cn"] == ["plain"] and entry["accessPolicy"] == ["moderatorsonly"]
    assert entry["mailForwardingAddress"] == ["x@y.test"]


def test_create_in_a_disabled_domain_marks_the_alias(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"accountStatus": "disabled"})
    assert api.post(f"/api/alias/off@{domain}").status_code == 201
    assert read_entry(root_connection, alias_dn(f"off@{domain}"))["domainStatus"] == ["disabled"]


@pytest.mark.parametrize("form,code,param", [
    ({"members": "not-an-address"}, "INVALID_MAIL", "members"),
    ({"members": "ok@x.test,bad@@x.test"}, "INVALID_MAIL", "members"),
    ({"members": "{self}"}, "INVALID_MAIL", "members"),
    ({"members": "ghost@{domain}"}, "NO_SUCH_ACCOUNT", "members"),
    ({"accessPolicy": "everyone"}, "INVALID_ACCESS_POLICY", "accessPolicy"),
    ({"accessPolicy": ""}, "INVALID_ACCESS_POLICY", "accessPolicy"),
    ({"name": "x\x01y"}, "INVALID_PARAMETER", "name"),
    ({"cn": "a", "name": "b"}, "CONFLICTING_PARAMETERS", "name"),
])
def test_bad_create_parameters_create_nothing(api, root_connection, domain, form, code, param):
    mail = f"eve@{domain}"
    form = {k: v.format(self=mail, domain=domain) for k, v in form.items()}
    result = api.post(f"/api/alias/{mail}", form)
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == param
    assert read_entry(root_connection, alias_dn(mail)) is None
    assert alias_count(root_connection, domain) == 0


def test_address_taken_by_any_account_is_409(api, root_connection, domain):
    api.post(f"/api/user/frank@{domain}", {"password": PASSWORD})
    api.put(f"/api/user/frank@{domain}", {"addAlias": f"boss@{domain}"})
    api.post(f"/api/maillist/team@{domain}")
    api.post(f"/api/alias/help@{domain}")
    for taken in (f"frank@{domain}", f"boss@{domain}", f"team@{domain}", f"help@{domain}"):
        result = api.post(f"/api/alias/{taken}")
        assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", taken
    assert "mailForwardingAddress" not in read_entry(root_connection, alias_dn(f"help@{domain}"))
    assert alias_count(root_connection, domain) == 1
    # and the other way round: users and lists cannot take an alias's address
    assert api.post(f"/api/user/help@{domain}", {"password": PASSWORD}).status_code == 409
    assert api.post(f"/api/maillist/help@{domain}").status_code == 409
    assert api.put(f"/api/user/frank@{domain}", {"addAlias": f"help@{domain}"}).status_code == 409


def test_unknown_domain_and_missing_alias(api, domain, new_domain):
    assert api.post(f"/api/alias/x@{new_domain()}").json["msg"] == "NO_SUCH_DOMAIN"
    for method in ("GET", "PUT", "DELETE"):
        result = api.request(method, f"/api/alias/nobody@{domain}")
        assert result.status_code == 404 and result.json["msg"] == "NO_SUCH_ACCOUNT", method


def test_members_may_be_any_account_or_outside_address(api, root_connection, domain, new_domain):
    other = new_domain()
    api.post(f"/api/domain/{other}")
    root_connection.modify(domain_dn(other), {"domainAliasName": [(ldap3.MODIFY_ADD, [f"alias-{other}"])]})
    api.post(f"/api/user/u@{other}", {"password": PASSWORD})
    api.put(f"/api/user/u@{other}", {"addAlias": f"you@{other}"})
    api.post(f"/api/maillist/list@{domain}")
    api.post(f"/api/alias/inner@{domain}")
    members = [f"u@{other}", f"you@{other}", f"list@{domain}", f"inner@{domain}", f"anyone@alias-{other}",
               "out@side.test"]
    result = api.post(f"/api/alias/outer@{domain}", {"members": ",".join(members)})
    assert result.status_code == 201, result.text
    assert sorted(read_entry(root_connection, alias_dn(f"outer@{domain}"))["mailForwardingAddress"]) == sorted(members)


def test_number_of_aliases_limit(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"numberOfAliases": "2"})
    assert api.post(f"/api/alias/a1@{domain}").status_code == 201
    assert api.post(f"/api/alias/a2@{domain}").status_code == 201
    result = api.post(f"/api/alias/a3@{domain}")
    assert result.status_code == 403 and result.json["msg"] == "EXCEEDED_DOMAIN_ACCOUNT_LIMIT"
    assert read_entry(root_connection, alias_dn(f"a3@{domain}")) is None
    assert api.delete(f"/api/alias/a1@{domain}").status_code == 200
    assert alias_count(root_connection, domain) == 1
    assert api.post(f"/api/alias/a3@{domain}").status_code == 201
    api.put(f"/api/domain/{domain}", {"numberOfAliases": "-1"})
    assert api.post(f"/api/alias/a4@{domain}").status_code == 403
    assert alias_count(root_connection, domain) == 2


def test_30_parallel_creates_against_a_limit_of_5(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}", {"numberOfAliases": "5"})
    app = make_app()
    clients = [ApiClient(app).login() for _ in range(5)]
    results, barrier = [None] * 30, threading.Barrier(30)

    def run(i):
        barrier.wait()
        results[i] = clients[i % 5].post(f"/api/alias/p{i}@{domain}").status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(201) == 5 and set(results) == {201, 403}, results
    assert count_entries(root_connection, f"ou=Aliases,{domain_dn(domain)}", "(objectClass=mailAlias)") == 5
    assert alias_count(root_connection, domain) == 5


def test_put_updates_each_parameter(api, root_connection, domain):
    mail = f"desk@{domain}"
    api.post(f"/api/alias/{mail}", {"members": "a@x.test"})
    result = api.put(f"/api/alias/{mail}", {"name": "Front desk", "accessPolicy": "Domain",
                                            "accountStatus": "disabled", "members": "b@x.test,c@x.test"})
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, alias_dn(mail))
    assert entry["cn"] == ["Front desk"] and entry["accessPolicy"] == ["domain"]
    assert entry["accountStatus"] == ["disabled"]
    assert sorted(entry["mailForwardingAddress"]) == ["b@x.test", "c@x.test"]
    api.put(f"/api/alias/{mail}", {"cn": "", "members": "", "accountStatus": "active"})
    entry = read_entry(root_connection, alias_dn(mail))
    assert "cn" not in entry and "mailForwardingAddress" not in entry and entry["accountStatus"] == ["active"]


def test_add_and_remove_members_are_idempotent(api, root_connection, domain):
    mail = f"crew@{domain}"
    api.post(f"/api/alias/{mail}", {"members": "a@x.test"})
    assert api.put(f"/api/alias/{mail}", {"addMember": "b@x.test,A@x.test"}).status_code == 200
    assert sorted(read_entry(root_connection, alias_dn(mail))["mailForwardingAddress"]) == ["a@x.test", "b@x.test"]
    before = read_entry(root_connection, alias_dn(mail))
    result = api.put(f"/api/alias/{mail}", {"addMember": "b@x.test", "removeMember": "zzz@x.test"})
    assert result.status_code == 200, result.text
    assert read_entry(root_connection, alias_dn(mail)) == before
    api.put(f"/api/alias/{mail}", {"removeMember": "A@X.test"})
    assert read_entry(root_connection, alias_dn(mail))["mailForwardingAddress"] == ["b@x.test"]


@pytest.mark.parametrize("form,code,param", [
    ({"members": "a@x.test", "addMember": "b@x.test"}, "CONFLICTING_PARAMETERS", "addMember"),
    ({"members": "a@x.test", "removeMember": "b@x.test"}, "CONFLICTING_PARAMETERS", "removeMember"),
    ({"addMember": "a@x.test", "removeMember": "a@x.test"}, "CONFLICTING_PARAMETERS", "removeMember"),
    ({"addMember": "nobody@{domain}"}, "NO_SUCH_ACCOUNT", "addMember"),
    ({"members": "{self}"}, "INVALID_MAIL", "members"),
    ({"addMember": "x@"}, "INVALID_MAIL", "addMember"),
    ({"accessPolicy": "closed"}, "INVALID_ACCESS_POLICY", "accessPolicy"),
    ({"accountStatus": "on"}, "INVALID_ACCOUNT_STATUS", "accountStatus"),
])
def test_bad_update_parameters_change_nothing(api, root_connection, domain, form, code, param):
    mail = f"kim@{domain}"
    api.post(f"/api/alias/{mail}", {"members": "keep@x.test"})
    before = read_entry(root_connection, alias_dn(mail))
    form = {k: v.format(self=mail, domain=domain) for k, v in form.items()}
    result = api.put(f"/api/alias/{mail}", {"cn": "changed", **form})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == param
    assert read_entry(root_connection, alias_dn(mail)) == before


def test_get_and_listings(api, domain):
    api.post(f"/api/alias/a1@{domain}", {"members": "x@y.test"})
    api.post(f"/api/alias/a2@{domain}")
    api.post(f"/api/alias/a3@{domain}")
    api.put(f"/api/alias/a2@{domain}", {"accountStatus": "disabled"})
    data = api.get(f"/api/alias/A1@{domain}").json["_data"]
    assert data["mail"] == [f"a1@{domain}"] and data["mailForwardingAddress"] == ["x@y.test"]
    assert sorted(api.get(f"/api/aliases/{domain}", params={"email_only": "yes"}).json["_data"]) == [
        f"a1@{domain}", f"a2@{domain}", f"a3@{domain}"]
    assert api.get(f"/api/aliases/{domain}", params={"email_only": "yes", "disabled_only": "yes"}).json == {
        "_success": True, "success": True, "_data": [f"a2@{domain}"]}
    profiles = api.get(f"/api/aliases/{domain}").json["_data"]
    assert sorted(p["mail"][0] for p in profiles) == [f"a1@{domain}", f"a2@{domain}", f"a3@{domain}"]
    result = api.get(f"/api/aliases/{domain}", params={"bogus": "1"})
    assert result.status_code == 200 and result.headers["X-Ignored-Parameters"] == "bogus"


def test_listing_an_empty_domain(api, domain):
    assert api.get(f"/api/aliases/{domain}").json == {"_success": True, "success": True, "_data": []}


def test_delete_takes_the_alias_out_of_everything(api, root_connection, domain, new_domain):
    mail = f"gone@{domain}"
    api.post(f"/api/alias/{mail}", {"members": "x@y.test"})
    api.put(f"/api/alias/{mail}", {"accountStatus": "active"})
    root_connection.modify(alias_dn(mail), {"shadowAddress": [(ldap3.MODIFY_ADD, [f"gone2@{domain}"])]})
    api.post(f"/api/alias/other@{domain}", {"members": f"{mail},gone2@{domain},keep@x.test"})
    api.post(f"/api/user/pat@{domain}", {"password": PASSWORD})
    api.put(f"/api/user/pat@{domain}", {"forwarding": f"pat@{domain},{mail}"})
    api.post(f"/api/maillist/list@{domain}", {"members": f"{mail},pat@{domain}"})
    far = new_domain()
    api.post(f"/api/domain/{far}")
    planted = externals_dn(f"list@{far}")  # another tool's external entry naming the alias
    root_connection.add(f"mail=list@{far},ou=Groups,{domain_dn(far)}", attributes={
        "objectClass": ["mailList"], "mail": [f"list@{far}"], "accountStatus": ["active"]})
    root_connection.add(planted, attributes={"objectClass": ["mailExternalUser"], "memberOfGroup": [f"list@{far}"],
                                             "mail": [mail]})
    assert read_entry(root_connection, alias_dn(mail))["memberOfGroup"] == [f"list@{domain}"]

    result = api.delete(f"/api/alias/{mail}")
    assert result.status_code == 200, result.text
    assert read_entry(root_connection, alias_dn(mail)) is None
    assert read_entry(root_connection, alias_dn(f"other@{domain}"))["mailForwardingAddress"] == ["keep@x.test"]
    assert read_entry(root_connection, user_dn(f"pat@{domain}"))["mailForwardingAddress"] == [f"pat@{domain}"]
    assert read_entry(root_connection, list_dn(f"list@{domain}"))["member"] == [user_dn(f"pat@{domain}")]
    assert read_entry(root_connection, planted) is None  # its last address went
    assert api.get(f"/api/maillist/list@{domain}").json["_data"]["members"] == [f"pat@{domain}"]
    assert alias_count(root_connection, domain) == 1
    assert api.delete(f"/api/alias/{mail}").json["msg"] == "NO_SUCH_ACCOUNT"
    assert alias_count(root_connection, domain) == 1


def test_domain_admin_manages_only_its_domains_aliases(api, make_app, root_connection, domain, new_domain):
    other = new_domain()
    api.post(f"/api/domain/{other}")
    api.post(f"/api/alias/theirs@{other}")
    admin = f"aliasadmin@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app()).login(admin, "Admin-Pw-9")
    assert client.post(f"/api/alias/mine@{domain}", {"members": f"theirs@{other}"}).status_code == 201
    assert client.put(f"/api/alias/mine@{domain}", {"cn": "Mine"}).status_code == 200
    assert client.get(f"/api/aliases/{domain}").status_code == 200
    for result in (client.post(f"/api/alias/x@{other}"), client.get(f"/api/alias/theirs@{other}"),
                   client.put(f"/api/alias/theirs@{other}", {"cn": "taken"}),
                   client.delete(f"/api/alias/theirs@{other}"), client.get(f"/api/aliases/{other}")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert read_entry(root_connection, alias_dn(f"theirs@{other}"))["cn"] == ["theirs"]


def test_round_trips_post_6_put_4_get_2(api, domain):
    api.post(f"/api/user/rt@{domain}", {"password": PASSWORD})
    # domain read, one search for the address and the members, counter compare-and-set, add,
    # the search for an alias address that raced the add, the domain's status read again
    result = api.post(f"/api/alias/rt-alias@{domain}", {"members": f"rt@{domain},x@y.test,z@y.test"})
    assert result.status_code == 201 and result.headers["X-Directory-Round-Trips"] == "6"
    # domain read, alias read, one search for the new members, modify
    result = api.put(f"/api/alias/rt-alias@{domain}", {"addMember": "w@y.test,v@y.test", "cn": "RT"})
    assert result.status_code == 200 and result.headers["X-Directory-Round-Trips"] == "4"
    result = api.put(f"/api/alias/rt-alias@{domain}", {"removeMember": "w@y.test"})
    assert result.headers["X-Directory-Round-Trips"] == "3"
    result = api.get(f"/api/alias/rt-alias@{domain}")
    assert result.status_code == 200 and result.headers["X-Directory-Round-Trips"] == "2"


# -- a domain admin cannot probe other domains through members (issue 10, item 8) ---------------

def _domain_admin(api, make_app, root_connection, domain, new_domain):
    """A domain admin of ``domain``, and another hosted domain with the user stranger@ in it."""
    other = new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    assert api.post(f"/api/user/stranger@{other}", {"password": PASSWORD}).status_code == 201
    admin = f"prober@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    return ApiClient(make_app()).login(admin, "Admin-Pw-9"), other


def _same_answer(results):
    first = results[0]
    for result in results:
        assert (result.status_code, result.content) == (first.status_code, first.content), result.text
        assert result.headers["X-Directory-Round-Trips"] == first.headers["X-Directory-Round-Trips"]
    return first


def test_members_outside_a_domain_admins_domains_answer_alike(api, make_app, root_connection, domain, new_domain):
    client, other = _domain_admin(api, make_app, root_connection, domain, new_domain)
    outside = [f"stranger@{other}", f"ghost@{other}", "someone@unhosted-elsewhere.test"]
    created = _same_answer([client.post(f"/api/alias/p{i}@{domain}", {"members": address})
                            for i, address in enumerate(outside)])
    assert created.status_code == 201
    for i, address in enumerate(outside):
        assert read_entry(root_connection, alias_dn(f"p{i}@{domain}"))["mailForwardingAddress"] == [address]
    assert client.post(f"/api/alias/q@{domain}").status_code == 201
    updated = _same_answer([client.put(f"/api/alias/q@{domain}", {"addMember": address}) for address in outside])
    assert updated.status_code == 200
    # inside its own domains nothing changes: a missing account there is still refused
    result = client.post(f"/api/alias/p9@{domain}", {"members": f"ghost@{domain}"})
    assert result.status_code == 400 and result.json["msg"] == "NO_SUCH_ACCOUNT"
    # a global admin's answers are as before: a missing account in a hosted domain is refused
    assert api.post(f"/api/alias/g1@{domain}", {"members": f"stranger@{other}"}).status_code == 201
    result = api.post(f"/api/alias/g2@{domain}", {"members": f"ghost@{other}"})
    assert result.status_code == 400 and result.json["msg"] == "NO_SUCH_ACCOUNT" and result.json["param"] == "members"
    assert api.post(f"/api/alias/g3@{domain}", {"members": "x@unhosted-elsewhere.test"}).status_code == 201
