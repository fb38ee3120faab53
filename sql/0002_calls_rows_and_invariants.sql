-- 0002: the shape of rollups that pricing/rollup_records.h defines, and the
-- ledger's invariants said by the database itself, so that a bug in one
-- process or a statement typed by hand cannot store what tally would never
-- write (TigerStyle: check in two places). Applied in one transaction by
-- `tally migrate`; stop the consumers first (it locks the rollup tables).
--
--   1. Calls are stored once per rate cell and hour, in a row of their own.
--   2. Sums of quantities and calls saturate at 2^63-1 instead of failing.
--   3. dead_letters.reason_code takes exactly the codes of base/reject_reason.h.
--   4. Subscriptions are append-only; ranges and foreign keys are checked.

-- 1. Calls rows --------------------------------------------------------------
--
-- Until now every unit row of a cell carried the calls of that cell, so the
-- calls of a cell were only known through its units: two calls with no unit
-- in common (one with input tokens only, one with output tokens only) could
-- not both be counted, and a call with no tokens at all had no row and was
-- lost (a minimum commitment bills such calls too). From now on a cell and
-- hour has one row with unit '' that holds the calls (quantity 0), and its
-- unit rows hold the quantities (calls 0): pricing's RollupRecord.

LOCK TABLE rollups, rollup_deltas IN ACCESS EXCLUSIVE MODE;

