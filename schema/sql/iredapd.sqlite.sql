-- iRedAPD throttle tables for SQLite.  iRedAPD itself has no SQLite schema; these follow its
-- MySQL one (UNIQUE (account, kind), UNIQUE (tid, account)).  iredapi-ldap creates them by
-- itself in its embedded database; this file is for creating them by hand:
-- sqlite3 iredapd.sqlite < iredapd.sqlite.sql
--
-- Limits (msg_size, max_msgs, max_quota, max_rcpts): -1 = use the row of next lower priority,
-- 0 = unlimited, N > 0 = the limit.  Sizes in bytes, period in seconds.

CREATE TABLE IF NOT EXISTS throttle (
    id          INTEGER         NOT NULL,
    account     VARCHAR(255)    NOT NULL,                       -- user@domain, @domain, @. (global)
    kind        VARCHAR(10)     NOT NULL DEFAULT 'outbound',    -- outbound (sender), inbound (recipient)
    priority    BIGINT          NOT NULL DEFAULT 0,             -- higher first: user 100, domain 60, global 0
    period      BIGINT          NOT NULL DEFAULT 0,             -- 0: the row is ignored
    msg_size    BIGINT          NOT NULL DEFAULT -1,            -- per message
    max_msgs    BIGINT          NOT NULL DEFAULT -1,            -- per period
    max_quota   BIGINT          NOT NULL DEFAULT -1,            -- per period
    max_rcpts   BIGINT          NOT NULL DEFAULT -1,            -- per message (iRedAPD >= 5.0)
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS account_kind ON throttle (account, kind);

CREATE TABLE IF NOT EXISTS throttle_tracking (
    id                  INTEGER         NOT NULL,
    tid                 BIGINT          NOT NULL DEFAULT 0,         -- throttle.id
    account             VARCHAR(255)    NOT NULL DEFAULT '',        -- the tracked address
    period              BIGINT          NOT NULL DEFAULT 0,
    cur_msgs            BIGINT          NOT NULL DEFAULT 0,
    cur_quota           BIGINT          NOT NULL DEFAULT 0,
    init_time           BIGINT          NOT NULL DEFAULT 0,         -- epoch seconds
    last_time           BIGINT          NOT NULL DEFAULT 0,
    last_notify_time    BIGINT          NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    FOREIGN KEY (tid) REFERENCES throttle (id)                      -- no ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS tid_account ON throttle_tracking (tid, account);

-- Greylisting (iRedAPD's plugins/greylisting.py), as in iRedAPD's SQL/iredapd.pgsql (iRedAPD has
-- no SQLite schema; these follow its PostgreSQL one, whose index names are unique per database).
-- greylisting: per (recipient account, sender) active=1 greylists, active=0 exempts; the first
-- row matching a mail in descending (priority, sender_priority) decides.
CREATE TABLE IF NOT EXISTS greylisting (
    id              INTEGER NOT NULL,
    account         VARCHAR(255)    NOT NULL DEFAULT '',    -- user@domain, @domain, @. (global)
    priority        SMALLINT        NOT NULL DEFAULT 0,     -- user 100, domain 60, global 0
    sender          VARCHAR(255)    NOT NULL DEFAULT '',    -- @. (anyone), address, domain, IP
    sender_priority SMALLINT        NOT NULL DEFAULT 0,
    comment         VARCHAR(255)    NOT NULL DEFAULT '',
    active          SMALLINT        NOT NULL DEFAULT 1,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_account_sender ON greylisting (account, sender);
CREATE INDEX IF NOT EXISTS idx_greylisting_comment ON greylisting (comment);

CREATE TABLE IF NOT EXISTS greylisting_whitelists (
    id              INTEGER NOT NULL,
    account         VARCHAR(255)    NOT NULL DEFAULT '',
    sender          VARCHAR(255)    NOT NULL DEFAULT '',    -- IP, CIDR, user@domain, @domain, @.domain
    comment         VARCHAR(255)    NOT NULL DEFAULT '',
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_whitelists_account_sender ON greylisting_whitelists (account, sender);
CREATE INDEX IF NOT EXISTS idx_greylisting_whitelists_comment ON greylisting_whitelists (comment);

CREATE TABLE IF NOT EXISTS greylisting_whitelist_domains (
    id              INTEGER NOT NULL,
    domain          VARCHAR(255)    NOT NULL DEFAULT '',
    PRIMARY KEY (id)     -- resolved by iRedAPD's SPF cron job
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_whitelist_domains_domain ON greylisting_whitelist_domains (domain);

CREATE TABLE IF NOT EXISTS greylisting_whitelist_domain_spf (
    id              INTEGER NOT NULL,
    account         VARCHAR(255)    NOT NULL DEFAULT '',
    sender          VARCHAR(255)    NOT NULL DEFAULT '',
    comment         VARCHAR(255)    NOT NULL DEFAULT '',
    PRIMARY KEY (id)     -- AUTO-UPDATE: <domain>
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_whitelist_domain_spf_account_sender
    ON greylisting_whitelist_domain_spf (account, sender);
CREATE INDEX IF NOT EXISTS idx_greylisting_whitelist_domain_spf_comment ON greylisting_whitelist_domain_spf (comment);

CREATE TABLE IF NOT EXISTS greylisting_tracking (
    id              INTEGER NOT NULL,
    sender          VARCHAR(255)    NOT NULL,
    recipient       VARCHAR(255)    NOT NULL,
    client_address  VARCHAR(40)     NOT NULL,
    sender_domain   VARCHAR(255)    NOT NULL DEFAULT '',
    rcpt_domain     VARCHAR(255)    NOT NULL DEFAULT '',
    init_time       BIGINT          NOT NULL DEFAULT 0,
    block_expired   BIGINT          NOT NULL DEFAULT 0,
    record_expired  BIGINT          NOT NULL DEFAULT 0,
    blocked_count   BIGINT          NOT NULL DEFAULT 0,
    passed          SMALLINT        NOT NULL DEFAULT 0,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_tracking_key ON greylisting_tracking (sender, recipient, client_address);
CREATE INDEX IF NOT EXISTS idx_greylisting_tracking_sender_domain ON greylisting_tracking (sender_domain);
CREATE INDEX IF NOT EXISTS idx_greylisting_tracking_rcpt_domain ON greylisting_tracking (rcpt_domain);
CREATE INDEX IF NOT EXISTS idx_greylisting_tracking_client_address_passed ON greylisting_tracking (client_address, passed);
