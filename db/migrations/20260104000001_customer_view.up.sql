-- What the customer sees: per-tenant branding, email templates and locale,
-- a separate unsubscribe secret per survey, and per-tenant opt-outs.
ALTER TABLE csat_configs
    ADD COLUMN brand_name     text NOT NULL DEFAULT '',
    ADD COLUMN logo_url       text NOT NULL DEFAULT '',
    ADD COLUMN accent_color   text NOT NULL DEFAULT '',
    ADD COLUMN default_locale text NOT NULL DEFAULT '',
    ADD COLUMN email_subject  text NOT NULL DEFAULT '',
    ADD COLUMN email_message  text NOT NULL DEFAULT '',
    ADD COLUMN button_labels  text[];

ALTER TABLE surveys ADD COLUMN unsubscribe_hash bytea;
CREATE UNIQUE INDEX surveys_unsubscribe ON surveys (tenant_id, unsubscribe_hash)
    WHERE unsubscribe_hash IS NOT NULL;

-- A contact who opted out is never surveyed again by that tenant. The email
-- is stored lower-cased.
CREATE TABLE csat_unsubscribes (
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email      text NOT NULL,
    survey_id  text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, email)
);

-- The tenant wall (row-level security), as csat_protect_tenant_table in the
-- row_level_security migration sets it up; written out here because this
-- migration may run before that function exists.
ALTER TABLE csat_unsubscribes ENABLE ROW LEVEL SECURITY;
ALTER TABLE csat_unsubscribes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON csat_unsubscribes
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
