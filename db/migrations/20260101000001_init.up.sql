-- Every table of tenant data carries tenant_id and every primary or unique key
-- starts with it, so a distributed Postgres (Citus) can shard by tenant.
CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Looked up by hash before the tenant is known; under Citus this is a
-- reference table (small, replicated).
CREATE TABLE api_keys (
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           text NOT NULL,
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_key_hash ON api_keys (key_hash);

CREATE TABLE csat_configs (
    tenant_id          text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    enabled            boolean NOT NULL DEFAULT true,
    survey_delay_hours integer NOT NULL DEFAULT 2 CHECK (survey_delay_hours BETWEEN 1 AND 72),
    survey_expiry_days integer NOT NULL DEFAULT 7 CHECK (survey_expiry_days BETWEEN 1 AND 30),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE surveys (
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              text NOT NULL,
    conversation_id text NOT NULL,
    contact_email   text NOT NULL,
    contact_name    text,
    agent_id        text,
    team_id         text,
    channel         text,
    locale          text,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'completed', 'expired')),
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    feedback        text,
    flagged         boolean NOT NULL DEFAULT false,
    token_hash      bytea,
    resolved_at     timestamptz NOT NULL,
    scheduled_for   timestamptz NOT NULL,
    sent_at         timestamptz,
    expires_at      timestamptz,
    responded_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, conversation_id)
);
-- Public links carry the tenant id next to the secret, so the token lookup
-- is routed by tenant too.
CREATE UNIQUE INDEX surveys_token ON surveys (tenant_id, token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX surveys_status ON surveys (tenant_id, status, id);
CREATE INDEX surveys_pending_due ON surveys (tenant_id, scheduled_for) WHERE status = 'pending';
CREATE INDEX surveys_sent_expiry ON surveys (tenant_id, expires_at) WHERE status = 'sent';
CREATE INDEX surveys_sent_at ON surveys (tenant_id, sent_at) INCLUDE (rating) WHERE sent_at IS NOT NULL;

-- One row per one-click rating, for the link-scanner rule.
CREATE TABLE survey_clicks (
    tenant_id  text NOT NULL,
    survey_id  text NOT NULL,
    clicked_at timestamptz NOT NULL,
    rating     smallint NOT NULL,
    PRIMARY KEY (tenant_id, survey_id, clicked_at, rating),
    FOREIGN KEY (tenant_id, survey_id) REFERENCES surveys (tenant_id, id) ON DELETE CASCADE
);
