-- Orders, their lines and status history, and the outbox of notifications
-- not yet delivered to notify-svc. Times are microseconds since the Unix
-- epoch; money is integer cents.
CREATE TABLE orders (
    id               TEXT COLLATE "C" PRIMARY KEY,
    restaurant_id    TEXT COLLATE "C" NOT NULL,
    restaurant_name  TEXT    NOT NULL,
    customer         TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    total_cents      BIGINT  NOT NULL,
    delivery_address TEXT,
    note             TEXT,
    idempotency_key  TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    UNIQUE (customer, idempotency_key)
);
CREATE INDEX orders_by_customer ON orders (customer, id);
CREATE INDEX orders_by_restaurant ON orders (restaurant_id, id);
CREATE INDEX orders_by_status ON orders (status, id);

CREATE TABLE order_items (
    order_id         TEXT COLLATE "C" NOT NULL REFERENCES orders (id),
    line             BIGINT  NOT NULL,
    menu_item_id     TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    quantity         BIGINT  NOT NULL,
    unit_price_cents BIGINT  NOT NULL,
    line_total_cents BIGINT  NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- Each status is entered at most once: the state machine never loops.
CREATE TABLE order_status_history (
    order_id TEXT COLLATE "C" NOT NULL REFERENCES orders (id),
    status   TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    PRIMARY KEY (order_id, status)
);

CREATE TABLE outbox (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   TEXT    NOT NULL UNIQUE,
    order_id   TEXT COLLATE "C" NOT NULL,
    recipient  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
