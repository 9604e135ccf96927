"""Where mlmmj lists (mlmmjadmin's) meet the other features: renames and deletes of accounts that
are subscribers, owners or moderators; the old-style /api/maillist endpoints; an admin's maxLists;
alias domains; the catch-all.  With the real mlmmjadmin 3.6.3 and Debian's mlmmj."""

import pytest

from iredapi_ldap import mlmmj_lists
from tests.conftest import SUFFIX, ApiClient, read_entry, user_dn
from tests.test_mlmmj_lists import PASSWORD


@pytest.fixture
def mapi(make_app, mlmmjadmin):
    return ApiClient(make_app(**mlmmjadmin.settings())).login()


@pytest.fixture
def domain(mapi, new_domain):
    name = new_domain()
    assert mapi.post(f"/api/domain/{name}").status_code == 201
    return name


def _lower(values):
    return sorted(v.lower() for v in values)


def _profile(mlmmjadmin, mail):
    answer = mlmmjadmin.request("GET", mail)
    assert answer["_success"], answer
    return answer["_data"]


def _list_entry(root_connection, mail):
    from tests.conftest import list_dn

    return read_entry(root_connection, list_dn(mail))


def _rename_world(mapi, domain, new_domain):
    """A user subscribed to two mlmmj lists (normal and digest, one in another domain), owner of
    one and moderator of another."""
    other = new_domain()
    assert mapi.post(f"/api/domain/{other}").status_code == 201
    old = f"old@{domain}"
    assert mapi.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    lists = {"normal": f"here@{domain}", "digest": f"there@{other}"}
    for version, mail in lists.items():
        assert mapi.post(f"/api/ml/{mail}", {"name": "A list", "subscribers": f"{old},stay@ext.test",
                                             "require_confirm": "no", "subscription": version}).status_code == 201
    assert mapi.post(f"/api/ml/owned@{domain}", {"name": "Owned", "owner": f"{old},boss@{domain}",
                                                 "moderators": f"mod@{domain}"}).status_code == 201
    assert mapi.post(f"/api/ml/moderated@{other}", {"name": "Moderated", "owner": f"boss@{other}",
                                                    "moderators": f"{old},mod@{other}"}).status_code == 201
    return old, other, lists


def _assert_renamed(mapi, mlmmjadmin, root_connection, domain, other, lists, old, new):
    assert mlmmjadmin.mlmmj_list(lists["normal"]) == sorted([new, "stay@ext.test"])
    assert mlmmjadmin.mlmmj_list(lists["digest"], "-d") == sorted([new, "stay@ext.test"])
    assert mlmmjadmin.mlmmj_list(lists["digest"]) == []  # the same subscription version
    owned = _profile(mlmmjadmin, f"owned@{domain}")
    assert sorted(owned["owner"]) == sorted([new, f"boss@{domain}"]) and owned["moderators"] == [f"mod@{domain}"]
    assert owned["name"] == "Owned"
    moderated = _profile(mlmmjadmin, f"moderated@{other}")
    assert sorted(moderated["moderators"]) == sorted([new, f"mod@{other}"]) and moderated["owner"] == [f"boss@{other}"]
    # what mlmmjadmin's PUT wrote into the entries, and the user's profile
    assert old not in _lower(_list_entry(root_connection, f"owned@{domain}")["listOwner"])
    assert new in _lower(_list_entry(root_connection, f"moderated@{other}")["listModerator"])
    assert mapi.get(f"/api/user/{new}").json["_data"]["mailing_lists"] == sorted(lists.values())
    assert mlmmjadmin.request("GET", f"subscriber/{old}/subscribed?query_all_lists=yes")["_data"] == []


def test_a_rename_carries_subscriptions_owners_and_moderators(mapi, mlmmjadmin, root_connection, domain, new_domain):
    old, other, lists = _rename_world(mapi, domain, new_domain)
    new = f"new@{domain}"
    result = mapi.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    _assert_renamed(mapi, mlmmjadmin, root_connection, domain, other, lists, old, new)


