-- Every write to the catalog raises its version and stamps the rows it
-- writes, whoever makes it: triggers, so that a replica of an older build
-- (during a rolling upgrade, one that knows nothing of versions) cannot
-- write a row that replicas serving the catalog from memory would miss.
-- AFTER triggers, since SQLite's cannot change NEW; an UPDATE OF the other
-- columns, so their own stamping does not fire them again.
CREATE TRIGGER restaurants_inserted AFTER INSERT ON restaurants
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    UPDATE restaurants SET version = (SELECT version FROM catalog_version WHERE id = 1) WHERE id = NEW.id;
END;
CREATE TRIGGER restaurants_updated AFTER UPDATE OF id, name, cuisine, address, rating, created_at ON restaurants
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    UPDATE restaurants SET version = (SELECT version FROM catalog_version WHERE id = 1) WHERE id = NEW.id;
END;
CREATE TRIGGER menu_items_inserted AFTER INSERT ON menu_items
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    UPDATE menu_items SET version = (SELECT version FROM catalog_version WHERE id = 1) WHERE id = NEW.id;
END;
CREATE TRIGGER menu_items_updated
    AFTER UPDATE OF id, restaurant_id, name, description, price_cents, available, created_at, updated_at ON menu_items
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    UPDATE menu_items SET version = (SELECT version FROM catalog_version WHERE id = 1) WHERE id = NEW.id;
END;
