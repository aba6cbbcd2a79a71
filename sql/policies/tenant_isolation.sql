-- Every tenant-owned table (docs/ARCHITECTURE.md §2); `:table` is the table's name.
ALTER TABLE :table ENABLE ROW LEVEL SECURITY;
ALTER TABLE :table FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON :table
    USING (tenant_id = signoff.current_tenant_id())
    WITH CHECK (tenant_id = signoff.current_tenant_id());