@pytest.mark.parametrize("step", ["subscribe", "unsubscribe", "owners"])
def test_a_rename_that_died_at_mlmmjadmin_is_finished_by_repeating_it(mapi, mlmmjadmin, root_connection, domain,
                                                                      new_domain, monkeypatch, step):
    old, other, lists = _rename_world(mapi, domain, new_domain)
    new = f"new@{domain}"
    client = mapi.app.services.mlmmjadmin
    if step == "owners":
        monkeypatch.setattr(mlmmj_lists, "rename_owner_and_moderator", lambda *a, **k: 1 / 0)
    else:
        real = client.add_subscribers if step == "subscribe" else client.remove_subscribers
        calls = []

        def killed_on_the_second(*args, **kwargs):
            calls.append(args)
            if len(calls) == 2:
                raise RuntimeError("worker killed")
            return real(*args, **kwargs)

        monkeypatch.setattr(client, "add_subscribers" if step == "subscribe" else "remove_subscribers",
                            killed_on_the_second)
    assert mapi.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    result = mapi.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    _assert_renamed(mapi, mlmmjadmin, root_connection, domain, other, lists, old, new)


def test_deleting_a_user_takes_it_off_owners_and_moderators_through_mlmmjadmin(mapi, mlmmjadmin, root_connection,
                                                                              domain, new_domain):
    old, other, _ = _rename_world(mapi, domain, new_domain)
    assert mapi.delete(f"/api/user/{old}").status_code == 200
    owned = _profile(mlmmjadmin, f"owned@{domain}")
    assert owned["owner"] == [f"boss@{domain}"] and owned["name"] == "Owned"
    assert _profile(mlmmjadmin, f"moderated@{other}")["moderators"] == [f"mod@{other}"]
    assert _lower(_list_entry(root_connection, f"owned@{domain}")["listOwner"]) == [f"boss@{domain}"]
    assert _lower(_list_entry(root_connection, f"moderated@{other}")["listModerator"]) == [f"mod@{other}"]
    assert read_entry(root_connection, user_dn(old)) is None


def test_deleting_a_domain_takes_its_addresses_off_other_domains_owners(mapi, mlmmjadmin, new_domain):
    gone, other = new_domain(), new_domain()
    for name in (gone, other):
        assert mapi.post(f"/api/domain/{name}").status_code == 201
    assert mapi.post(f"/api/ml/list@{other}", {"owner": f"a@{gone},keep@{other}",
                                               "moderators": f"b@{gone}"}).status_code == 201
    assert mapi.delete(f"/api/domain/{gone}").status_code == 200
    data = _profile(mlmmjadmin, f"list@{other}")
    assert data["owner"] == [f"keep@{other}"] and data["moderators"] == []


def test_an_admins_max_lists_counts_mlmmj_lists(mapi, mlmmjadmin, root_connection, new_domain):
    from tests.test_admin_limits import leases, make_admin

    mail, admin = make_admin(mapi, maxDomains="2", maxLists="1")
    one, two = new_domain(), new_domain()
    for name in (one, two):
        assert admin.post(f"/api/domain/{name}").status_code == 201
    assert admin.post(f"/api/ml/first@{one}", {"name": "First"}).status_code == 201
    for result in (admin.post(f"/api/ml/second@{two}", {"name": "Second"}), admin.post(f"/api/maillist/old@{two}")):
        assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT", result.text
    assert _list_entry(root_connection, f"second@{two}") is None and not mlmmjadmin.list_dir(f"second@{two}").exists()
    assert read_entry(root_connection, f"domainName={two},o=domains,{SUFFIX}").get("domainCurrentListNumber",
                                                                                     ["0"]) == ["0"]
    assert admin.delete(f"/api/ml/first@{one}").status_code == 200
    assert admin.post(f"/api/ml/second@{two}", {"name": "Second"}).status_code == 201
    assert leases(root_connection, mail) == []


def test_old_style_list_endpoints_refuse_mlmmj_lists(mapi, mlmmjadmin, root_connection, domain):
    mail = f"team@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"name": "Team", "owner": f"boss@{domain}"}).status_code == 201
    before = _list_entry(root_connection, mail)
    for result in (mapi.get(f"/api/maillist/{mail}"),
                   mapi.put(f"/api/maillist/{mail}", {"name": "Other", "accountStatus": "disabled"}),
                   mapi.delete(f"/api/maillist/{mail}"),
                   mapi.post(f"/api/maillist/{mail}/change_email/crew@{domain}")):
        assert result.status_code == 404 and result.json["msg"] == "NO_SUCH_ACCOUNT", result.text
        assert f"use /api/ml/{mail}" in result.json["detail"], result.text
    assert _list_entry(root_connection, mail) == before
    assert mlmmjadmin.list_dir(mail).exists() and _profile(mlmmjadmin, mail)["name"] == "Team"
    assert mapi.get(f"/api/maillist/ghost@{domain}").json["detail"] == f"ghost@{domain}"


