"""A user rename (POST /api/user/<mail>/change_email/<new>) carries along what the newer features
keep per address: Amavisd's rows (spam policy, white/blacklists) and iRedAPD's greylisting rows on
SQLite, MariaDB and PostgreSQL; and a rename that dies half-way there is finished by repeating it.
(mlmmj subscriptions, owners and moderators: tests/test_mlmmj_seams.py, with the real mlmmjadmin.)"""

import pytest
import sqlalchemy as sa

from iredapi_ldap.store import amavisd as amavisd_store_module
from iredapi_ldap.store import greylisting as greylisting_store
from iredapi_ldap.store.tables import greylisting, greylisting_tracking, greylisting_whitelists
from tests.conftest import ApiClient
from tests.sql_backends import amavisd_database, amavisd_store_fixture  # noqa: F401 (fixtures)
from tests.test_store_amavisd import inbound_rows, outbound_rows, query, users_rows

PASSWORD = "Secret-pw1!"


def _make_domain(client, new_domain):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    return name


def _crash(*args, **kwargs):
    raise RuntimeError("worker killed")


# -- Amavisd ------------------------------------------------------------------------------------


@pytest.fixture
def spam_client(make_app, amavisd_store):
    return ApiClient(make_app(amavisd_db_url=amavisd_store.url.render_as_string(hide_password=False))).login()


def _policy_world(client, domain):
    old = f"old@{domain}"
    assert client.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    assert client.put(f"/api/spampolicy/user/{old}", {"spam_score": "4.5", "quarantine_spam": "yes"}).status_code == 200
    assert client.put(f"/api/spampolicy/domain/{domain}", {"spam_score": "7"}).status_code == 200
    assert client.post(f"/api/wblist/inbound/whitelist/{old}",
                       {"addresses": "friend@x.org,192.0.2.1"}).status_code == 200
    assert client.post(f"/api/wblist/outbound/blacklist/{old}", {"addresses": "victim@x.org"}).status_code == 200
    return old


def _assert_policy_followed(client, amavisd_store, domain, old, new):
    policy = client.get(f"/api/spampolicy/user/{new}").json["_data"]
    assert policy["spam_score"] == 4.5 and policy["quarantine_spam"] == "yes", policy
    assert client.get(f"/api/wblist/inbound/whitelist/{new}").json["_data"] == ["192.0.2.1", "friend@x.org"]
    assert client.get(f"/api/wblist/outbound/blacklist/{new}").json["_data"] == ["victim@x.org"]
    assert {e for e, _, _ in users_rows(amavisd_store)} == {f"@{domain}", new}
    assert sorted(n for (n,) in query(amavisd_store, "SELECT policy_name FROM policy")) == sorted([f"@{domain}", new])
    # the users row is linked to its own policy, named after the new address
    linked = query(amavisd_store, "SELECT policy.policy_name FROM users JOIN policy ON policy.id = users.policy_id "
                                  f"WHERE users.email = '{new}'")
    assert [n for (n,) in linked] == [new]
    assert {u for u, _, _ in inbound_rows(amavisd_store)} == {new}
    assert {u for u, _, _ in outbound_rows(amavisd_store)} == {new}
    assert client.get(f"/api/spampolicy/user/{old}").status_code == 404  # no such user any more


def test_spam_policy_and_wblists_follow_a_user_rename(spam_client, amavisd_store, new_domain):
    domain = _make_domain(spam_client, new_domain)
    old = _policy_world(spam_client, domain)
    new = f"new@{domain}"
    result = spam_client.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    _assert_policy_followed(spam_client, amavisd_store, domain, old, new)


def test_a_rename_that_died_before_amavisd_is_finished_by_repeating_it(spam_client, amavisd_store, new_domain,
                                                                      monkeypatch):
    domain = _make_domain(spam_client, new_domain)
    old = _policy_world(spam_client, domain)
    new = f"new@{domain}"
    monkeypatch.setattr(amavisd_store_module, "rename_account", _crash)
    assert spam_client.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    # meanwhile an admin gave the new address a list entry of its own: both stay
    assert spam_client.post(f"/api/wblist/inbound/whitelist/{new}", {"addresses": "friend@x.org"}).status_code == 200
    result = spam_client.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    _assert_policy_followed(spam_client, amavisd_store, domain, old, new)


