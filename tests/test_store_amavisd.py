"""Amavisd's tables through store/amavisd.py on SQLite, MariaDB and PostgreSQL (iRedMail's own DDL
on the servers): white/blacklist rows as iRedAPD's tools write them, spam policies as Amavisd's own
lookup query reads them, races, and the clean-up on account deletes."""

import threading

import pytest
import sqlalchemy as sa

from iredapi_ldap import errors
from iredapi_ldap.store import amavisd
from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import amavisd_metadata
from tests import amavisd_lookup
from tests.sql_backends import (
    SERVERS,
    amavisd_database,  # noqa: F401 (fixture)
    amavisd_store_fixture,  # noqa: F401 (the amavisd_store fixture)
    throwaway_database,
)

USER, DOMAIN, GLOBAL = "user@example.com", "@example.com", "@."
PREFIX = "[SPAM] "


def query(store, sql, **params):
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def text(value):
    return bytes(value).decode() if isinstance(value, (bytes, memoryview)) else value


def users_rows(store):
    return sorted((text(e), p, pid) for e, p, pid in query(store, "SELECT email, priority, policy_id FROM users"))


def mailaddr_rows(store):
    return sorted((text(e), p) for e, p in query(store, "SELECT email, priority FROM mailaddr"))


def inbound_rows(store):
    return sorted((text(u), text(m), wb) for u, m, wb in query(
        store, "SELECT users.email, mailaddr.email, wb FROM wblist JOIN users ON users.id = wblist.rid"
               " JOIN mailaddr ON mailaddr.id = wblist.sid"))


def outbound_rows(store):
    return sorted((text(u), text(m), wb) for u, m, wb in query(
        store, "SELECT users.email, mailaddr.email, wb FROM outbound_wblist"
               " JOIN users ON users.id = outbound_wblist.sid JOIN mailaddr ON mailaddr.id = outbound_wblist.rid"))


# -- entries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [
    ("192.168.2.10", ("192.168.2.10", "ip")),
    ("192.168.2.0/24", ("192.168.2.0/24", "cidr_network")),
    ("2620:0:2D0:200::7/128", ("2620:0:2d0:200::7/128", "cidr_network")),
    ("2001:DB8:0::1", ("2001:db8::1", "ip")),
    ("User@Example.COM", ("user@example.com", "email")),
    ("@Example.com", ("@example.com", "domain")),
    ("@.example.com", ("@.example.com", "subdomain")),
    ("@.com", ("@.com", "top_level_domain")),
    ("@.рф", ("@.xn--p1ai", "top_level_domain")),  # as @.bücher.de is @.xn--bcher-kva.de
    ("@.", ("@.", "catchall")),
    # Postfix sends an IPv4 client as a.b.c.d; Python's text of the mapped form changed in 3.13
    ("::FFFF:192.0.2.7", ("192.0.2.7", "ip")),
    ("::ffff:192.0.2.0/120", ("192.0.2.0/24", "cidr_network")),
    ("@" + ".".join(["b" * 63] * 3) + ".abcdefghi", ("@" + ".".join(["b" * 63] * 3) + ".abcdefghi", "domain")),
])
def test_entries_are_normalized_with_iredapd_kinds(given, expected):
    assert amavisd.entry(given) == expected


@pytest.mark.parametrize("bad", ["192.168.2.1/24", "192.168.1.*", "user@*", "@", "user", "@bad_domain.com",
                                 "a@b@c.com", "999.1.1.1", "@.x",
                                 "fe80::1%eth0",  # no client address Postfix sends has a zone
                                 "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".org",  # over varbinary(255)
                                 ])
def test_invalid_entries_are_refused(bad):
    assert amavisd.entry(bad) is None


def test_parse_entries_names_every_invalid_one():
    with pytest.raises(errors.InvalidInput) as info:
        amavisd.parse_entries("1.2.3.4, bad, user@*, @example.com")
    assert info.value.param == "addresses"
    assert "bad, user@*" in info.value.detail
    assert amavisd.parse_entries("1.2.3.4,,@x.com, 1.2.3.4") == {"1.2.3.4": "ip", "@x.com": "domain"}
    assert len(amavisd.parse_entries(",".join(f"10.0.{i // 250}.{i % 250}" for i in range(1000)))) == 1000
    with pytest.raises(errors.InvalidInput, match="at most 1000"):
        amavisd.parse_entries(",".join(f"10.0.{i // 250}.{i % 250}" for i in range(1001)))


