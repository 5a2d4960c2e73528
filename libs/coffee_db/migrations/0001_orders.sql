-- Order history, one row per accepted order; message_id is the idempotency key end to end.
CREATE TABLE orders (
    message_id      uuid        PRIMARY KEY,
    store_id        text        NOT NULL,
    placed_at       timestamptz NOT NULL,
    channel         text        NOT NULL,
    currency        char(3)     NOT NULL,
    total_cents     bigint      NOT NULL CHECK (total_cents >= 0),
    item_count      integer     NOT NULL CHECK (item_count >= 1),
    kafka_partition integer,
    kafka_offset    bigint,
    written_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_store_placed_idx ON orders (store_id, placed_at);

CREATE TABLE order_items (
    message_id       uuid    NOT NULL,  -- no FK: the job writes orders and items through separate sinks
    line_no          integer NOT NULL,
    sku              text    NOT NULL,
    name             text    NOT NULL,
    category         text    NOT NULL,
    origin           text,
    quantity         integer NOT NULL CHECK (quantity >= 1),
    unit_price_cents bigint  NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (message_id, line_no)
);
