"""SQL table definitions, in two MetaData objects because the tables may live in two databases.

``iredapd_metadata``: iRedAPD's ``throttle``, ``throttle_tracking`` and ``greylisting*``, shaped as iRedAPD's own DDL
(``SQL/iredapd.{mysql,pgsql}`` + ``SQL/update/5.0-max_rcpts.*``) on each backend; SQLite has no
upstream schema and follows the MySQL one.  ``schema/sql/iredapd.*.sql`` are the same tables as
plain DDL for admins.

``iredadmin_metadata``: our own tables (deleted mailboxes, API sessions, login failures).
"""

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

_MYSQL = ("mysql", "mariadb")

iredapd_metadata = sa.MetaData()
iredadmin_metadata = sa.MetaData()

# Upstream types where MySQL and PostgreSQL differ.  The base type is PostgreSQL's; SQLite needs
# INTEGER (not BIGINT) for an auto-incrementing primary key.
_THROTTLE_ID = sa.Integer().with_variant(mysql.BIGINT(20, unsigned=True), *_MYSQL)  # pg: SERIAL
_TID = sa.BigInteger().with_variant(mysql.BIGINT(20, unsigned=True), *_MYSQL)
_PRIORITY = sa.BigInteger().with_variant(mysql.TINYINT(1, unsigned=True), *_MYSQL)
_UNSIGNED_INT = sa.BigInteger().with_variant(mysql.INTEGER(10, unsigned=True), *_MYSQL)
_UNSIGNED_MEDIUMINT = sa.BigInteger().with_variant(mysql.MEDIUMINT(8, unsigned=True), *_MYSQL)
_LIMIT = sa.BigInteger().with_variant(mysql.BIGINT(20), *_MYSQL)
# Our own tables: BIGINT ids, INTEGER on SQLite (rowid alias).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _counter(name, type_):
    return sa.Column(name, type_, nullable=False, server_default=sa.text("0"))


def _limit(name):
    # -1: inherit from the row of next lower priority; 0: unlimited; N > 0: the limit.
    return sa.Column(name, _LIMIT, nullable=False, server_default=sa.text("-1"))


throttle = sa.Table(
    "throttle",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(255), nullable=False),  # user@domain, @domain, @. (global), ...
    sa.Column("kind", sa.String(10), nullable=False, server_default="outbound"),  # outbound, inbound
    _counter("priority", _PRIORITY),  # iRedAPD applies rows in descending priority
    _counter("period", _UNSIGNED_INT),  # seconds; a row with period 0 is ignored
    _limit("msg_size"),  # bytes per message
    _limit("max_msgs"),  # messages per period
    _limit("max_quota"),  # bytes per period
    _limit("max_rcpts"),  # recipients per message (iRedAPD >= 5.0)
    mysql_engine="InnoDB",
)
# Upstream MySQL has UNIQUE (account, kind); upstream PostgreSQL only a plain index on account.
sa.Index("account_kind", throttle.c.account, throttle.c.kind, unique=True).ddl_if(dialect=(*_MYSQL, "sqlite"))
sa.Index("idx_account", throttle.c.account).ddl_if(dialect="postgresql")

throttle_tracking = sa.Table(
    "throttle_tracking",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    # Upstream PostgreSQL leaves tid nullable without a default; iRedAPD always writes it.
    sa.Column("tid", _TID, sa.ForeignKey("throttle.id"), nullable=False, server_default=sa.text("0")),
    sa.Column("account", sa.String(255), nullable=False, server_default=""),  # the tracked address
    _counter("period", _UNSIGNED_INT),
    _counter("cur_msgs", _UNSIGNED_MEDIUMINT),
    _counter("cur_quota", _UNSIGNED_INT),
    _counter("init_time", _UNSIGNED_INT),  # epoch seconds
    _counter("last_time", _UNSIGNED_INT),
    _counter("last_notify_time", _UNSIGNED_INT),
    mysql_engine="InnoDB",
)
sa.Index("tid_account", throttle_tracking.c.tid, throttle_tracking.c.account, unique=True).ddl_if(
    dialect=(*_MYSQL, "sqlite")
)
sa.Index("idx_tid_account", throttle_tracking.c.tid, throttle_tracking.c.account).ddl_if(dialect="postgresql")