# -- greylisting ----------------------------------------------------------------------------------


@pytest.fixture
def grey_client(make_app, sql_store):
    return ApiClient(make_app(iredapd_db_url=sql_store.url.render_as_string(hide_password=False))).login()


def _rows(store, table, *columns):
    with store.transaction() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in columns))))


def _grey_world(client, store, domain):
    old = f"old@{domain}"
    assert client.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    assert client.post(f"/api/greylisting/{old}", {"status": "disable"}).status_code == 200
    assert client.post(f"/api/greylisting/{old}/whitelists", {"addSenders": "friend@x.org,192.0.2.0/24"}
                       ).status_code == 200
    assert client.post(f"/api/greylisting/{domain}", {"status": "enable"}).status_code == 200
    with store.transaction() as conn:  # a triplet iRedAPD let through already
        conn.execute(greylisting_tracking.insert().values(
            sender="s@x.org", recipient=old, client_address="192.0.2.9", sender_domain="x.org", rcpt_domain=domain,
            init_time=1, block_expired=2, record_expired=3, blocked_count=1, passed=1))
    return old


def _assert_grey_followed(client, store, domain, new):
    assert client.get(f"/api/greylisting/{new}").json["_data"]["status"] == "disable"
    assert client.get(f"/api/greylisting/{new}/whitelists").json["_data"] == ["192.0.2.0/24", "friend@x.org"]
    assert _rows(store, greylisting, "account", "active") == sorted([(f"@{domain}", 1), (new, 0)])
    assert {a for (a,) in _rows(store, greylisting_whitelists, "account")} == {new}
    assert _rows(store, greylisting_tracking, "recipient", "sender") == [(new, "s@x.org")]


def test_greylisting_follows_a_user_rename(grey_client, sql_store, new_domain):
    domain = _make_domain(grey_client, new_domain)
    old = _grey_world(grey_client, sql_store, domain)
    new = f"new@{domain}"
    result = grey_client.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    _assert_grey_followed(grey_client, sql_store, domain, new)


def test_a_rename_that_died_before_greylisting_is_finished_by_repeating_it(grey_client, sql_store, new_domain,
                                                                          monkeypatch):
    domain = _make_domain(grey_client, new_domain)
    old = _grey_world(grey_client, sql_store, domain)
    new = f"new@{domain}"
    monkeypatch.setattr(greylisting_store, "rename_account", _crash)
    assert grey_client.post(f"/api/user/{old}/change_email/{new}").status_code == 500
    monkeypatch.undo()
    # meanwhile the new address got a whitelist entry of its own (the same sender): one row stays
    assert grey_client.post(f"/api/greylisting/{new}/whitelists", {"addSenders": "friend@x.org"}).status_code == 200
    result = grey_client.post(f"/api/user/{old}/change_email/{new}")
    assert result.status_code == 200, result.text
    _assert_grey_followed(grey_client, sql_store, domain, new)


# -- the catch-all ----------------------------------------------------------------------------------


def test_the_catchall_follows_a_renamed_or_deleted_destination(api, new_domain):
    domain = _make_domain(api, new_domain)
    for local in ("old", "other"):
        assert api.post(f"/api/user/{local}@{domain}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/{domain}", {"catchall": f"old@{domain},other@{domain}"}).status_code == 200
    assert api.post(f"/api/user/old@{domain}/change_email/new@{domain}").status_code == 200
    assert api.get(f"/api/domain/{domain}").json["_data"]["catchall"] == [f"new@{domain}", f"other@{domain}"]
    assert api.delete(f"/api/user/other@{domain}").status_code == 200
    assert api.get(f"/api/domain/{domain}").json["_data"]["catchall"] == [f"new@{domain}"]
