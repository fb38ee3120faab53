-- 0004: cost cards and margin reports (docs/margin.md).
--
-- cost_card_versions: what serving a model costs, as published with
-- `tally cost publish`. Immutable like plan_versions: the YAML body of a
-- version is stored as published, with its SHA-256, and never updated or
-- deleted (tally_refuse_change, from 0001).
--
-- margin_reports / margin_rows: each margin report written by `tally margin`
-- (or an invoice run), one row per customer, plan, model and local day.
-- Finance reads them with SQL, e.g.
--   SELECT customer_id, sum(revenue), sum(cost), sum(margin) FROM margin_rows
--   WHERE report_id = 17 GROUP BY customer_id;

CREATE TABLE cost_card_versions (
    card            text COLLATE "C" NOT NULL,
    version         text COLLATE "C" NOT NULL,
    card_name       text NOT NULL,              -- the card's name for people, as published with this version
    effective_from  timestamptz NOT NULL,
    body            text NOT NULL,              -- the version's YAML as published
    body_sha256     text NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (card, version),
    UNIQUE (card, effective_from)
);

CREATE TRIGGER cost_card_versions_immutable BEFORE UPDATE OR DELETE ON cost_card_versions
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();

CREATE TABLE margin_reports (
    report_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period          text NOT NULL,              -- '2025-11'
    created_at      timestamptz NOT NULL DEFAULT now(),
    source          text NOT NULL,              -- 'tally margin', 'invoice run 17'
    invoice_run_id  bigint                      -- the invoice run it was made by, if any (no foreign key)
);
CREATE INDEX margin_reports_period ON margin_reports (period, report_id);

-- Amounts are exact (numeric, no scale limit) in `currency`: revenue and
-- cost are never in two currencies on one row (no FX). cost, margin and
-- margin_pct are NULL when the cost is not known (no cost card for the
-- model, unit or time) or the row could not be valued (error says why);
-- margin_pct is also NULL when revenue is 0.
CREATE TABLE margin_rows (
    report_id    bigint NOT NULL REFERENCES margin_reports ON DELETE CASCADE,
    customer_id  text COLLATE "C" NOT NULL,
    plan         text COLLATE "C" NOT NULL,
    model        text COLLATE "C" NOT NULL,
    day          date NOT NULL,                 -- local day in the plan's time zone
    currency     char(3) NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric,
    margin       numeric,
    margin_pct   numeric,                       -- 2 decimal places
    negative     boolean NOT NULL,
    calls        bigint NOT NULL CHECK (calls >= 0),
    error        text,                          -- why the row could not be valued
    cost_unknown text,                          -- why the cost is not known, when it is not
    PRIMARY KEY (report_id, customer_id, plan, model, day, currency),
    CHECK (cost IS NOT NULL OR (margin IS NULL AND margin_pct IS NULL AND NOT negative)),
    CHECK (cost IS NULL OR margin = revenue - cost),
    CHECK (negative = coalesce(margin < 0, false))
);
