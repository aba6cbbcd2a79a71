-- The example app's own table (run as signoff_owner; Signoff's schema comes from
-- `signoff db upgrade`). Host tables are not tenant tables: the host app is one tenant.
CREATE TABLE IF NOT EXISTS expense_report (
    id serial PRIMARY KEY,
    amount numeric(10, 2) NOT NULL,
    description varchar(500),
    status varchar(50),
    requires_approval boolean
);
GRANT SELECT, INSERT, UPDATE, DELETE ON expense_report TO signoff_app;
GRANT USAGE ON SEQUENCE expense_report_id_seq TO signoff_app;
