"""GET /api/user/<mail>: the LDAP profile plus iRedAdmin-Pro's computed keys, which clients
compare to decide what to sync (managed_domains, mailing_aliases, mailing_lists, stored_bytes,
stored_messages, last_login)."""

import re

import pytest
import sqlalchemy as sa

from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import dovecot_metadata, iredadmin_metadata
from tests.conftest import ApiClient, domain_dn
from tests.sql_backends import BACKENDS, REPO, throwaway_database

PASSWORD = "Secret-pw1!"
UPSTREAM_DOVECOT_SQL = REPO.parent / "shared" / "upstream" / "dovecot" / "sql"
COMPUTED = ("managed_domains", "mailing_aliases", "mailing_lists", "stored_bytes", "stored_messages", "last_login")


def test_computed_keys_name_what_refers_to_the_user(api, root_connection, new_domain):
    domain, other = new_domain(), new_domain()
    for d in (domain, other):
        assert api.post(f"/api/domain/{d}").status_code == 201
    mail = f"boss@{domain}"
    assert api.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/user/peer@{domain}", {"password": PASSWORD}).status_code == 201
    for d in (other, domain):  # admin of both, named as iRedAdmin names it
        root_connection.modify(domain_dn(d), {"domainAdmin": [("MODIFY_ADD", [mail])]})
    api.post(f"/api/alias/fwd@{other}", {"members": f"{mail},peer@{domain}"})
    api.post(f"/api/alias/team@{domain}", {"members": mail})
    api.post(f"/api/alias/unrelated@{domain}", {"members": f"peer@{domain}"})
    api.post(f"/api/maillist/all@{domain}", {"members": mail})
    api.post(f"/api/maillist/off@{other}", {"members": mail})
    assert api.put(f"/api/maillist/off@{other}", {"accountStatus": "disabled"}).status_code == 200
    data = api.get(f"/api/user/{mail}").json["_data"]
    assert data["managed_domains"] == sorted([domain, other])
    assert data["mailing_aliases"] == sorted([f"fwd@{other}", f"team@{domain}"])
    # a disabled list's membership is suspended, not gone
    assert data["mailing_lists"] == sorted([f"all@{domain}", f"off@{other}"])
    assert data["mail"] == [mail] and "userPassword" not in data
    peer = api.get(f"/api/user/peer@{domain}").json["_data"]
    assert peer["managed_domains"] == [] and peer["mailing_aliases"] == sorted(
        [f"fwd@{other}", f"unrelated@{domain}"]) and peer["mailing_lists"] == []


def test_without_dovecot_tables_the_usage_keys_are_null(api, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    result = api.get(f"/api/user/u@{domain}")
    assert result.status_code == 200
    data = result.json["_data"]
    assert data["stored_bytes"] is None and data["stored_messages"] is None and data["last_login"] is None


def test_fields_return_only_what_is_asked_and_skip_the_work(api, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD, "cn": "U"})
    full = api.get(f"/api/user/u@{domain}")
    cheap = api.get(f"/api/user/u@{domain}", params={"fields": "mail,CN,accountStatus"})
    assert cheap.json["_data"] == {"mail": [f"u@{domain}"], "cn": ["U"], "accountStatus": ["active"]}
    trips = int(full.headers["X-Directory-Round-Trips"]), int(cheap.headers["X-Directory-Round-Trips"])
    assert trips == (3, 2)  # the memberships search is skipped
    some = api.get(f"/api/user/u@{domain}", params={"fields": "mail,mailing_lists"}).json["_data"]
    assert some == {"mail": [f"u@{domain}"], "mailing_lists": []}