# -- iRedAPD's greylisting tables (SQL/iredapd.{mysql,pgsql}) ---------------------------------
# MySQL and PostgreSQL differ in lengths and integer types; index names are MySQL's implicit
# ones there (named after the first column, per table) and PostgreSQL's explicit ones elsewhere
# (SQLite, like PostgreSQL, wants names unique in the whole database).
_GL_ADDRESS = sa.String(255).with_variant(mysql.VARCHAR(100), *_MYSQL)
_GL_PRIORITY = sa.SmallInteger().with_variant(mysql.TINYINT(2), *_MYSQL)
_FLAG = sa.SmallInteger().with_variant(mysql.TINYINT(1), *_MYSQL)


def _index(mysql_name, other_name, *columns, unique=False):
    sa.Index(mysql_name, *columns, unique=unique).ddl_if(dialect=_MYSQL)
    sa.Index(other_name, *columns, unique=unique).ddl_if(dialect=("postgresql", "sqlite"))


def _text(name, type_=None):
    return sa.Column(name, type_ if type_ is not None else sa.String(255), nullable=False, server_default="")


# One row per (recipient account, sender): active=1 greylists, active=0 exempts; iRedAPD takes
# the first row matching the mail in descending (priority, sender_priority).
greylisting = sa.Table(
    "greylisting",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    _text("account", _GL_ADDRESS),  # user@domain, @domain, @. (global)
    _counter("priority", _GL_PRIORITY),
    _text("sender", _GL_ADDRESS),  # @. (anyone), or a sender address, domain or IP
    _counter("sender_priority", _GL_PRIORITY),
    _text("comment"),
    sa.Column("active", _FLAG, nullable=False, server_default=sa.text("1")),
    mysql_engine="InnoDB",
)
_index("account", "idx_greylisting_account_sender", greylisting.c.account, greylisting.c.sender, unique=True)
_index("comment", "idx_greylisting_comment", greylisting.c.comment)

# Senders never greylisted for mail to an account: IP, CIDR, user@domain, @domain, @.domain.
greylisting_whitelists = sa.Table(
    "greylisting_whitelists",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    _text("account", _GL_ADDRESS),
    _text("sender", _GL_ADDRESS),
    _text("comment"),
    mysql_engine="InnoDB",
)
_index("account", "idx_greylisting_whitelists_account_sender", greylisting_whitelists.c.account,
       greylisting_whitelists.c.sender, unique=True)
_index("comment", "idx_greylisting_whitelists_comment", greylisting_whitelists.c.comment)

# Sender domains whose SPF/MX hosts iRedAPD's cron (tools/spf_to_greylist_whitelists.py) writes
# into greylisting_whitelist_domain_spf, with comment "AUTO-UPDATE: <domain>".
greylisting_whitelist_domains = sa.Table(
    "greylisting_whitelist_domains",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    _text("domain"),
    mysql_engine="InnoDB",
)
_index("domain", "idx_greylisting_whitelist_domains_domain", greylisting_whitelist_domains.c.domain, unique=True)

greylisting_whitelist_domain_spf = sa.Table(
    "greylisting_whitelist_domain_spf",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    _text("account", _GL_ADDRESS),
    _text("sender", _GL_ADDRESS),
    _text("comment"),
    mysql_engine="InnoDB",
)
_index("account", "idx_greylisting_whitelist_domain_spf_account_sender", greylisting_whitelist_domain_spf.c.account,
       greylisting_whitelist_domain_spf.c.sender, unique=True)
_index("comment", "idx_greylisting_whitelist_domain_spf_comment", greylisting_whitelist_domain_spf.c.comment)

# iRedAPD's own bookkeeping of (sender, recipient, client) triplets; we only delete from it.
greylisting_tracking = sa.Table(
    "greylisting_tracking",
    iredapd_metadata,
    sa.Column("id", _THROTTLE_ID, primary_key=True, autoincrement=True),
    sa.Column("sender", sa.String(255), nullable=False),
    sa.Column("recipient", sa.String(255), nullable=False),
    sa.Column("client_address", sa.String(40), nullable=False),
    _text("sender_domain"),
    _text("rcpt_domain"),
    _counter("init_time", _UNSIGNED_INT),
    _counter("block_expired", _UNSIGNED_INT),
    _counter("record_expired", _UNSIGNED_INT),
    _counter("blocked_count", _LIMIT),
    _counter("passed", _FLAG),
    mysql_engine="InnoDB",
)
_index("sender", "idx_greylisting_tracking_key", greylisting_tracking.c.sender, greylisting_tracking.c.recipient,
       greylisting_tracking.c.client_address, unique=True)
