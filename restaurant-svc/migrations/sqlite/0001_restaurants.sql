-- Restaurants and their menus. Times are microseconds since the Unix epoch;
-- money is integer cents; flags are 0/1.
CREATE TABLE restaurants (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    cuisine    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    rating     REAL    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX restaurants_by_cuisine ON restaurants (lower(cuisine), id);

CREATE TABLE menu_items (
    id            TEXT    PRIMARY KEY,
    restaurant_id TEXT    NOT NULL REFERENCES restaurants (id),
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    price_cents   INTEGER NOT NULL,
    available     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (restaurant_id, name)
);
CREATE INDEX menu_items_by_restaurant ON menu_items (restaurant_id, id);