# -- white/blacklists -----------------------------------------------------------------------------


def test_rows_as_iredapd_writes_them(amavisd_store):
    amavisd.add_entries(amavisd_store, USER, "inbound", "whitelist",
                        amavisd.parse_entries("1.2.3.4,10.0.0.0/8,friend@other.org,@other.org,@.other.org,@."))
    amavisd.add_entries(amavisd_store, DOMAIN, "inbound", "blacklist", amavisd.parse_entries("spam@bad.org"))
    amavisd.add_entries(amavisd_store, USER, "outbound", "blacklist", amavisd.parse_entries("victim@other.org"))
    # users: policy_id 0 (iRedAPD's create_user); priorities from MAILADDR_PRIORITIES.
    assert users_rows(amavisd_store) == [(DOMAIN, 5, 0), (USER, 10, 0)]
    assert mailaddr_rows(amavisd_store) == sorted([
        ("1.2.3.4", 9), ("10.0.0.0/8", 7), ("friend@other.org", 10), ("@other.org", 5), ("@.other.org", 3),
        ("@.", 0), ("spam@bad.org", 10), ("victim@other.org", 10)])
    assert inbound_rows(amavisd_store) == sorted(
        [(USER, a, "W") for a in ("1.2.3.4", "10.0.0.0/8", "friend@other.org", "@other.org", "@.other.org", "@.")]
        + [(DOMAIN, "spam@bad.org", "B")])
    assert outbound_rows(amavisd_store) == [(USER, "victim@other.org", "B")]
    assert amavisd.list_entries(amavisd_store, USER, "inbound", "whitelist") == sorted(
        ["1.2.3.4", "10.0.0.0/8", "friend@other.org", "@other.org", "@.other.org", "@."])
    assert amavisd.list_entries(amavisd_store, USER, "inbound", "blacklist") == []
    assert amavisd.list_entries(amavisd_store, USER, "outbound", "blacklist") == ["victim@other.org"]


def test_add_twice_move_remove_absent_and_clear(amavisd_store):
    entries = amavisd.parse_entries("a@x.org,b@x.org")
    assert amavisd.add_entries(amavisd_store, USER, "inbound", "blacklist", entries) == 2
    assert amavisd.add_entries(amavisd_store, USER, "inbound", "blacklist", entries) == 0
    assert len(inbound_rows(amavisd_store)) == 2
    # Whitelisting a blacklisted sender moves it (one row per (rid, sid)), as iRedAPD's add_wblist.
    amavisd.add_entries(amavisd_store, USER, "inbound", "whitelist", amavisd.parse_entries("a@x.org"))
    assert inbound_rows(amavisd_store) == [(USER, "a@x.org", "W"), (USER, "b@x.org", "B")]
    # Removing from the wrong list, an absent or unknown entry: nothing happens.
    assert amavisd.remove_entries(amavisd_store, USER, "inbound", "blacklist",
                                  amavisd.parse_entries("a@x.org,nobody@x.org")) == 0
    assert amavisd.remove_entries(amavisd_store, "other@example.com", "inbound", "blacklist",
                                  amavisd.parse_entries("b@x.org")) == 0
    assert amavisd.remove_entries(amavisd_store, USER, "inbound", "blacklist", amavisd.parse_entries("b@x.org")) == 1
    assert inbound_rows(amavisd_store) == [(USER, "a@x.org", "W")]
    assert amavisd.clear_entries(amavisd_store, USER, "inbound", "blacklist") == 0
    assert amavisd.clear_entries(amavisd_store, USER, "inbound", "whitelist") == 1
    assert inbound_rows(amavisd_store) == []
    assert len(mailaddr_rows(amavisd_store)) == 2  # shared rows stay; removing creates none


