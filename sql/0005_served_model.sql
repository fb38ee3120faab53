-- 0005: the Model Router's served model (docs/event-format.md, `served_model`;
-- docs/margin.md). A routed call is billed under one model (the one it asked
-- for, or the served one under `routed_calls: bill_served`) and costed by the
-- model that served it, so a rollup cell keeps both: `model` is the model
-- billed, `served_model` the model that served the calls ('' when they were
-- not routed). Existing rows were not routed.

LOCK TABLE rollups, rollup_deltas IN ACCESS EXCLUSIVE MODE;

ALTER TABLE rollups ADD COLUMN served_model text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE rollup_deltas ADD COLUMN served_model text COLLATE "C" NOT NULL DEFAULT '';

-- The served model is part of the cell: the fold (ledger/batch_writer.cc,
-- FoldDeltas) adds into the row of the same cell, served model included.
ALTER TABLE rollups DROP CONSTRAINT rollups_pkey;
ALTER TABLE rollups ADD CONSTRAINT rollups_pkey
    PRIMARY KEY (customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags,
                 unit);

-- The view of 0002, grouped by the served model too (recreated: the new
-- column sits next to `model`). Columns are listed, not *.
DROP VIEW usage_rollups;
CREATE VIEW usage_rollups AS
SELECT customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit,
       LEAST(sum(quantity), 9223372036854775807)::bigint AS quantity,
       LEAST(sum(calls), 9223372036854775807)::bigint AS calls
FROM (SELECT customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags,
             unit, quantity, calls
      FROM rollups
      UNION ALL
      SELECT customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags,
             unit, quantity, calls
      FROM rollup_deltas) AS r
GROUP BY customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit;

-- A routed call billed under a `routed_calls: bill_served` model whose served
-- model the plan version does not price is its own dead letter
-- (base/reject_reason.h, kServedModelUnpriced). Exactly RejectReasonCode(r)
-- for r in kRejectReasons, as in 0002.
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_reason_code_known;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_reason_code_known
    CHECK (reason_code IN ('invalid', 'unknown_customer', 'no_subscription', 'conflict', 'unknown_model',
                           'no_plan_version', 'above_top_band', 'overflow', 'future_time', 'served_model_unpriced'));

-- Margin rows keep the served model: cost follows it (docs/margin.md).
-- '' when the row's calls were not routed; part of the row's key.
ALTER TABLE margin_rows ADD COLUMN served_model text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE margin_rows DROP CONSTRAINT margin_rows_pkey;
ALTER TABLE margin_rows ADD CONSTRAINT margin_rows_pkey
    PRIMARY KEY (report_id, customer_id, plan, model, served_model, day, currency);
