-- Restaurants and their menus. Times are microseconds since the Unix epoch;
-- money is integer cents; flags are 0/1.
CREATE TABLE restaurants (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT    NOT NULL,
    cuisine    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    rating     DOUBLE PRECISION NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX restaurants_by_cuisine ON restaurants (lower(cuisine), id);

CREATE TABLE menu_items (
    id            TEXT COLLATE "C" PRIMARY KEY,
    restaurant_id TEXT COLLATE "C" NOT NULL REFERENCES restaurants (id),
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    price_cents   BIGINT  NOT NULL,
    available     BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (restaurant_id, name)
);
CREATE INDEX menu_items_by_restaurant ON menu_items (restaurant_id, id);