def test_alias_domains_and_mlmmj_lists(mapi, mlmmjadmin, mailstack, root_connection, domain, new_domain):
    """mlmmjadmin gives a new list its alias-domain addresses itself (shadowAddress, as for our
    accounts); the alias-domain sweep keeps them in step later.  Postfix's virtual_group_maps finds
    an mlmmj list by shadowAddress and answers its mail, which transport_maps_user hands to mlmmj."""
    alias, later = new_domain(), new_domain()
    assert mapi.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    mail = f"team@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"name": "Team"}).status_code == 201
    assert _lower(_list_entry(root_connection, mail)["shadowAddress"]) == [f"team@{alias}"]
    assert mapi.put(f"/api/domain/{domain}", {"addAliasDomain": later}).status_code == 200
    assert _lower(_list_entry(root_connection, mail)["shadowAddress"]) == sorted([f"team@{alias}", f"team@{later}"])
    for address in (f"team@{alias}", f"team@{later}"):
        assert mailstack.postfix.lookup("virtual_group_maps", address) == [mail]
    assert mailstack.postfix.lookup("transport_maps_user", mail) == [f"mlmmj:{domain}/team"]
    assert mapi.put(f"/api/domain/{domain}", {"removeAliasDomain": later}).status_code == 200
    assert mailstack.postfix.lookup("virtual_group_maps", f"team@{later}") == []
    assert _lower(_list_entry(root_connection, mail)["shadowAddress"]) == [f"team@{alias}"]
    assert _profile(mlmmjadmin, mail)["name"] == "Team"  # mlmmjadmin's own data untouched
    assert mapi.get(f"/api/mls/{domain}", params={"email_only": "yes"}).json["_data"] == [mail]
    # an alias-domain twin held by another account: refused before mlmmjadmin is asked, nothing made
    assert mapi.post(f"/api/user/carol@{domain}", {"password": PASSWORD}).status_code == 201
    assert mapi.put(f"/api/user/carol@{domain}", {"addAlias": f"crew@{alias}"}).status_code == 200
    counted = read_entry(root_connection, f"domainName={domain},o=domains,{SUFFIX}")["domainCurrentListNumber"]
    result = mapi.post(f"/api/ml/crew@{domain}", {"name": "Crew"})
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", result.text
    assert f"crew@{alias}" in result.json["detail"]
    assert _list_entry(root_connection, f"crew@{domain}") is None and not mlmmjadmin.list_dir(f"crew@{domain}").exists()
    assert read_entry(root_connection, f"domainName={domain},o=domains,{SUFFIX}")["domainCurrentListNumber"] == counted


def test_catchall_and_mlmmj_lists_are_not_users(mapi, mlmmjadmin, root_connection, domain):
    """A domain with a catch-all (made by domain PUT) and an mlmmj list: the bulk update, the user
    listing and the counters see its users only; the LDIF export has all three entries."""
    from iredapi_ldap.directory import limits as limitlib

    user, mail = f"u@{domain}", f"team@{domain}"
    assert mapi.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
    assert mapi.put(f"/api/domain/{domain}", {"catchall": user}).status_code == 200
    assert mapi.post(f"/api/ml/{mail}", {"name": "Team", "owner": user}).status_code == 201
    catch_all_dn = f"mail=@{domain},ou=Users,domainName={domain},o=domains,{SUFFIX}"
    catch_all, team = read_entry(root_connection, catch_all_dn), _list_entry(root_connection, mail)
    result = mapi.put(f"/api/users/{domain}", {"accountStatus": "disabled", "password": "Other-pw2!",
                                               "transport": "smtp:[relay.test]:25"})
    assert result.status_code == 200 and result.json["_data"]["changed"] == 1, result.text
    assert read_entry(root_connection, catch_all_dn) == catch_all
    assert _list_entry(root_connection, mail) == team
    assert mapi.get(f"/api/users/{domain}", params={"email_only": "yes"}).json["_data"] == [user]
    counters = read_entry(root_connection, f"domainName={domain},o=domains,{SUFFIX}")
    assert counters["domainCurrentUserNumber"] == ["1"] and counters["domainCurrentListNumber"] == ["1"]
    # a recount agrees: the mlmmj list counts as a list, the catch-all as nothing
    counted = limitlib.count_accounts(mapi.app.services.directory, domain)
    assert (counted[limitlib.USERS], counted[limitlib.LISTS]) == (1, 1)
    ldif = mapi.get(f"/api/ldif/domain/{domain}").text.replace("\n ", "")  # RFC 2849 folded lines
    for dn in (catch_all_dn, f"mail={mail},ou=Groups,domainName={domain}"):
        assert f"dn: {dn}" in ldif