def test_concurrent_adds_of_the_same_new_rows(amavisd_store):
    """Writers creating the same users and mailaddr rows at once: every one succeeds, one row each."""
    entries = amavisd.parse_entries(",".join(f"s{i}@race.org" for i in range(5)))
    stores = [SqlStore(amavisd_store.url, timeout=10) for _ in range(6)]
    barrier, failures = threading.Barrier(len(stores)), []

    def run(store, listname):
        try:
            barrier.wait()
            amavisd.add_entries(store, USER, "inbound", listname, entries)
        except Exception as exc:  # noqa: BLE001 (reported below)
            failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(store, "whitelist")) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.dispose()
    assert failures == []
    assert users_rows(amavisd_store) == [(USER, 10, 0)]
    assert len(mailaddr_rows(amavisd_store)) == 5
    assert len(inbound_rows(amavisd_store)) == 5


# -- spam policy ----------------------------------------------------------------------------------


def put(store, account, **values):
    amavisd.set_policy(store, account, amavisd.policy_columns(values, PREFIX))


def test_policy_columns_and_parameters_round_trip(amavisd_store):
    put(amavisd_store, USER, bypass_spam_checks=True, bypass_virus_checks=False, quarantine_spam=True,
        quarantine_virus=False, quarantine_bad_header=False, prefix_spam_in_subject=True,
        always_insert_x_spam_headers=True, spam_score=4.5, banned_rulenames=["ALLOW_MS_WORD", "ALLOW_MS_EXCEL"])
    row = amavisd.get_policy(amavisd_store, USER)
    assert row["policy_name"] == USER
    assert (row["bypass_spam_checks"], row["bypass_virus_checks"]) == ("Y", "N")
    assert (row["spam_lover"], row["spam_quarantine_to"]) == ("N", "spam-quarantine")
    assert (row["virus_lover"], row["virus_quarantine_to"]) == ("N", "")
    assert (row["bad_header_lover"], row["bad_header_quarantine_to"]) == ("Y", "")
    assert row["banned_quarantine_to"] is None and row["banned_files_lover"] is None
    assert row["spam_subject_tag2"] == PREFIX
    assert (row["spam_tag_level"], row["spam_tag2_level"], row["spam_kill_level"]) == (-999, 4.5, 4.5)
    assert row["banned_rulenames"] == "ALLOW_MS_WORD,ALLOW_MS_EXCEL"
    assert amavisd.policy_parameters(row) == {
        "bypass_spam_checks": "yes", "bypass_virus_checks": "no", "bypass_banned_checks": None,
        "bypass_header_checks": None, "quarantine_spam": "yes", "quarantine_virus": "no",
        "quarantine_banned": None, "quarantine_bad_header": "no", "prefix_spam_in_subject": "yes",
        "always_insert_x_spam_headers": "yes", "spam_score": 4.5,
        "banned_rulenames": "ALLOW_MS_WORD,ALLOW_MS_EXCEL"}
    # A second PUT changes what it names and keeps the rest; one policy row, one users row.
    put(amavisd_store, USER, spam_score=None, always_insert_x_spam_headers=False)
    row = amavisd.get_policy(amavisd_store, USER)
    assert (row["spam_tag_level"], row["spam_kill_level"], row["bypass_spam_checks"]) == (None, None, "Y")
    assert query(amavisd_store, "SELECT COUNT(*) FROM policy") == [(1,)]
    assert [(e, p) for e, p, _ in users_rows(amavisd_store)] == [(USER, 10)]


def test_iredmail_default_global_policy_reads_as_its_parameters(amavisd_store):
    """iRedMail's default_spam_policy.sql, loaded as is: spam and bad headers delivered, viruses
    and banned files quarantined."""
    from tests.sql_backends import AMAVISD_UPSTREAM_DIR, run_sql_text

    run_sql_text(amavisd_store.engine, (AMAVISD_UPSTREAM_DIR / "default_spam_policy.sql").read_text())
    params = amavisd.policy_parameters(amavisd.get_policy(amavisd_store, GLOBAL))
    assert {k: params[k] for k in amavisd.QUARANTINE_PARAMS} == {
        "quarantine_spam": "no", "quarantine_virus": "yes", "quarantine_banned": "yes",
        "quarantine_bad_header": "no"}
    assert params["bypass_spam_checks"] == "no"
    # Our PUT updates that row (named "@."), not a second one.
    put(amavisd_store, GLOBAL, spam_score=7.0)
    assert query(amavisd_store, "SELECT COUNT(*) FROM policy") == [(1,)]
    assert amavisd.get_policy(amavisd_store, GLOBAL)["spam_lover"] == "Y"