_index("sender_domain", "idx_greylisting_tracking_sender_domain", greylisting_tracking.c.sender_domain)
_index("rcpt_domain", "idx_greylisting_tracking_rcpt_domain", greylisting_tracking.c.rcpt_domain)
_index("client_address_passed", "idx_greylisting_tracking_client_address_passed",
       greylisting_tracking.c.client_address, greylisting_tracking.c.passed)

# Shaped like iRedAdmin's table of the same name.
deleted_mailboxes = sa.Table(
    "deleted_mailboxes",
    iredadmin_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("timestamp", sa.DateTime, nullable=False, server_default=sa.func.now(), index=True),
    sa.Column("username", sa.String(255), nullable=False, server_default="", index=True),
    sa.Column("domain", sa.String(255), nullable=False, server_default="", index=True),
    sa.Column("maildir", sa.Text, nullable=False),
    sa.Column("admin", sa.String(255), nullable=False, server_default="", index=True),
    sa.Column("delete_date", sa.Date, nullable=True, index=True),  # NULL: keep forever
    mysql_engine="InnoDB",
)

api_sessions = sa.Table(
    "api_sessions",
    iredadmin_metadata,
    sa.Column("id_hash", sa.CHAR(64), primary_key=True),  # sha256 hex of the session token
    sa.Column("username", sa.String(255), nullable=False, index=True),
    sa.Column("admin_dn", sa.String(1024), nullable=False),
    sa.Column("is_global_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.BigInteger, nullable=False),  # epoch seconds
    sa.Column("last_seen", sa.BigInteger, nullable=False, index=True),
    sa.Column("checked_at", sa.BigInteger, nullable=False),
    mysql_engine="InnoDB",
)

login_failures = sa.Table(
    "login_failures",
    iredadmin_metadata,
    sa.Column("key", sa.String(300), primary_key=True),  # "ip:1.2.3.4" or "user:a@b.c"
    sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("window_start", sa.BigInteger, nullable=False),  # epoch seconds
    mysql_engine="InnoDB",
)


# Dovecot's realtime quota and last-login tables, which iRedMail keeps in the iredadmin database on
# an LDAP server (dovecot-used-quota.conf, dovecot-last-login.conf; DDL in iRedMail's
# samples/dovecot/sql/).  Dovecot creates and writes them; we only read, and never create them.
dovecot_metadata = sa.MetaData()

used_quota = sa.Table(
    "used_quota",
    dovecot_metadata,
    sa.Column("username", sa.String(255), primary_key=True),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("messages", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("domain", sa.String(255), nullable=False, server_default=""),
)

last_login = sa.Table(
    "last_login",
    dovecot_metadata,
    sa.Column("username", sa.String(255), primary_key=True),
    sa.Column("domain", sa.String(255), nullable=False, server_default=""),
    sa.Column("imap", sa.Integer),  # Unix time of the last IMAP login, written by Dovecot's last_login plugin
    sa.Column("pop3", sa.Integer),
    sa.Column("lda", sa.Integer),  # last delivery (LDA or LMTP)
)


# -- Amavisd's lookup tables ----------------------------------------------------------------------
# ``amavisd_metadata``: the read-only (@lookup_sql_dsn) part of Amavisd's schema as iRedMail creates
# it (Amavisd's README.sql-mysql / README.sql-pg, plus iRedMail's policy_name VARCHAR(255) NOT NULL
# with a unique index), and iRedAPD's outbound_wblist.  Amavisd reads users + policy (per-recipient
# policy) and wblist + mailaddr; iRedAPD's amavisd_wblist plugin reads wblist and outbound_wblist.
# SQLite has no upstream schema; it follows PostgreSQL's, with text addresses.
amavisd_metadata = sa.MetaData()


class AmavisdAddress(sa.types.TypeDecorator):
    """users.email / mailaddr.email: VARBINARY(255) on MySQL, BYTEA on PostgreSQL (upstream), TEXT
    on SQLite; str in Python either way (addresses are stored UTF-8, lower-cased)."""

    impl = sa.String(255)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(255))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.LargeBinary())
        return dialect.type_descriptor(sa.String(255))

    def process_bind_param(self, value, dialect):
        if value is not None and dialect.name != "sqlite":
            return value.encode("utf-8")
        return value

    def process_result_value(self, value, dialect):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return value