@pytest.mark.parametrize("kind", ["alias", "maillist", "ml"])
def test_deleting_an_alias_or_a_list_takes_it_off_mlmmj_lists(mapi, mlmmjadmin, root_connection, domain, kind):
    mail = f"gone-{kind}@{domain}"
    create = {"alias": {}, "maillist": {}, "ml": {"name": "Gone"}}[kind]
    assert mapi.post(f"/api/{kind}/{mail}", create).status_code == 201
    assert mapi.post(f"/api/ml/subscribed@{domain}", {"subscribers": f"{mail},stay@ext.test",
                                                      "require_confirm": "no"}).status_code == 201
    assert mapi.post(f"/api/ml/moderated@{domain}", {"name": "Moderated", "owner": f"{mail},boss@{domain}",
                                                     "moderators": f"{mail},mod@{domain}"}).status_code == 201
    assert mapi.delete(f"/api/{kind}/{mail}").status_code == 200
    assert mlmmjadmin.mlmmj_list(f"subscribed@{domain}") == ["stay@ext.test"]
    data = _profile(mlmmjadmin, f"moderated@{domain}")
    assert (data["owner"], data["moderators"], data["name"]) == ([f"boss@{domain}"], [f"mod@{domain}"], "Moderated")
    assert _lower(_list_entry(root_connection, f"moderated@{domain}")["listModerator"]) == [f"mod@{domain}"]


def test_disabling_a_domain_stops_its_mlmmj_lists_in_postfix(mapi, mlmmjadmin, mailstack, root_connection, domain):
    """mlmmjadmin writes domainStatus only when it creates a list (from the domain's status then);
    a domain disabled or enabled later brings its lists' domainStatus in step like its other
    accounts', so Postfix stops and resumes them."""
    mail = f"team@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"name": "Team"}).status_code == 201
    assert mailstack.postfix.lookup("transport_maps_user", mail) == [f"mlmmj:{domain}/team"]
    assert mapi.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert _list_entry(root_connection, mail)["domainStatus"] == ["disabled"]
    assert mailstack.postfix.lookup("transport_maps_user", mail) == []
    assert mapi.put(f"/api/domain/{domain}", {"accountStatus": "active"}).status_code == 200
    assert mailstack.postfix.lookup("transport_maps_user", mail) == [f"mlmmj:{domain}/team"]
    assert _profile(mlmmjadmin, mail)["name"] == "Team"


def test_a_rename_while_mlmmjadmin_is_down_is_finished_by_repeating_it(make_app, ldap_server, root_connection,
                                                                       new_domain):
    from tests.mlmmjadmin_peer import start_peer

    peer = start_peer(ldap_server)
    try:
        client = ApiClient(make_app(**peer.settings())).login()
        domain = new_domain()
        assert client.post(f"/api/domain/{domain}").status_code == 201
        old, new = f"old@{domain}", f"new@{domain}"
        assert client.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
        assert client.post(f"/api/ml/team@{domain}", {"subscribers": old, "require_confirm": "no"}).status_code == 201
        peer.stop()
        result = client.post(f"/api/user/{old}/change_email/{new}")
        assert result.status_code == 503 and result.json["msg"] == "SERVICE_UNAVAILABLE", result.text
        peer.start()
        assert peer.mlmmj_list(f"team@{domain}") == [old]  # not yet
        result = client.post(f"/api/user/{old}/change_email/{new}")
        assert result.status_code == 200, result.text
        assert peer.mlmmj_list(f"team@{domain}") == [new]
        assert read_entry(root_connection, user_dn(old)) is None and read_entry(root_connection, user_dn(new))
    finally:
        peer.close()


