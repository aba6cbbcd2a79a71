-- The user-global MFA tables (mfa_totp, mfa_recovery_code, mfa_token_verification;
-- docs/ARCHITECTURE.md §2); `:table` is the table's name. A transaction sees and
-- writes only the rows of the one user it bound with app.secret_owner; with none
-- bound it sees nothing and writes nothing. Not forced: the owner (migrations and
-- signoff.mfa_verification_purge) is not subject to it.
ALTER TABLE :table ENABLE ROW LEVEL SECURITY;
CREATE POLICY secret_owner ON :table
    USING (user_id = signoff.current_secret_owner())
    WITH CHECK (user_id = signoff.current_secret_owner());
