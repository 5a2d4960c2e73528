-- The ledger auditor's tally of a topic (services/coffee_auditor/state.py, docs/ledger.md): what it has
-- read of the orders topic and counted, so that a restarted auditor resumes instead of re-reading.
CREATE TABLE ledger_tally (
    topic                text        PRIMARY KEY,
    revision             bigint      NOT NULL,  -- one more per save: a process holding an older one reloads
    newest_ms            bigint      NOT NULL,  -- newest record time read (ms since the epoch)
    incomplete_before_ms bigint      NOT NULL,  -- records before this may have been deleted unread (retention)
    counted              bigint      NOT NULL,  -- records read, by outcome
    duplicate            bigint      NOT NULL,
    invalid              bigint      NOT NULL,
    saved_at             timestamptz NOT NULL
);

CREATE TABLE ledger_positions (
    topic           text    NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint  NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);

-- Distinct valid orders and their revenue per store (or _all) and business day.
CREATE TABLE ledger_totals (
    topic         text   NOT NULL,
    store_id      text   NOT NULL,
    day           date   NOT NULL,
    orders        bigint NOT NULL,
    revenue_cents bigint NOT NULL,
    PRIMARY KEY (topic, store_id, day)
);

-- The message_ids of the job's dedup window, by hour of record time (hours since the epoch).
CREATE TABLE ledger_seen (
    topic      text    NOT NULL,
    hour       integer NOT NULL,
    message_id uuid    NOT NULL,
    PRIMARY KEY (topic, hour, message_id)
);
