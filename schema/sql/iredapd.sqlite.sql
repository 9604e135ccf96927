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
