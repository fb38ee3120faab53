-- 0008: usage by project (docs/event-format.md, `project`; docs/pricing.md,
-- "Projects"). A rollup cell keeps the project its calls named: `project` is
-- the event's `data.project` as admitted for the customer's billing period,
-- 'other' for the calls of projects beyond the cap, '' for calls that named
-- none. Prices never depend on it: every price, invoice, usage and margin
-- figure is the same summed over projects. Existing rows named no project.

LOCK TABLE rollups, rollup_deltas IN ACCESS EXCLUSIVE MODE;

ALTER TABLE rollups ADD COLUMN project text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE rollup_deltas ADD COLUMN project text COLLATE "C" NOT NULL DEFAULT '';

-- The project is part of the cell: the fold (ledger/batch_writer.cc,
-- FoldDeltas) adds into the row of the same cell, project included. It comes
-- last, so that every reader that orders by the cell's other columns keeps
-- its index order.
ALTER TABLE rollups DROP CONSTRAINT rollups_pkey;
ALTER TABLE rollups ADD CONSTRAINT rollups_pkey
    PRIMARY KEY (customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags,
                 unit, project);

-- The view of 0005, grouped by the project too. Columns are listed, not *.
DROP VIEW usage_rollups;
CREATE VIEW usage_rollups AS
SELECT customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit,
       project,
       LEAST(sum(quantity), 9223372036854775807)::bigint AS quantity,
       LEAST(sum(calls), 9223372036854775807)::bigint AS calls
FROM (SELECT customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags,
             unit, project, quantity, calls
      FROM rollups
      UNION ALL
      SELECT customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags,
             unit, project, quantity, calls
      FROM rollup_deltas) AS r
GROUP BY customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit,
         project;

-- The projects admitted as named rollup projects, per customer and billing
-- period: at most kProjectsPerPeriodMax (pricing/project_cap.h) each, the
-- first to be stored win (ledger/rollup_projects.cc, CapProjects). Written in
-- the same transaction as the rollups that name them, so a batch replayed
-- after a crash admits again exactly what it had not committed, and read by
-- `tally rerate` (RebuildRollups), so a rebuild names the same projects. Never
-- deleted: an admitted project stays admitted for its period.
CREATE TABLE rollup_projects (
    customer_id   text COLLATE "C" NOT NULL REFERENCES customers (customer_id),
    period        integer NOT NULL,
    project       text COLLATE "C" NOT NULL CHECK (project <> '' AND project <> 'other'),
    admitted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, period, project)
);