def test_shared_policy_is_left_to_the_others(amavisd_store):
    """A users row linked by hand to a policy of another name gets a policy of its own."""
    with amavisd_store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO policy (policy_name, spam_lover) VALUES ('shared', 'Y')"))
        shared = conn.execute(sa.text("SELECT id FROM policy WHERE policy_name = 'shared'")).scalar()
    with amavisd_store.engine.begin() as conn:
        conn.execute(amavisd_metadata.tables["users"].insert().values(email=USER, priority=10, policy_id=shared))
    put(amavisd_store, USER, spam_score=3.0)
    assert query(amavisd_store, "SELECT spam_lover, spam_kill_level FROM policy WHERE policy_name = 'shared'") == [
        ("Y", None)]
    own = amavisd.get_policy(amavisd_store, USER)
    assert (own["policy_name"], own["spam_kill_level"], own["spam_lover"]) == (USER, 3.0, "Y")  # a copy, changed


def test_amavisd_lookup_user_beats_domain_beats_global(amavisd_store):
    """Amavisd's own policy SELECT with the keys it builds for a recipient: each field from the
    most specific policy that sets it."""
    put(amavisd_store, GLOBAL, spam_score=8.0, quarantine_spam=False, bypass_virus_checks=False)
    put(amavisd_store, "@example.com", spam_score=6.0)
    put(amavisd_store, USER, spam_score=4.0, quarantine_spam=True)
    # Rows of other accounts that must not leak in.
    put(amavisd_store, "user@other.com", spam_score=1.0, bypass_virus_checks=True)
    amavisd.add_entries(amavisd_store, "@sub.example.com", "inbound", "whitelist", amavisd.parse_entries("1.2.3.4"))
    with amavisd_store.engine.connect() as conn:
        def fields(address, *names):
            return tuple(amavisd_lookup.field(conn, address, name) for name in names)

        assert fields(USER, "spam_kill_level", "spam_lover", "bypass_virus_checks") == (4.0, "N", "N")
        assert fields("other@example.com", "spam_kill_level", "spam_lover") == (6.0, "Y")
        assert fields("x@sub.example.com", "spam_kill_level", "spam_lover") == (8.0, "Y")
        assert fields("x@elsewhere.org", "spam_kill_level", "bypass_virus_checks") == (8.0, "N")
        # The users rows come back most specific first.
        assert [amavisd_lookup.lookup_rows(conn, USER)[i]["priority"] for i in range(3)] == [10, 5, 0]
    amavisd.delete_policy(amavisd_store, USER)
    with amavisd_store.engine.connect() as conn:
        assert amavisd_lookup.field(conn, USER, "spam_kill_level") == 6.0
    amavisd.delete_policy(amavisd_store, "@example.com")
    with amavisd_store.engine.connect() as conn:
        assert amavisd_lookup.field(conn, USER, "spam_kill_level") == 8.0
    assert amavisd.get_policy(amavisd_store, USER) == {}
    assert (USER, 10, 0) in users_rows(amavisd_store)  # the users row stays, unlinked


# -- life-cycle -----------------------------------------------------------------------------------


def fill(store, account):
    put(store, account, spam_score=5.0)
    amavisd.add_entries(store, account, "inbound", "blacklist", amavisd.parse_entries("bad@spam.org"))
    amavisd.add_entries(store, account, "outbound", "whitelist", amavisd.parse_entries("ok@partner.org"))