_AMAVISD_ID = sa.Integer().with_variant(mysql.INTEGER(unsigned=True), *_MYSQL)  # pg: serial
_AMAVISD_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

amavisd_users = sa.Table(
    "users",
    amavisd_metadata,
    sa.Column("id", _AMAVISD_ID, primary_key=True, autoincrement=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("7")),  # higher wins
    sa.Column("policy_id", _AMAVISD_ID, nullable=False, server_default=sa.text("1")),  # policy.id, 0: none
    sa.Column("email", AmavisdAddress, nullable=False, unique=True),  # user@d, @d, @.d, @.
    sa.Column("fullname", sa.String(255)),  # not used by Amavisd
    **_AMAVISD_TABLE_ARGS,
)

amavisd_mailaddr = sa.Table(
    "mailaddr",
    amavisd_metadata,
    sa.Column("id", _AMAVISD_ID, primary_key=True, autoincrement=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("7")),
    sa.Column("email", AmavisdAddress, nullable=False, unique=True),  # also IPs and CIDR networks
    **_AMAVISD_TABLE_ARGS,
)

amavisd_wblist = sa.Table(  # inbound: rid = users.id (recipient), sid = mailaddr.id (sender)
    "wblist",
    amavisd_metadata,
    sa.Column("rid", _AMAVISD_ID, primary_key=True, autoincrement=False),
    sa.Column("sid", _AMAVISD_ID, primary_key=True, autoincrement=False),
    sa.Column("wb", sa.String(10), nullable=False),  # W white, B black
    **_AMAVISD_TABLE_ARGS,
)

amavisd_outbound_wblist = sa.Table(  # outbound: sid = users.id (local sender), rid = mailaddr.id
    "outbound_wblist",
    amavisd_metadata,
    sa.Column("rid", _AMAVISD_ID, primary_key=True, autoincrement=False),
    sa.Column("sid", _AMAVISD_ID, primary_key=True, autoincrement=False),
    sa.Column("wb", sa.String(10), nullable=False),
    **_AMAVISD_TABLE_ARGS,
)


def _flag(name):
    return sa.Column(name, sa.CHAR(1))  # Y/N; NULL: not set here, Amavisd reads the next row


def _text64(name):
    return sa.Column(name, sa.String(64))


_LEVEL = sa.Float().with_variant(sa.REAL(), "postgresql")

amavisd_policy = sa.Table(
    "policy",
    amavisd_metadata,
    sa.Column("id", _AMAVISD_ID, primary_key=True, autoincrement=True),
    sa.Column("policy_name", sa.String(255), nullable=False, server_default=""),  # iRedMail: the account
    *(_flag(name) for name in ("virus_lover", "spam_lover", "unchecked_lover", "banned_files_lover",
                               "bad_header_lover", "bypass_virus_checks", "bypass_spam_checks",
                               "bypass_banned_checks", "bypass_header_checks")),
    *(_text64(name) for name in ("virus_quarantine_to", "spam_quarantine_to", "banned_quarantine_to",
                                 "unchecked_quarantine_to", "bad_header_quarantine_to",
                                 "clean_quarantine_to", "archive_quarantine_to")),
    *(sa.Column(name, _LEVEL) for name in ("spam_tag_level", "spam_tag2_level", "spam_tag3_level",
                                           "spam_kill_level", "spam_dsn_cutoff_level",
                                           "spam_quarantine_cutoff_level")),
    *(_text64(name) for name in ("addr_extension_virus", "addr_extension_spam", "addr_extension_banned",
                                 "addr_extension_bad_header")),
    *(_flag(name) for name in ("warnvirusrecip", "warnbannedrecip", "warnbadhrecip")),
    *(_text64(name) for name in ("newvirus_admin", "virus_admin", "banned_admin", "bad_header_admin",
                                 "spam_admin", "spam_subject_tag", "spam_subject_tag2", "spam_subject_tag3")),
    sa.Column("message_size_limit", sa.Integer),
    *(_text64(name) for name in ("banned_rulenames", "disclaimer_options", "forward_method", "sa_userconf",
                                 "sa_username")),
    **_AMAVISD_TABLE_ARGS,
)
sa.Index("policy_idx_policy_name", amavisd_policy.c.policy_name, unique=True)  # iRedMail's
