-- iRedAPD throttle tables for PostgreSQL: the same columns, defaults and indexes as iRedAPD's
-- SQL/iredapd.pgsql with SQL/update/5.0-max_rcpts.pgsql.  Needed only where iRedAPD has not
-- created them.  Load into iRedAPD's database: psql -d iredapd -f iredapd.pgsql.sql
--
-- Limits (msg_size, max_msgs, max_quota, max_rcpts): -1 = use the row of next lower priority,
-- 0 = unlimited, N > 0 = the limit.  Sizes in bytes, period in seconds.
-- Unlike MySQL, iRedAPD has no UNIQUE (account, kind) here; writers serialize themselves.

CREATE TABLE IF NOT EXISTS throttle (
    id          SERIAL PRIMARY KEY,
    account     VARCHAR(255)    NOT NULL,                       -- user@domain, @domain, @. (global)
    kind        VARCHAR(10)     NOT NULL DEFAULT 'outbound',    -- outbound (sender), inbound (recipient)
    priority    BIGINT          NOT NULL DEFAULT 0,             -- higher first: user 100, domain 60, global 0
    period      BIGINT          NOT NULL DEFAULT 0,             -- 0: the row is ignored
    msg_size    BIGINT          NOT NULL DEFAULT -1,            -- per message
    max_msgs    BIGINT          NOT NULL DEFAULT -1,            -- per period
    max_quota   BIGINT          NOT NULL DEFAULT -1,            -- per period
    max_rcpts   BIGINT          NOT NULL DEFAULT -1             -- per message (iRedAPD >= 5.0)
);
CREATE INDEX IF NOT EXISTS idx_account ON throttle (account);

CREATE TABLE IF NOT EXISTS throttle_tracking (
    id                  SERIAL PRIMARY KEY,
    tid                 BIGINT          REFERENCES throttle (id),   -- no ON DELETE CASCADE
    account             VARCHAR(255)    NOT NULL DEFAULT '',        -- the tracked address
    period              BIGINT          NOT NULL DEFAULT 0,
    cur_msgs            BIGINT          NOT NULL DEFAULT 0,
    cur_quota           BIGINT          NOT NULL DEFAULT 0,
    init_time           BIGINT          NOT NULL DEFAULT 0,         -- epoch seconds
    last_time           BIGINT          NOT NULL DEFAULT 0,
    last_notify_time    BIGINT          NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_tid_account ON throttle_tracking (tid, account);

-- Greylisting (iRedAPD's plugins/greylisting.py), as in iRedAPD's SQL/iredapd.pgsql.
-- greylisting: per (recipient account, sender) active=1 greylists, active=0 exempts; the first
-- row matching a mail in descending (priority, sender_priority) decides.
CREATE TABLE IF NOT EXISTS greylisting (
    id              SERIAL PRIMARY KEY,
    account         VARCHAR(255)    NOT NULL DEFAULT '',    -- user@domain, @domain, @. (global)
    priority        SMALLINT        NOT NULL DEFAULT 0,     -- user 100, domain 60, global 0
    sender          VARCHAR(255)    NOT NULL DEFAULT '',    -- @. (anyone), address, domain, IP
    sender_priority SMALLINT        NOT NULL DEFAULT 0,
    comment         VARCHAR(255)    NOT NULL DEFAULT '',
    active          SMALLINT        NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_account_sender ON greylisting (account, sender);
CREATE INDEX IF NOT EXISTS idx_greylisting_comment ON greylisting (comment);

CREATE TABLE IF NOT EXISTS greylisting_whitelists (
    id              SERIAL PRIMARY KEY,
    account         VARCHAR(255)    NOT NULL DEFAULT '',
    sender          VARCHAR(255)    NOT NULL DEFAULT '',    -- IP, CIDR, user@domain, @domain, @.domain
    comment         VARCHAR(255)    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_whitelists_account_sender ON greylisting_whitelists (account, sender);
CREATE INDEX IF NOT EXISTS idx_greylisting_whitelists_comment ON greylisting_whitelists (comment);

CREATE TABLE IF NOT EXISTS greylisting_whitelist_domains (
    id              SERIAL PRIMARY KEY,
    domain          VARCHAR(255)    NOT NULL DEFAULT ''     -- resolved by iRedAPD's SPF cron job
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_whitelist_domains_domain ON greylisting_whitelist_domains (domain);

CREATE TABLE IF NOT EXISTS greylisting_whitelist_domain_spf (
    id              SERIAL PRIMARY KEY,
    account         VARCHAR(255)    NOT NULL DEFAULT '',
    sender          VARCHAR(255)    NOT NULL DEFAULT '',
    comment         VARCHAR(255)    NOT NULL DEFAULT ''     -- AUTO-UPDATE: <domain>
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_whitelist_domain_spf_account_sender
    ON greylisting_whitelist_domain_spf (account, sender);
CREATE INDEX IF NOT EXISTS idx_greylisting_whitelist_domain_spf_comment ON greylisting_whitelist_domain_spf (comment);

CREATE TABLE IF NOT EXISTS greylisting_tracking (
    id              SERIAL PRIMARY KEY,
    sender          VARCHAR(255)    NOT NULL,
    recipient       VARCHAR(255)    NOT NULL,
    client_address  VARCHAR(40)     NOT NULL,
    sender_domain   VARCHAR(255)    NOT NULL DEFAULT '',
    rcpt_domain     VARCHAR(255)    NOT NULL DEFAULT '',
    init_time       BIGINT          NOT NULL DEFAULT 0,
    block_expired   BIGINT          NOT NULL DEFAULT 0,
    record_expired  BIGINT          NOT NULL DEFAULT 0,
    blocked_count   BIGINT          NOT NULL DEFAULT 0,
    passed          SMALLINT        NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_greylisting_tracking_key ON greylisting_tracking (sender, recipient, client_address);
CREATE INDEX IF NOT EXISTS idx_greylisting_tracking_sender_domain ON greylisting_tracking (sender_domain);
CREATE INDEX IF NOT EXISTS idx_greylisting_tracking_rcpt_domain ON greylisting_tracking (rcpt_domain);
CREATE INDEX IF NOT EXISTS idx_greylisting_tracking_client_address_passed ON greylisting_tracking (client_address, passed);
