-- Invoices: written by `tally invoice run` as drafts, numbered and frozen by
-- `tally invoice finalize`, corrected only by credit notes and by
-- adjustments on later invoices (docs/invoices.md).
--
-- Amounts are numeric, written from the pricing library's exact decimals
-- as text and read back as the same text: the canonical form an invoice's
-- SHA-256 covers is built from these rows (billing/invoice_document.h).

-- Who issues invoices and credit notes: the legal entity printed on them,
-- and the prefixes of its numbers. A plan may name its issuer
-- (issuer_plans); every other plan's invoices come from the default one.
CREATE TABLE issuers (
    issuer             text COLLATE "C" PRIMARY KEY,
    name               text NOT NULL,
    address            text NOT NULL DEFAULT '',
    tax_id             text NOT NULL DEFAULT '',
    email              text NOT NULL DEFAULT '',
    invoice_prefix     text NOT NULL DEFAULT 'INV',
    credit_note_prefix text NOT NULL DEFAULT 'CN',
    is_default         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX issuers_one_default ON issuers (is_default) WHERE is_default;

CREATE TABLE issuer_plans (
    plan    text COLLATE "C" PRIMARY KEY,
    issuer  text COLLATE "C" NOT NULL REFERENCES issuers
);

-- Gapless numbers: one counter row per issuer, year and kind, taken with
-- UPDATE ... RETURNING inside the transaction that finalizes (the row lock
-- orders concurrent finalizations; a rolled-back one gives its number back).
CREATE TABLE document_counters (
    issuer       text COLLATE "C" NOT NULL REFERENCES issuers,
    year         integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    last_number  bigint NOT NULL CHECK (last_number >= 0),
    PRIMARY KEY (issuer, year, kind)
);

-- One row per `tally invoice run` (and `tally rerate`): what it covered and
-- the ingestion cut-off it saw, so any run can be reproduced and the events
-- that arrived after it found (archived_events.accepted_at > cutoff).
CREATE TABLE invoice_runs (
    run_id          bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('run', 'rerate')),
    period          text NOT NULL,
    customer_id     text COLLATE "C",        -- NULL: every customer
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    cutoff          timestamptz,             -- latest batch stored before the run's snapshot
    offsets         jsonb NOT NULL DEFAULT '[]',  -- consumer_offsets as the run saw them
    drafts          integer NOT NULL DEFAULT 0,
    not_priced      integer NOT NULL DEFAULT 0,
    adjustments     integer NOT NULL DEFAULT 0,
    left_finalized  integer NOT NULL DEFAULT 0
);

CREATE TABLE invoices (
    invoice_id      bigserial PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('draft', 'finalized', 'void')),
    issuer          text COLLATE "C" NOT NULL REFERENCES issuers,
    number          text UNIQUE,             -- set when finalized: INV-2025-000001
    customer_id     text COLLATE "C" NOT NULL,
    customer_name   text NOT NULL DEFAULT '',
    plan            text COLLATE "C" NOT NULL,
    period          text NOT NULL,           -- 'YYYY-MM'
    period_id       integer NOT NULL,        -- billing month id, as in rollups.period
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    time_zone       text NOT NULL,
    currency        char(3) NOT NULL,
    rounding        text NOT NULL,           -- half_even, half_up, down, up
    round_at        text NOT NULL CHECK (round_at IN ('line', 'invoice')),
    plan_versions   text[] NOT NULL,
    calls           bigint NOT NULL CHECK (calls >= 0),
    exact_subtotal  numeric NOT NULL,
    subtotal        numeric NOT NULL,
    tax_percent     numeric NOT NULL,
    tax             numeric NOT NULL,
    total           numeric NOT NULL,
    grants          jsonb NOT NULL DEFAULT '[]',  -- [{"name":..,"amount":".."}]
    amount_due      numeric NOT NULL,
    error           text NOT NULL DEFAULT '',     -- not empty: could not be priced (never finalized)
    run_id          bigint NOT NULL REFERENCES invoice_runs,
    cutoff          timestamptz,
    grace_until     timestamptz NOT NULL,    -- period_end + the plan's finalization grace
    created_at      timestamptz NOT NULL DEFAULT now(),
    finalized_at    timestamptz,
    sha256          text,                    -- of the canonical form, set when finalized
    voided_at       timestamptz,
    void_reason     text,
    CHECK ((status = 'draft') = (number IS NULL)),
    CHECK ((status = 'draft') = (sha256 IS NULL)),
    CHECK (status = 'draft' OR error = '')
);
-- At most one live invoice per customer, plan and period: a draft, or the
-- finalized one (a void one makes room for a replacement).
CREATE UNIQUE INDEX invoices_one_live ON invoices (customer_id, plan, period_id) WHERE status <> 'void';
CREATE INDEX invoices_period ON invoices (period_id, status);

