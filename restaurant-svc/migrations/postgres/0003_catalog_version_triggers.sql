-- Every write to the catalog raises its version and stamps the rows it
-- writes, whoever makes it: a trigger, so that a replica of an older build
-- (during a rolling upgrade, one that knows nothing of versions) cannot
-- write a row that replicas serving the catalog from memory would miss.
-- The counter's row lock, held to the commit, makes versions commit in
-- order.
CREATE FUNCTION stamp_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1 RETURNING version INTO NEW.version;
    RETURN NEW;
END
$$;
CREATE TRIGGER restaurants_stamped BEFORE INSERT OR UPDATE ON restaurants
    FOR EACH ROW EXECUTE FUNCTION stamp_catalog_version();
CREATE TRIGGER menu_items_stamped BEFORE INSERT OR UPDATE ON menu_items
    FOR EACH ROW EXECUTE FUNCTION stamp_catalog_version();