-- Fold the deltas first (as the consumer's FoldDeltas does): the delta rows
-- of one cell written by several batches each carry their own batch's
-- calls, so they must be summed per unit before the maximum over the units
-- below is taken.
INSERT INTO rollups AS u
SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit,
       LEAST(sum(quantity), 9223372036854775807)::bigint, LEAST(sum(calls), 9223372036854775807)::bigint
FROM rollup_deltas
GROUP BY customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit
ON CONFLICT (customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit)
DO UPDATE SET quantity = LEAST(u.quantity::numeric + EXCLUDED.quantity, 9223372036854775807)::bigint,
              calls = LEAST(u.calls::numeric + EXCLUDED.calls, 9223372036854775807)::bigint;
TRUNCATE rollup_deltas;

-- The calls of a cell and hour = the largest calls of its unit rows. This is
-- the best the old rows allow: it is exact when one unit was in every call
-- of the cell (input tokens, in practice), and short by the calls that had
-- none of that unit otherwise; calls that had no unit at all left no row
-- and cannot be recovered.
INSERT INTO rollups (customer_id, period, hour, plan, version, model, band, condition, time_window, flags,
                     unit, quantity, calls)
SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, '', 0, max(calls)
FROM rollups
WHERE unit <> ''
GROUP BY customer_id, period, hour, plan, version, model, band, condition, time_window, flags
HAVING max(calls) > 0;
UPDATE rollups SET calls = 0 WHERE unit <> '' AND calls <> 0;

-- The same checks on the deltas as on the rollups: a row the rollups would
-- refuse is refused with its batch, not at the next fold (which would then
-- fail, and with it every fold after it). No foreign keys on the deltas
-- (section 4): they take one COPY per batch, on the consumer's hot path.
ALTER TABLE rollups
    ADD CONSTRAINT rollups_calls_row_has_no_quantity CHECK (unit <> '' OR quantity = 0),
    ADD CONSTRAINT rollups_unit_row_has_no_calls CHECK (unit = '' OR calls = 0);
ALTER TABLE rollup_deltas
    ADD CONSTRAINT rollup_deltas_calls_row_has_no_quantity CHECK (unit <> '' OR quantity = 0),
    ADD CONSTRAINT rollup_deltas_unit_row_has_no_calls CHECK (unit = '' OR calls = 0);

-- 2. Saturating sums -----------------------------------------------------------
--
-- sum(bigint) is numeric, and a cast of more than 2^63-1 back to bigint
-- fails: one cell with a huge count would stop every fold and every read of
-- usage. Sums saturate instead, by the rule of pricing's SaturatingAdd
-- (pricing/rater.h, kQuantitySaturated): a total at 2^63-1 marks an
-- overflow for the invoice to show, and no process ever fails on it. The
-- fold (ledger/batch_writer.cc, FoldDeltas) applies the same LEAST.
-- The columns are listed, not *: a column added to one table later must
-- not shift the union.
CREATE OR REPLACE VIEW usage_rollups AS
SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit,
       LEAST(sum(quantity), 9223372036854775807)::bigint AS quantity,
       LEAST(sum(calls), 9223372036854775807)::bigint AS calls
FROM (SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit,
             quantity, calls
      FROM rollups
      UNION ALL
      SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit,
             quantity, calls
      FROM rollup_deltas) AS r
GROUP BY customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit;

-- 3. Reason codes --------------------------------------------------------------
--
-- One enum (base/reject_reason.h) names why a message was not billed, and
-- its codes are the only ones stored, so that a report by reason_code and
-- the metric tally_dead_letters_total{reason} count the same things. The
-- old code 'unpriced' covered four reasons of the rater; its rows are
-- mapped by the rater's own words, which their reason column keeps.
UPDATE dead_letters
SET reason_code = CASE
        WHEN reason LIKE '%has no price in plan%' THEN 'unknown_model'
        WHEN reason LIKE '%has no version in force%' THEN 'no_plan_version'
        WHEN reason LIKE '%above the top band%' THEN 'above_top_band'
        WHEN reason LIKE '%has no subscription in force%' THEN 'no_subscription'
        ELSE 'invalid'
    END
WHERE reason_code = 'unpriced';
-- No tally wrote another code; a row typed by hand keeps its code in its reason.
UPDATE dead_letters
SET reason = 'reason_code was ' || reason_code || ': ' || reason, reason_code = 'invalid'
WHERE reason_code NOT IN ('invalid', 'unknown_customer', 'no_subscription', 'conflict', 'unknown_model',
                          'no_plan_version', 'above_top_band', 'overflow', 'future_time');
-- Exactly RejectReasonCode(r) for r in kRejectReasons (a ledger test checks
-- both directions): a new reason needs a migration that replaces this check.
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_reason_code_known
    CHECK (reason_code IN ('invalid', 'unknown_customer', 'no_subscription', 'conflict', 'unknown_model',
                           'no_plan_version', 'above_top_band', 'overflow', 'future_time'));

-- 4. Invariants ----------------------------------------------------------------

-- A subscription says which prices applied from an instant on; invoices
-- already issued were priced by it, so it is never changed or removed. A
-- change of plan or terms is a new subscription from a later instant
-- (ledger/store.cc inserts only, and refuses to replace a row).
CREATE TRIGGER subscriptions_append_only BEFORE UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER subscriptions_no_truncate BEFORE TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();

-- The ranges the rater makes: band an index, condition and time_window an
-- index or -1 (none), flags the bits 1 (batch) and 2 (thinking).
ALTER TABLE rollups
    ADD CONSTRAINT rollups_band_check CHECK (band >= 0),
    ADD CONSTRAINT rollups_condition_check CHECK (condition >= -1),
    ADD CONSTRAINT rollups_time_window_check CHECK (time_window >= -1),
    ADD CONSTRAINT rollups_flags_check CHECK (flags BETWEEN 0 AND 3);
ALTER TABLE rollup_deltas
    ADD CONSTRAINT rollup_deltas_band_check CHECK (band >= 0),
    ADD CONSTRAINT rollup_deltas_condition_check CHECK (condition >= -1),
    ADD CONSTRAINT rollup_deltas_time_window_check CHECK (time_window >= -1),
    ADD CONSTRAINT rollup_deltas_flags_check CHECK (flags BETWEEN 0 AND 3);

-- A skipped range is never empty (SkipGap records one only when the stored
-- offset is behind the broker's earliest).
ALTER TABLE offset_gaps ADD CONSTRAINT offset_gaps_range_check CHECK (to_offset > from_offset);

-- A version in force for no instant at all is a mistake in its plan file.
ALTER TABLE plan_versions ADD CONSTRAINT plan_versions_effective_range_check
    CHECK (effective_until IS NULL OR effective_until > effective_from);

-- A subscription names a published plan. plan_names has one row per plan,
-- written in the same transaction as its versions (Store::PublishPlan);
-- plan_versions' key is (plan, version), which a plan alone cannot
-- reference. subscriptions.customer_id references customers since 0001.
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_plan_fkey FOREIGN KEY (plan) REFERENCES plan_names (plan);

-- Billed usage names a customer and a published plan version. Checked when
-- the fold writes a new rollups row (adding to an existing one changes no
-- key, so no check runs), not per batch.
ALTER TABLE rollups
    ADD CONSTRAINT rollups_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (customer_id),
    ADD CONSTRAINT rollups_plan_version_fkey FOREIGN KEY (plan, version) REFERENCES plan_versions (plan, version);
