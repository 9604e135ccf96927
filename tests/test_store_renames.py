"""A renamed account in the SQL stores, on SQLite, MariaDB and PostgreSQL: iRedAPD's throttle
settings and tracking rows, and a renamed admin's API sessions."""

import pytest
import sqlalchemy as sa

from iredapi_ldap.directory.admins import AdminAccount
from iredapi_ldap.sessions import SessionStore
from iredapi_ldap.store import dovecot, throttle
from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.tables import api_sessions, dovecot_metadata, last_login, throttle_tracking, used_quota
from iredapi_ldap.store.tables import throttle as throttle_table
from tests.sql_backends import (
    BACKENDS,
    sql_store_fixture,  # noqa: F401 (the sql_store fixture)
    throwaway_database,
)

OLD, NEW, OTHER = "old@example.com", "new@example.com", "other@example.com"


def _settings(store):
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(throttle_table.c.account, throttle_table.c.kind,
                                             throttle_table.c.max_msgs)).all())


def _tracking(store):
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(throttle_tracking.c.tid, throttle_tracking.c.account,
                                             throttle_tracking.c.cur_msgs)).all())


def _track(store, account, tracked, msgs):
    with store.engine.begin() as conn:
        tid = conn.execute(sa.select(throttle_table.c.id).where(throttle_table.c.account == account)
                           .order_by(throttle_table.c.id).limit(1)).scalar_one()
        conn.execute(throttle_tracking.insert().values(tid=tid, account=tracked, period=60, cur_msgs=msgs))
        return tid


def test_throttle_settings_and_counters_follow_a_rename(sql_store):
    throttle.set_setting(sql_store, OLD, "outbound", 60, None, 5, None)
    throttle.set_setting(sql_store, OLD, "inbound", 60, None, 7, None)
    throttle.set_setting(sql_store, OTHER, "outbound", 60, None, 9, None)
    throttle.set_setting(sql_store, "@example.com", "outbound", 60, None, 50, None)
    own = _track(sql_store, OLD, OLD, 3)
    domain = _track(sql_store, "@example.com", OLD, 4)
    _track(sql_store, "@example.com", NEW, 1)  # the new address was counted under the domain's row already
    assert throttle.rename_account(sql_store, OLD, NEW) == 2
    assert _settings(sql_store) == sorted([("@example.com", "outbound", 50), (NEW, "inbound", 7),
                                           (NEW, "outbound", 5), (OTHER, "outbound", 9)])
    assert _tracking(sql_store) == sorted([(own, NEW, 3), (domain, NEW, 1)])
    assert throttle.rename_account(sql_store, OLD, NEW) == 0  # a repeat moves nothing more
    assert len(_settings(sql_store)) == 4


def test_a_setting_the_new_address_got_meanwhile_stays(sql_store):
    throttle.set_setting(sql_store, OLD, "outbound", 60, None, 5, None)
    throttle.set_setting(sql_store, NEW, "outbound", 60, None, 8, None)
    _track(sql_store, OLD, OLD, 3)
    assert throttle.rename_account(sql_store, OLD, NEW) == 0
    assert _settings(sql_store) == [(NEW, "outbound", 8)]
    assert _tracking(sql_store) == []  # went with the old setting


def test_a_renamed_admins_sessions_go_on_under_the_new_name(sql_store):
    sessions = SessionStore(sql_store, timeout=3600, recheck_interval=60)
    tokens = [sessions.create(AdminAccount(dn=f"mail={OLD},o=domainAdmins,dc=x", username=OLD, is_global=False,
                                           is_active=True, may_administer=True)) for _ in range(2)]
    other = sessions.create(AdminAccount(dn="mail=o,dc=x", username=OTHER, is_global=False, is_active=True,
                                         may_administer=True))
    assert sessions.rename_sessions(OLD, NEW, "mail=new@example.com,dc=x") == 2
    for token in tokens:
        row = sessions.lookup(token)
        assert (row["username"], row["admin_dn"]) == (NEW, "mail=new@example.com,dc=x")
    assert sessions.lookup(other)["username"] == OTHER
    with sql_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_sessions)
                            .where(api_sessions.c.username == OLD)).scalar() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_dovecots_rows_follow_a_renamed_mailbox(backend, tmp_path):
    with throwaway_database(backend, tmp_path) as url:
        store = SqlStore(url, timeout=5)
        dovecot.rename_mailbox(store, OLD, NEW)  # no tables yet (the features are off): no error
        dovecot._missing_until.clear()
        dovecot_metadata.create_all(store.engine)
        with store.engine.begin() as conn:
            conn.execute(used_quota.insert().values(username=OLD, bytes=100, messages=2, domain="example.com"))
            conn.execute(last_login.insert().values(username=OLD, domain="example.com", imap=5))
            conn.execute(last_login.insert().values(username=NEW, domain="example.com", imap=9))
        dovecot.rename_mailbox(store, OLD, NEW)
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(used_quota.c.username, used_quota.c.bytes)).all() == [(NEW, 100)]
            # Dovecot wrote the new address's logins after the move: those are current
            assert conn.execute(sa.select(last_login.c.username, last_login.c.imap)).all() == [(NEW, 9)]
        assert dovecot.mailbox_usage(store, NEW)["stored_bytes"] == 100
        store.dispose()