def test_delete_accounts_and_domain(amavisd_store):
    for account in (USER, "two@example.com", DOMAIN, "keep@example.community", "@example.community", GLOBAL):
        fill(amavisd_store, account)
    amavisd.delete_accounts(amavisd_store, [USER])
    accounts = {e for e, _, _ in users_rows(amavisd_store)}
    assert USER not in accounts and "two@example.com" in accounts
    assert {u for u, _, _ in inbound_rows(amavisd_store) + outbound_rows(amavisd_store)} == accounts
    amavisd.delete_domain(amavisd_store, "example.com")
    accounts = {e for e, _, _ in users_rows(amavisd_store)}
    assert accounts == {"keep@example.community", "@example.community", GLOBAL}
    assert {u for u, _, _ in inbound_rows(amavisd_store) + outbound_rows(amavisd_store)} == accounts
    assert {n for (n,) in query(amavisd_store, "SELECT policy_name FROM policy")} == accounts
    assert ("bad@spam.org", 10) in mailaddr_rows(amavisd_store)  # shared rows stay
    assert amavisd.delete_domain(amavisd_store, "example.com") == 0  # a repeat is harmless


@pytest.mark.parametrize("backend", SERVERS)
def test_our_tables_on_servers(backend, tmp_path):
    """sql-setup's tables on MariaDB and PostgreSQL take the same rows."""
    with throwaway_database(backend, tmp_path) as url:
        store = SqlStore(url, timeout=5)
        try:
            create_tables(store, amavisd_metadata)
            create_tables(store, amavisd_metadata)  # a second run adds nothing and fails on nothing
            fill(store, USER)
            assert inbound_rows(store) == [(USER, "bad@spam.org", "B")]
            assert amavisd.policy_parameters(amavisd.get_policy(store, USER))["spam_score"] == 5.0
        finally:
            store.dispose()


# -- settings and sql-setup -------------------------------------------------------------------------


def test_amavisd_settings_use_iredadmins_names(tmp_path):
    from iredapi_ldap.settings import build_settings, sql_url

    settings = build_settings({"DATA_DIR": str(tmp_path)})
    assert sql_url(settings, "amavisd") == f"sqlite:///{tmp_path}/amavisd.sqlite"
    on_host = settings.replace(amavisd_db_host="db.example.com", amavisd_db_port=3307, amavisd_db_password="pw")
    parsed = sa.make_url(sql_url(on_host, "amavisd"))
    assert (parsed.host, parsed.port, parsed.database, parsed.username, parsed.password) == (
        "db.example.com", 3307, "amavisd", "amavisd", "pw")
    assert sql_url(on_host.replace(amavisd_db_url="postgresql://u@pg/amavisd"), "amavisd") == "postgresql://u@pg/amavisd"


