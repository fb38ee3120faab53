-- API keys and the audit log (issue 8; ledger/key_store.h).
--
-- A key has one role; a customer key belongs to exactly one customer and no
-- other role names one. The secret ("tly_<key_id>_<64 hex>") is shown once
-- when the key is created and stored only as its SHA-256. A key is never
-- deleted (the audit log names it): revoking sets revoked_at, and the only
-- other change allowed is last_used_at.
CREATE TABLE api_keys (
    key_id         text COLLATE "C" PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    role           text NOT NULL CHECK (role IN ('customer', 'finance', 'sales', 'admin')),
    customer_id    text COLLATE "C" REFERENCES customers,
    secret_sha256  bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    label          text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL CHECK (created_by <> ''),
    expires_at     timestamptz,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    CONSTRAINT api_keys_customer_exactly_for_customer_role CHECK ((role = 'customer') = (customer_id IS NOT NULL)),
    CONSTRAINT api_keys_expires_after_created CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX api_keys_customer ON api_keys (customer_id) WHERE customer_id IS NOT NULL;

CREATE FUNCTION tally_api_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'revoked_at' - 'last_used_at') = (to_jsonb(OLD) - 'revoked_at' - 'last_used_at')
       AND (OLD.revoked_at IS NULL OR NEW.revoked_at IS NOT DISTINCT FROM OLD.revoked_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of API key % is not allowed: a key is only revoked (once) or marked used, never changed or deleted',
        TG_OP, OLD.key_id USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER api_keys_guard BEFORE UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tally_api_key_guard();
CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();

-- Who (actor "key:<key_id>" or "cli:<user>", and its role, "operator" for
-- the CLI) did what (action "key.create", "invoice.finalize", ...) to what
-- (target) when, with details as a JSON object. Append-only: the database
-- refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL CHECK (actor <> ''),
    role      text NOT NULL CHECK (role IN ('customer', 'finance', 'sales', 'admin', 'operator')),
    action    text NOT NULL CHECK (action <> ''),
    target    text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}' CONSTRAINT audit_log_detail_object CHECK (jsonb_typeof(detail) = 'object')
);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
