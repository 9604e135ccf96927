"""/api/ml/<mail> and /api/mls/<domain> (subscribable mlmmj lists) with the real mlmmjadmin 3.6.3
and Debian's mlmmj: mlmmj's own ``mlmmj-list`` reads the spool, Postfix's
transport_maps_user lookup (tests/mailstack) reads the entry mlmmjadmin wrote."""


import pytest

from tests.conftest import ApiClient, domain_dn, failed, list_dn, read_entry

PASSWORD = "Secret-pw1!"


@pytest.fixture
def app_settings(mlmmjadmin):
    return mlmmjadmin.settings()


@pytest.fixture
def mapi(make_app, app_settings):
    """A global admin's client of an app that talks to the module's mlmmjadmin."""
    return ApiClient(make_app(**app_settings)).login()


@pytest.fixture
def domain(mapi, new_domain):
    name = new_domain()
    assert mapi.post(f"/api/domain/{name}").status_code == 201
    return name


def list_count(conn, domain):
    return int(read_entry(conn, domain_dn(domain)).get("domainCurrentListNumber", ["0"])[0])


def nothing_of(conn, peer, mail):
    """No entry in LDAP and no spool for ``mail``."""
    return read_entry(conn, list_dn(mail)) is None and not peer.list_dir(mail).exists()


def test_create_subscribe_update_unsubscribe_delete(mapi, mlmmjadmin, mailstack, root_connection, domain):
    mail = f"team@{domain}"
    result = mapi.post(f"/api/ml/{mail}", {
        "name": "The Team", "owner": f"boss@{domain}", "subscribers": "a@ext.test,b@ext.test",
        "require_confirm": "no", "subject_prefix": "[team]", "max_message_size": "102400"})
    assert result.status_code == 201, result.text
    # what mlmmjadmin's LDAP backend wrote, as Postfix sees it
    entry = read_entry(root_connection, list_dn(mail))
    assert "mlmmj" in entry["enabledService"] and entry["cn"] == ["The Team"]
    assert entry["mtaTransport"] == [f"mlmmj:{domain}/team"]
    assert mailstack.postfix.lookup("transport_maps_user", mail) == [f"mlmmj:{domain}/team"]
    assert list_count(root_connection, domain) == 1
    # mlmmj's own view of the spool
    assert mlmmjadmin.mlmmj_list(mail) == ["a@ext.test", "b@ext.test"]
    data = mapi.get(f"/api/ml/{mail}", params={"with_subscribers": "yes"}).json["_data"]
    assert data["subscribers"] == ["a@ext.test", "b@ext.test"] and data["mail"] == mail
    assert data["subject_prefix"] == "[team]" and data["max_message_size"] == "102400", data  # as mlmmjadmin gives it
    assert data["owner"] == [f"boss@{domain}"]

    # subscribe and unsubscribe (the identity-operator use: require_confirm=no)
    result = mapi.put(f"/api/ml/{mail}", {"add_subscribers": "c@ext.test", "remove_subscribers": "a@ext.test",
                                          "require_confirm": "no"})
    assert result.status_code == 200, result.text
    assert mlmmjadmin.mlmmj_list(mail) == ["b@ext.test", "c@ext.test"]
    assert mapi.put(f"/api/ml/{mail}", {"add_subscribers": "d@ext.test", "require_confirm": "no",
                                        "subscription": "digest"}).status_code == 200
    assert mlmmjadmin.mlmmj_list(mail, "-d") == ["d@ext.test"]
    assert mapi.get(f"/api/ml/{mail}", params={"with_subscribers": "yes"}).json["_data"]["subscribers"] == [
        "b@ext.test", "c@ext.test", "d@ext.test"]

    # profile options; a PUT without name keeps the name (mlmmjadmin would drop it)
    assert mapi.put(f"/api/ml/{mail}", {"subject_prefix": "[new]", "close_list": "yes",
                                        "owner": f"boss@{domain},deputy@{domain}"}).status_code == 200
    data = mapi.get(f"/api/ml/{mail}").json["_data"]
    assert data["subject_prefix"] == "[new]" and data["close_list"] == "yes", data
    assert sorted(data["owner"]) == [f"boss@{domain}", f"deputy@{domain}"]
    assert read_entry(root_connection, list_dn(mail))["cn"] == ["The Team"]
    assert mapi.put(f"/api/ml/{mail}", {"name": "Renamed"}).status_code == 200
    assert read_entry(root_connection, list_dn(mail))["cn"] == ["Renamed"]

    # listing
    assert mapi.get(f"/api/mls/{domain}", params={"email_only": "yes"}).json["_data"] == [mail]
    [item] = mapi.get(f"/api/mls/{domain}").json["_data"]
    assert item["mail"] == mail and item["name"] == "Renamed" and item["accountStatus"] == "active"
    # old-style lists' endpoints do not see it
    assert mapi.get(f"/api/maillist/{mail}").status_code == 404
    assert mapi.get(f"/api/maillists/{domain}", params={"email_only": "yes"}).json["_data"] == []

    # delete without archive: entry, spool and transport gone, the slot given back
    result = mapi.delete(f"/api/ml/{mail}", params={"keep_archive": "no"})
    assert result.status_code == 200, result.text
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert mailstack.postfix.lookup("transport_maps_user", mail) == []
    assert list_count(root_connection, domain) == 0
    assert mapi.get(f"/api/ml/{mail}").json == failed("NO_SUCH_ACCOUNT", detail=mail)
    assert mapi.delete(f"/api/ml/{mail}").status_code == 404


def test_delete_keeps_the_archive_by_default(mapi, mlmmjadmin, root_connection, domain):
    mail = f"kept@{domain}"
    assert mapi.post(f"/api/ml/{mail}").status_code == 201
    assert mapi.delete(f"/api/ml/{mail}").status_code == 200
    assert nothing_of(root_connection, mlmmjadmin, mail)
    archived = list((mlmmjadmin.archive / domain).glob("kept-*")) if (mlmmjadmin.archive / domain).exists() else []
    assert archived, list(mlmmjadmin.archive.rglob("*"))[:10]