def test_sql_setup_creates_amavisds_tables(tmp_path):
    from tests.test_settings import _cli

    result = _cli("sql-setup", "--amavisd", env_extra={"IREDAPI_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path}/amavisd.sqlite")
    try:
        assert set(sa.inspect(engine).get_table_names()) == {"users", "mailaddr", "policy", "wblist",
                                                              "outbound_wblist"}
    finally:
        engine.dispose()


def test_a_full_request_of_entries(amavisd_store):
    entries = amavisd.parse_entries(",".join(f"s{i}@many.org" for i in range(amavisd.MAX_ENTRIES)))
    assert amavisd.add_entries(amavisd_store, USER, "outbound", "blacklist", entries) == amavisd.MAX_ENTRIES
    assert amavisd.remove_entries(amavisd_store, USER, "outbound", "blacklist", entries) == amavisd.MAX_ENTRIES


# -- alias domains ----------------------------------------------------------------------------------
# Amavisd looks user@alias.example up as user@alias.example, user, @alias.example, @.alias.example,
# @.example, @. (amavisd_lookup.query_keys): never as the domain the alias domain belongs to.

ALIAS, ALIAS2 = "alias.example", "alias2.org"


def scores(store, *addresses):
    with store.engine.connect() as conn:
        return tuple(amavisd_lookup.field(conn, a, "spam_kill_level") for a in addresses)


def policy_id(store, name):
    return query(store, "SELECT id FROM policy WHERE policy_name = :n", n=name)[0][0]


def test_alias_domain_addresses_take_the_domains_and_users_policies(amavisd_store):
    put(amavisd_store, GLOBAL, spam_score=8.0)
    put(amavisd_store, DOMAIN, spam_score=6.0, quarantine_spam=False)
    put(amavisd_store, USER, spam_score=4.0)
    put(amavisd_store, "user@other.com", spam_score=1.0)  # another domain's: not spread
    # The gap: before the link, the alias-domain addresses get only the global policy.
    assert scores(amavisd_store, f"user@{ALIAS}", f"other@{ALIAS}") == (8.0, 8.0)
    assert amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, ALIAS2]) == 4
    assert scores(amavisd_store, USER, f"user@{ALIAS}", f"user@{ALIAS2}") == (4.0, 4.0, 4.0)
    assert scores(amavisd_store, "other@example.com", f"other@{ALIAS}", f"x@{ALIAS2}") == (6.0, 6.0, 6.0)
    with amavisd_store.engine.connect() as conn:
        # a column the user's policy leaves NULL comes from the domain's, at the alias address too
        assert amavisd_lookup.field(conn, f"user@{ALIAS}", "spam_lover") == "Y"
    # The same policy rows, linked (one policy per account), with the account's priority.
    rows = users_rows(amavisd_store)
    assert (f"@{ALIAS}", 5, policy_id(amavisd_store, DOMAIN)) in rows
    assert (f"user@{ALIAS2}", 10, policy_id(amavisd_store, USER)) in rows
    assert query(amavisd_store, "SELECT COUNT(*) FROM policy") == [(4,)]
    assert amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, ALIAS2]) == 0  # a repeat: nothing
    # A policy changed is the alias addresses' at once (the same row); GET reads the account's own.
    put(amavisd_store, USER, spam_score=3.0)
    assert scores(amavisd_store, f"user@{ALIAS}") == (3.0,)
    assert amavisd.get_policy(amavisd_store, f"user@{ALIAS}")["policy_name"] == USER
    # An alias domain removed: its rows go, the other's stay.
    assert amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS]) == 2
    assert {e for e, _, _ in users_rows(amavisd_store)} == {GLOBAL, DOMAIN, USER, "user@other.com",
                                                            f"@{ALIAS}", f"user@{ALIAS}"}
    assert scores(amavisd_store, f"user@{ALIAS2}") == (8.0,)
    # Policies deleted: their alias rows go with them.
    amavisd.delete_policy(amavisd_store, USER)
    assert scores(amavisd_store, f"user@{ALIAS}") == (6.0,)
    assert f"user@{ALIAS}" not in {e for e, _, _ in users_rows(amavisd_store)}
    amavisd.delete_policy(amavisd_store, DOMAIN)
    assert scores(amavisd_store, f"user@{ALIAS}") == (8.0,)
    assert {e for e, _, _ in users_rows(amavisd_store)} == {GLOBAL, DOMAIN, USER, "user@other.com"}


def test_one_row_per_alias_domain_and_per_user_policy_not_per_user(amavisd_store, monkeypatch):
    """The work and the rows are proportional to the domain's own policies; paged by policy id."""
    monkeypatch.setattr(amavisd, "_BATCH", 2)
    for i in range(5):
        put(amavisd_store, f"p{i}@example.com", spam_score=float(i))
    for i in range(5):  # users with white/blacklists only, no policy: nothing to link
        amavisd.add_entries(amavisd_store, f"w{i}@example.com", "inbound", "whitelist",
                            amavisd.parse_entries("1.2.3.4"))
    put(amavisd_store, DOMAIN, spam_score=6.0)
    before = len(users_rows(amavisd_store))
    assert amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, ALIAS2]) == 12
    assert len(users_rows(amavisd_store)) == before + 2 * 6
    assert scores(amavisd_store, *(f"p{i}@{ALIAS2}" for i in range(5)), f"w0@{ALIAS}") == (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
    # Just one account's: only its rows.
    put(amavisd_store, "late@example.com", spam_score=2.5)
    assert amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS], accounts=["late@example.com"]) == 1
    assert scores(amavisd_store, f"late@{ALIAS}", f"late@{ALIAS2}") == (2.5, 6.0)
    assert amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS], accounts=[GLOBAL]) == 0