CREATE TABLE invoice_lines (
    invoice_id      bigint NOT NULL REFERENCES invoices ON DELETE CASCADE,
    line_no         integer NOT NULL CHECK (line_no >= 1),
    kind            text NOT NULL,           -- usage, free_quota, unpriced, discount, coupon, rounding, commitment, adjustment
    description     text NOT NULL DEFAULT '',
    plan_version    text NOT NULL DEFAULT '',
    model           text NOT NULL DEFAULT '',
    unit            text NOT NULL DEFAULT '',
    band            text NOT NULL DEFAULT '',
    output_condition text NOT NULL DEFAULT '',
    time_window     text NOT NULL DEFAULT '',
    batch           boolean NOT NULL DEFAULT false,
    thinking        boolean NOT NULL DEFAULT false,
    tier            text NOT NULL DEFAULT '',
    quantity        bigint,                  -- NULL on lines that are not usage
    rate            numeric,
    rate_per        bigint,
    amount          numeric NOT NULL,        -- exact
    amount_rounded  numeric NOT NULL,
    first_hour      timestamptz,             -- the rollups the line was summed from
    last_hour       timestamptz,
    adjusts_period  text,                    -- adjustment lines: the period they correct
    adjusts_invoice text,                    -- and the number of the invoice that billed it
    basis_calls     bigint,                  -- adjustment lines: calls of that period priced
    basis_subtotal  numeric,                 -- adjustment lines: that period's subtotal as priced now
    PRIMARY KEY (invoice_id, line_no)
);
CREATE INDEX invoice_lines_adjusts ON invoice_lines (adjusts_period) WHERE adjusts_period IS NOT NULL;

CREATE TABLE credit_notes (
    credit_note_id  bigserial PRIMARY KEY,
    number          text NOT NULL UNIQUE,    -- CN-2025-000001
    issuer          text COLLATE "C" NOT NULL REFERENCES issuers,
    invoice_id      bigint NOT NULL REFERENCES invoices,
    customer_id     text COLLATE "C" NOT NULL,
    currency        char(3) NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('void', 'partial')),
    reason          text NOT NULL,
    subtotal        numeric NOT NULL CHECK (subtotal >= 0),
    tax             numeric NOT NULL CHECK (tax >= 0),
    total           numeric NOT NULL CHECK (total >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sha256          text NOT NULL
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);

-- A finalized invoice and its lines never change: the only change allowed
-- is voiding it (status, voided_at, void_reason and nothing else), and only
-- once its void credit note exists. Drafts are replaced freely. Credit
-- notes are immutable from the start. None of these tables, nor the number
-- counters, can be truncated; a counter only ever goes up.
CREATE FUNCTION tally_invoice_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'DELETE of % invoice % is not allowed: finalized invoices are immutable', OLD.status, OLD.number
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'draft' THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'finalized' AND NEW.status = 'void'
       AND (to_jsonb(NEW) - 'status' - 'voided_at' - 'void_reason') = (to_jsonb(OLD) - 'status' - 'voided_at' - 'void_reason')
       AND NEW.voided_at IS NOT NULL AND NEW.void_reason IS NOT NULL
       AND EXISTS (SELECT 1 FROM credit_notes c WHERE c.invoice_id = OLD.invoice_id AND c.kind = 'void') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'UPDATE of % invoice % is not allowed: finalized invoices are immutable (void it with a credit note)',
        OLD.status, OLD.number USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION tally_invoice_guard();

CREATE FUNCTION tally_invoice_line_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_status text;
BEGIN
    SELECT status INTO parent_status FROM invoices
    WHERE invoice_id = CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
    -- A cascaded delete of a draft's lines finds no parent any more.
    IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
        RAISE EXCEPTION '% of a line of a % invoice is not allowed: finalized invoices are immutable', TG_OP, parent_status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION tally_invoice_line_guard();

CREATE TRIGGER credit_notes_immutable BEFORE UPDATE OR DELETE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();

CREATE FUNCTION tally_counter_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.issuer = OLD.issuer AND NEW.year = OLD.year AND NEW.kind = OLD.kind
       AND NEW.last_number > OLD.last_number THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of a document counter is not allowed: numbers only ever go up', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER document_counters_only_up BEFORE UPDATE OR DELETE ON document_counters
    FOR EACH ROW EXECUTE FUNCTION tally_counter_guard();

CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON invoice_lines
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER credit_notes_no_truncate BEFORE TRUNCATE ON credit_notes
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER document_counters_no_truncate BEFORE TRUNCATE ON document_counters
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