def _create_dovecot_tables(backend, url):
    store = SqlStore(url, timeout=5)
    create_tables(store, iredadmin_metadata)
    if backend == "mariadb":
        # iRedMail's own DDL, trigger and all: the trigger fills used_quota.domain as on a server.
        text = (UPSTREAM_DOVECOT_SQL / "used_quota.mysql").read_text()
        table, _, trigger = text.partition("DELIMITER //")
        trigger = trigger.split("//")[0]
        with store.engine.begin() as conn:
            conn.exec_driver_sql(re.sub(r"--[^\n]*", "", table).strip().rstrip(";"))
            conn.exec_driver_sql(trigger.strip())
            conn.exec_driver_sql((UPSTREAM_DOVECOT_SQL / "last_login.mysql").read_text().strip().rstrip(";"))
    else:
        dovecot_metadata.create_all(store.engine)
    return store


@pytest.mark.parametrize("backend", BACKENDS)
def test_usage_keys_come_from_dovecots_tables(make_app, new_domain, tmp_path, backend):
    with throwaway_database(backend, tmp_path) as url:
        store = _create_dovecot_tables(backend, url)
        client = ApiClient(make_app(iredadmin_db_url=url)).login()
        domain = new_domain()
        client.post(f"/api/domain/{domain}")
        mail, idle = f"u@{domain}", f"idle@{domain}"
        for m in (mail, idle):
            assert client.post(f"/api/user/{m}", {"password": PASSWORD}).status_code == 201
        # Rows as Dovecot's dict maps write them: quota by username, logins per protocol.
        with store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO used_quota (username, bytes, messages) VALUES (:u, 123456, 42)"),
                         {"u": mail})
            conn.execute(sa.text("INSERT INTO last_login (username, domain, imap, pop3, lda) "
                                 "VALUES (:u, :d, 1767225600, 1767139200, 1767312000)"), {"u": mail, "d": domain})
        data = client.get(f"/api/user/{mail}").json["_data"]
        assert data["stored_bytes"] == 123456 and data["stored_messages"] == 42
        # the later of IMAP and POP3 (2026-01-01 00:00:00 UTC); a delivery is not a login
        assert data["last_login"] == "2026-01-01 00:00:00"
        quiet = client.get(f"/api/user/{idle}").json["_data"]
        assert quiet["stored_bytes"] == 0 and quiet["stored_messages"] == 0 and quiet["last_login"] is None
        client.app.services.admin_store.dispose()
        store.dispose()


def test_a_missing_table_is_looked_for_again_after_a_while(api, new_domain, monkeypatch):
    from iredapi_ldap.store import dovecot

    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail = f"later@{domain}"
    api.post(f"/api/user/{mail}", {"password": PASSWORD})
    assert api.get(f"/api/user/{mail}").json["_data"]["stored_bytes"] is None
    store = api.app.services.admin_store
    dovecot_metadata.create_all(store.engine)  # iRedMail enables the feature afterwards
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO used_quota (username, bytes, messages) VALUES (:u, 7, 1)"), {"u": mail})
    # not asked again at once: a failed statement costs as much as the rest of the request
    assert api.get(f"/api/user/{mail}").json["_data"]["stored_bytes"] is None
    monkeypatch.setattr(dovecot.time, "monotonic", lambda: 10 ** 9)  # the retry interval has passed
    assert api.get(f"/api/user/{mail}").json["_data"]["stored_bytes"] == 7


def test_a_profile_asks_whether_mlmmj_lists_exist_once_in_a_while(make_app, new_domain):
    """With mlmmjadmin configured, a profile's mailing_lists may include mlmmj lists; whether the
    server has any is one search, which a worker reuses for a few seconds (not on deletes)."""
    api = ApiClient(make_app(MLMMJADMIN_API_BASE_URL="http://127.0.0.1:9/api", MLMMJADMIN_API_TIMEOUT=1)).login()
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    api.post(f"/api/user/u@{domain}", {"password": PASSWORD})
    first = int(api.get(f"/api/user/u@{domain}").headers["X-Directory-Round-Trips"])
    second = int(api.get(f"/api/user/u@{domain}").headers["X-Directory-Round-Trips"])
    assert second == first - 1
