-- iRedAPD throttle tables for MySQL/MariaDB: the same columns, defaults and indexes as
-- iRedAPD's SQL/iredapd.mysql with SQL/update/5.0-max_rcpts.mysql.  Needed only where iRedAPD
-- has not created them.  Load into iRedAPD's database: mysql iredapd < iredapd.mysql.sql
--
-- Limits (msg_size, max_msgs, max_quota, max_rcpts): -1 = use the row of next lower priority,
-- 0 = unlimited, N > 0 = the limit.  Sizes in bytes, period in seconds.

CREATE TABLE IF NOT EXISTS throttle (
    id          BIGINT(20) UNSIGNED     NOT NULL AUTO_INCREMENT,
    account     VARCHAR(255)            NOT NULL,                   -- user@domain, @domain, @. (global)
    kind        VARCHAR(10)             NOT NULL DEFAULT 'outbound', -- outbound (sender), inbound (recipient)
    priority    TINYINT(1) UNSIGNED     NOT NULL DEFAULT 0,         -- higher first: user 100, domain 60, global 0
    period      INT(10) UNSIGNED        NOT NULL DEFAULT 0,         -- 0: the row is ignored
    msg_size    BIGINT(20)              NOT NULL DEFAULT -1,        -- per message
    max_msgs    BIGINT(20)              NOT NULL DEFAULT -1,        -- per period
    max_quota   BIGINT(20)              NOT NULL DEFAULT -1,        -- per period
    max_rcpts   BIGINT(20)              NOT NULL DEFAULT -1,        -- per message (iRedAPD >= 5.0)
    PRIMARY KEY (id),
    UNIQUE INDEX account_kind (account, kind)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS throttle_tracking (
    id                  BIGINT(20) UNSIGNED     NOT NULL AUTO_INCREMENT,
    tid                 BIGINT(20) UNSIGNED     NOT NULL DEFAULT 0,     -- throttle.id
    account             VARCHAR(255)            NOT NULL DEFAULT '',    -- the tracked address
    period              INT(10) UNSIGNED        NOT NULL DEFAULT 0,
    cur_msgs            MEDIUMINT(8) UNSIGNED   NOT NULL DEFAULT 0,
    cur_quota           INT(10) UNSIGNED        NOT NULL DEFAULT 0,
    init_time           INT(10) UNSIGNED        NOT NULL DEFAULT 0,     -- epoch seconds
    last_time           INT(10) UNSIGNED        NOT NULL DEFAULT 0,
    last_notify_time    INT(10) UNSIGNED        NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    FOREIGN KEY (tid) REFERENCES throttle (id),                         -- no ON DELETE CASCADE
    UNIQUE INDEX tid_account (tid, account)
) ENGINE=InnoDB;

-- Greylisting (iRedAPD's plugins/greylisting.py), as in iRedAPD's SQL/iredapd.mysql.
-- greylisting: per (recipient account, sender) active=1 greylists, active=0 exempts; the first
-- row matching a mail in descending (priority, sender_priority) decides.
CREATE TABLE IF NOT EXISTS greylisting (
    id              BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
    account         VARCHAR(100)        NOT NULL DEFAULT '',    -- user@domain, @domain, @. (global)
    priority        TINYINT(2)          NOT NULL DEFAULT 0,     -- user 100, domain 60, global 0
    sender          VARCHAR(100)        NOT NULL DEFAULT '',    -- @. (anyone), address, domain, IP
    sender_priority TINYINT(2)          NOT NULL DEFAULT 0,
    comment         VARCHAR(255)        NOT NULL DEFAULT '',
    active          TINYINT(1)          NOT NULL DEFAULT 1,
    PRIMARY KEY (id),
    UNIQUE INDEX account (account, sender),
    INDEX comment (comment)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS greylisting_whitelists (
    id              BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
    account         VARCHAR(100)        NOT NULL DEFAULT '',
    sender          VARCHAR(100)        NOT NULL DEFAULT '',    -- IP, CIDR, user@domain, @domain, @.domain
    comment         VARCHAR(255)        NOT NULL DEFAULT '',
    PRIMARY KEY (id),
    UNIQUE INDEX account (account, sender),
    INDEX comment (comment)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS greylisting_whitelist_domains (
    id              BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
    domain          VARCHAR(255)        NOT NULL DEFAULT '',    -- resolved by iRedAPD's SPF cron job
    PRIMARY KEY (id),
    UNIQUE INDEX domain (domain)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS greylisting_whitelist_domain_spf (
    id              BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
    account         VARCHAR(100)        NOT NULL DEFAULT '',
    sender          VARCHAR(100)        NOT NULL DEFAULT '',
    comment         VARCHAR(255)        NOT NULL DEFAULT '',    -- AUTO-UPDATE: <domain>
    PRIMARY KEY (id),
    UNIQUE INDEX account (account, sender),
    INDEX comment (comment)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS greylisting_tracking (
    id              BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
    sender          VARCHAR(255)        NOT NULL,
    recipient       VARCHAR(255)        NOT NULL,
    client_address  VARCHAR(40)         NOT NULL,
    sender_domain   VARCHAR(255)        NOT NULL DEFAULT '',
    rcpt_domain     VARCHAR(255)        NOT NULL DEFAULT '',
    init_time       INT(10) UNSIGNED    NOT NULL DEFAULT 0,
    block_expired   INT(10) UNSIGNED    NOT NULL DEFAULT 0,
    record_expired  INT(10) UNSIGNED    NOT NULL DEFAULT 0,
    blocked_count   BIGINT(20)          NOT NULL DEFAULT 0,
    passed          TINYINT(1)          NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE INDEX sender (sender, recipient, client_address),
    INDEX sender_domain (sender_domain),
    INDEX rcpt_domain (rcpt_domain),
    INDEX client_address_passed (client_address, passed)
) ENGINE=InnoDB;
