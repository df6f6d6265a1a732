-- The catalog's version. Every write to restaurants or menu_items raises it
-- in its own transaction and stamps the rows it writes with the new value,
-- so a replica that serves the catalog from memory finds what changed
-- since the version it holds (src/catalog.rs). Rows written before it
-- have version 1, the first.
CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

ALTER TABLE restaurants ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE menu_items ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX restaurants_by_version ON restaurants (version);
CREATE INDEX menu_items_by_version ON menu_items (version);

-- Lists are answered from memory now.
DROP INDEX restaurants_by_cuisine;