def test_alias_rows_holding_lists_are_unlinked_never_deleted(amavisd_store):
    """White/blacklists hang on users.id: a row at an alias address that has some (written by hand,
    e.g. with iRedAPD's wblist_admin.py) is linked, then unlinked, but never deleted with them."""
    amavisd.add_entries(amavisd_store, f"user@{ALIAS}", "inbound", "blacklist", amavisd.parse_entries("bad@spam.org"))
    amavisd.add_entries(amavisd_store, f"@{ALIAS}", "outbound", "blacklist", amavisd.parse_entries("x@y.org"))
    put(amavisd_store, USER, spam_score=4.0)
    put(amavisd_store, DOMAIN, spam_score=6.0)
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS])
    assert (f"user@{ALIAS}", 10, policy_id(amavisd_store, USER)) in users_rows(amavisd_store)
    assert scores(amavisd_store, f"user@{ALIAS}") == (4.0,)
    amavisd.delete_policy(amavisd_store, USER)
    assert (f"user@{ALIAS}", 10, 0) in users_rows(amavisd_store)
    amavisd.link_alias_domains(amavisd_store, "example.com", [])  # the alias domain removed
    assert (f"@{ALIAS}", 5, 0) in users_rows(amavisd_store)
    assert inbound_rows(amavisd_store) == [(f"user@{ALIAS}", "bad@spam.org", "B")]
    assert outbound_rows(amavisd_store) == [(f"@{ALIAS}", "x@y.org", "B")]
    # Deleting the user: its own rows go, the alias row holding lists stays, unlinked.
    put(amavisd_store, USER, spam_score=4.0)
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS])
    amavisd.delete_accounts(amavisd_store, [USER])
    assert (f"user@{ALIAS}", 10, 0) in users_rows(amavisd_store)
    assert len(inbound_rows(amavisd_store)) == 1


def test_rename_moves_the_alias_rows(amavisd_store):
    put(amavisd_store, USER, spam_score=4.0)
    put(amavisd_store, "two@example.com", spam_score=2.0)
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, ALIAS2])
    new = "renamed@example.com"
    # provisioning.rename_account renames every address of the mapping, then links once more
    amavisd.rename_account(amavisd_store, USER, new)
    amavisd.rename_account(amavisd_store, f"user@{ALIAS}", f"renamed@{ALIAS}")  # user@alias2.org: missed
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, ALIAS2], accounts=[new])
    accounts = {e for e, _, _ in users_rows(amavisd_store)}
    assert {a for a in accounts if a.startswith(("user@", "renamed@"))} == {
        new, f"renamed@{ALIAS}", f"renamed@{ALIAS2}"}
    assert scores(amavisd_store, new, f"renamed@{ALIAS}", f"renamed@{ALIAS2}", f"two@{ALIAS2}") == (4.0, 4.0, 4.0, 2.0)


def test_deletes_take_the_alias_domains_rows(amavisd_store):
    for account in (USER, "two@example.com", DOMAIN, "keep@example.community", "@example.community"):
        fill(amavisd_store, account)
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, "old-alias.org"])
    amavisd.link_alias_domains(amavisd_store, "example.community", ["community-alias.org"])
    amavisd.delete_accounts(amavisd_store, [USER])
    accounts = {e for e, _, _ in users_rows(amavisd_store)}
    assert not {f"user@{ALIAS}", "user@old-alias.org"} & accounts and f"two@{ALIAS}" in accounts
    # An address of the alias domain with lists of its own (by hand) goes with the domain too.
    amavisd.add_entries(amavisd_store, f"hand@{ALIAS}", "inbound", "whitelist", amavisd.parse_entries("1.2.3.4"))
    # old-alias.org was removed from LDAP but its link missed (a crash): its rows are released
    amavisd.delete_domain(amavisd_store, "example.com", [ALIAS.upper()])
    accounts = {e for e, _, _ in users_rows(amavisd_store)}
    assert accounts == {"keep@example.community", "@example.community", "keep@community-alias.org",
                        "@community-alias.org"}
    assert {u for u, _, _ in inbound_rows(amavisd_store) + outbound_rows(amavisd_store)} == {
        "keep@example.community", "@example.community"}
    assert {n for (n,) in query(amavisd_store, "SELECT policy_name FROM policy")} == {
        "keep@example.community", "@example.community"}
    assert amavisd.delete_domain(amavisd_store, "example.com", [ALIAS]) == 0  # a repeat is harmless


