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
