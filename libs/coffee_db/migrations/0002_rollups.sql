-- Rollups written by the Flink job as upserts of absolute values (replays rewrite the same numbers).
CREATE TABLE sales_by_minute (
    store_id      text        NOT NULL,
    sku           text        NOT NULL,
    minute        timestamptz NOT NULL,
    quantity      bigint      NOT NULL,
    revenue_cents bigint      NOT NULL,
    order_count   bigint      NOT NULL,
    PRIMARY KEY (store_id, sku, minute)
);

CREATE TABLE sales_by_hour (
    store_id      text        NOT NULL,
    hour          timestamptz NOT NULL,
    order_count   bigint      NOT NULL,
    revenue_cents bigint      NOT NULL,
    quantity      bigint      NOT NULL,
    PRIMARY KEY (store_id, hour)
);