def test_concurrent_links_and_policy_writes(amavisd_store):
    """Links of the whole domain racing policy PUTs, links and DELETEs of its users: all succeed;
    afterwards a last link leaves exactly one row per alias address of each policy."""
    for i in range(4):
        put(amavisd_store, f"u{i}@example.com", spam_score=float(i))
    stores = [SqlStore(amavisd_store.url, timeout=10) for _ in range(6)]
    barrier, failures = threading.Barrier(len(stores)), []

    def run(n, store):
        try:
            barrier.wait()
            for round_ in range(3):
                if n % 2:
                    amavisd.link_alias_domains(store, "example.com", [ALIAS, ALIAS2])
                else:
                    account = f"u{(n + round_) % 4}@example.com"
                    if round_ == 1:
                        amavisd.delete_policy(store, account)
                    else:
                        put(store, account, spam_score=float(n))
                        amavisd.link_alias_domains(store, "example.com", [ALIAS, ALIAS2], accounts=[account])
        except Exception as exc:  # noqa: BLE001 (reported below)
            failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(n, store)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.dispose()
    assert failures == []
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS, ALIAS2])
    own = {n: i for i, n in query(amavisd_store, "SELECT id, policy_name FROM policy")}
    rows = users_rows(amavisd_store)
    linked = sorted(e for e, _, pid in rows if pid and e.endswith(("@" + ALIAS, "@" + ALIAS2)))
    assert linked == sorted(f"{n.split('@')[0]}@{a}" for n in own for a in (ALIAS, ALIAS2))
    assert all(pid in own.values() for _, _, pid in rows if pid)  # nothing points at a deleted policy
    for name in own:
        assert scores(amavisd_store, f"{name.split('@')[0]}@{ALIAS}") == scores(amavisd_store, name)


@pytest.mark.parametrize("delete", ["accounts", "domain"])
def test_a_delete_racing_a_link_leaves_no_row_linked_to_its_deleted_policy(amavisd_store, delete):
    """A link holds the user's policy row (FOR UPDATE) and has written a row at an alias address
    when the user's (or the domain's) delete starts: the delete must wait for it and take that row
    too, not miss it and delete the policy under it (a row pointing at no policy, which a delete's
    repeat no longer finds, left at the address for its next owner)."""
    put(amavisd_store, USER, spam_score=4.0)
    own = policy_id(amavisd_store, USER)
    other = SqlStore(amavisd_store.url, timeout=10)
    done, failures = threading.Event(), []

    def run():
        try:
            if delete == "accounts":
                amavisd.delete_accounts(other, [USER])
            else:
                amavisd.delete_domain(other, "example.com")  # the alias domain already off its list
        except Exception as exc:  # noqa: BLE001 (reported below)
            failures.append(repr(exc))
        done.set()

    thread = None
    try:
        with amavisd_store.transaction() as conn:  # the link, half-way
            conn.execute(sa.select(amavisd.policy.c.id).where(amavisd.policy.c.id == own).with_for_update())
            conn.execute(amavisd.users.insert().values(email=f"user@{ALIAS}", priority=10, policy_id=own))
            thread = threading.Thread(target=run)
            thread.start()
            done.wait(1.0)
    finally:
        if thread is not None:
            thread.join()
        other.dispose()
    assert failures == []
    policies = {i for (i,) in query(amavisd_store, "SELECT id FROM policy")}
    assert [(e, pid) for e, _, pid in users_rows(amavisd_store) if pid and pid not in policies] == []
    assert users_rows(amavisd_store) == []


def test_alias_names_written_by_hand_that_are_no_domain_names_do_not_stop_a_delete(amavisd_store):
    """domainAliasName values come from LDAP as they are (hand-written ones too): one that is no
    domain name (an underscore, upper case) holds no rows of ours, and must not make the domain's
    delete (and so every repeat of it) a 500."""
    fill(amavisd_store, DOMAIN)
    amavisd.link_alias_domains(amavisd_store, "example.com", [ALIAS])
    assert amavisd.delete_domain(amavisd_store, "example.com", ["Bad_Name.example", ALIAS.upper()]) >= 1
    assert users_rows(amavisd_store) == []
    assert amavisd.release_foreign_links(amavisd_store, "example.org", ["Bad_Name.example"]) == 0