@pytest.mark.parametrize("kind", ["alias", "maillist"])
def test_renaming_an_alias_or_old_style_list_carries_its_mlmmj_places(mapi, mlmmjadmin, domain, kind):
    old, new = f"old-{kind}@{domain}", f"new-{kind}@{domain}"
    assert mapi.post(f"/api/{kind}/{old}").status_code == 201
    assert mapi.post(f"/api/ml/subscribed@{domain}", {"subscribers": old, "require_confirm": "no",
                                                      "subscription": "nomail"}).status_code == 201
    assert mapi.post(f"/api/ml/owned@{domain}", {"name": "Owned", "owner": old}).status_code == 201
    assert mapi.post(f"/api/{kind}/{old}/change_email/{new}").status_code == 200
    assert mlmmjadmin.mlmmj_list(f"subscribed@{domain}", "-n") == [new]
    assert _profile(mlmmjadmin, f"owned@{domain}")["owner"] == [new]


def test_a_user_a_limited_admin_made_an_admin_creates_mlmmj_lists_within_its_limits(mapi, mlmmjadmin,
                                                                                    root_connection, new_domain):
    """As for old-style lists (test_admin_limits): a mail user a limited admin promoted creates
    mlmmj lists within that admin's maxLists, or the limit would be a formality."""
    from tests.test_admin_limits import leases, make_admin

    mail, admin = make_admin(mapi, maxDomains="1", maxUsers="1", maxLists="1")
    domain = new_domain()
    assert admin.post(f"/api/domain/{domain}").status_code == 201
    helper = f"helper@{domain}"
    assert admin.post(f"/api/user/{helper}", {"password": PASSWORD}).status_code == 201
    assert admin.put(f"/api/domain/admins/{domain}", {"addAdmin": helper}).status_code == 200
    deputy = ApiClient(mapi.app).login(helper, PASSWORD)
    assert deputy.post(f"/api/ml/first@{domain}", {"name": "First"}).status_code == 201
    result = deputy.post(f"/api/ml/second@{domain}", {"name": "Second"})
    assert result.status_code == 403 and result.json["_msg"] == "EXCEEDED_ADMIN_LIMIT", result.text
    assert _list_entry(root_connection, f"second@{domain}") is None
    assert not mlmmjadmin.list_dir(f"second@{domain}").exists()
    assert leases(root_connection, mail) == []


def test_addresses_mlmmjadmin_does_not_take(mapi, mlmmjadmin, root_connection, domain, new_domain):
    """Valid addresses outside mlmmjadmin 3.6.3's own pattern (a local part beginning with = or +,
    a top-level domain over 15 characters): its routes answer them with a plain "not found" and
    its parsers drop them silently.  Users at such addresses are deleted and renamed (they cannot
    be on its lists), lists and list parameters with them are a 400, and a subscribed user is not
    renamed to one (its subscriptions would be dropped)."""
    import uuid

    from tests.test_mlmmj_lists import list_count

    assert mapi.post(f"/api/ml/list@{domain}").status_code == 201
    long_tld = f"p{uuid.uuid4().hex[:6]}.abcdefghijklmnopq"
    assert mapi.post(f"/api/domain/{long_tld}").status_code == 201
    for user in (f"=x@{domain}", f"+y@{domain}", f"u@{long_tld}"):
        assert mapi.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
        assert mapi.post(f"/api/user/{user}/change_email/z{user.lstrip('=+')}").status_code == 200, user
        assert mapi.delete(f"/api/user/z{user.lstrip('=+')}").status_code == 200, user
    result = mapi.post(f"/api/ml/list@{long_tld}")
    assert result.status_code == 400 and result.json["msg"] == "INVALID_MAIL", result.text
    assert _list_entry(root_connection, f"list@{long_tld}") is None and list_count(root_connection, long_tld) == 0
    for param in ("add_subscribers", "owner", "moderators"):
        result = mapi.put(f"/api/ml/list@{domain}", {param: "ok@ext.test,=bad@ext.test"})
        assert result.status_code == 400 and result.json.get("param") == param, result.text
    assert mlmmjadmin.mlmmj_list(f"list@{domain}") == []
    sub = f"sub@{domain}"
    assert mapi.post(f"/api/user/{sub}", {"password": PASSWORD}).status_code == 201
    assert mapi.put(f"/api/ml/list@{domain}", {"add_subscribers": sub, "require_confirm": "no"}).status_code == 200
    result = mapi.post(f"/api/user/{sub}/change_email/=sub@{domain}")
    assert result.status_code == 400 and result.json.get("param") == "new_mail", result.text
    assert read_entry(root_connection, user_dn(sub)) is not None
    assert mlmmjadmin.mlmmj_list(f"list@{domain}") == [sub]
