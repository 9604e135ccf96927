"""Records of deleted users' mailboxes on SQLite, MariaDB and PostgreSQL."""

import datetime

import pytest

from iredapi_ldap import errors
from iredapi_ldap.store.deleted_mailboxes import list_deleted_mailboxes, record_deleted_mailbox
from tests.sql_backends import sql_store_fixture  # noqa: F401 (the sql_store fixture)

ADMIN = "admin@example.com"
MAILDIR = "/var/vmail/vmail1/example.com/u/s/e/user-2024.01.01.00.00.00/"


@pytest.mark.parametrize("keep_days", [None, 0])
def test_record_without_keep_days_is_kept_forever(sql_store, keep_days):
    assert record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR, ADMIN,
                                  keep_days) == "created"

    [record] = list_deleted_mailboxes(sql_store)
    assert record == {
        "id": record["id"], "timestamp": record["timestamp"], "username": "user@example.com",
        "domain": "example.com", "maildir": MAILDIR, "admin": ADMIN, "delete_date": None,
    }
    assert isinstance(record["timestamp"], datetime.datetime)


def test_record_with_keep_days_sets_delete_date(sql_store):
    record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR, ADMIN, 30)

    [record] = list_deleted_mailboxes(sql_store)
    assert record["delete_date"] == datetime.date.today() + datetime.timedelta(days=30)


def test_retried_delete_updates_its_record(sql_store):
    record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR, ADMIN, 30)
    [first] = list_deleted_mailboxes(sql_store)

    assert record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR, "other@example.com",
                                  None) == "updated"

    assert list_deleted_mailboxes(sql_store) == [{**first, "admin": "other@example.com", "delete_date": None}]


def test_same_user_with_another_maildir_gets_a_second_record(sql_store):
    # The address was re-created and deleted again: two mailboxes on disk.
    record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR, ADMIN)
    record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR + "2/", ADMIN)

    assert [r["maildir"] for r in list_deleted_mailboxes(sql_store)] == [MAILDIR, MAILDIR + "2/"]


def test_list_by_domain(sql_store):
    for user in ("a@example.com", "b@example.net", "c@example.com"):
        domain = user.split("@")[1]
        record_deleted_mailbox(sql_store, user, domain, f"/var/vmail/vmail1/{domain}/{user}/", ADMIN)

    assert [r["username"] for r in list_deleted_mailboxes(sql_store, "example.com")] == ["a@example.com",
                                                                                         "c@example.com"]
    assert [r["username"] for r in list_deleted_mailboxes(sql_store)] == ["a@example.com", "b@example.net",
                                                                          "c@example.com"]
    assert list_deleted_mailboxes(sql_store, "example.org") == []


@pytest.mark.parametrize("keep_days", [-1, "30", True])
def test_rejects_bad_keep_days(sql_store, keep_days):
    with pytest.raises(errors.InvalidInput) as raised:
        record_deleted_mailbox(sql_store, "user@example.com", "example.com", MAILDIR, ADMIN, keep_days)
    assert (raised.value.code, raised.value.param) == (errors.INVALID_NUMBER, "keep_days")
    assert list_deleted_mailboxes(sql_store) == []
