-- 0009: what `tally serve` reads on every GET /v1/usage, made cheap
-- (docs/performance.md, "tally serve").
--
-- 1. One customer's usage of a period is rollups plus rollup_deltas (the
-- view usage_rollups). rollups has its primary key for that; rollup_deltas
-- had no index, so every read scanned all the deltas waiting for the next
-- fold. The consumer pays one index insert per delta row.
CREATE INDEX rollup_deltas_customer_period ON rollup_deltas (customer_id, period);

-- 2. Change counters, bumped by statement-level triggers in the writer's
-- own transaction (so a reader sees a change and its counter together):
--   catalog: any change to plan_versions, plan_names, customers or
--            subscriptions (what Store::Load reads);
--   usage:   any change to rollups (the fold, a rollup rebuild), and any
--            change to rollup_deltas other than an insert (the fold's
--            TRUNCATE).
-- An insert into rollup_deltas (the consumer's batches) instead adds its
-- row count to usage_marks, per customer and period (section 3). So a
-- customer's usage of some periods is the same at two snapshots when
-- `usage` and the sum of its usage_marks of those periods are the same at
-- both (ledger/usage_reader.h, ReadMarks), and that reader never touches
-- rollup_deltas, which the fold holds locked for seconds. One row per
-- counter: writers of a kind take its row lock until they commit (the fold
-- and catalog changes are rare and serialized anyway).
CREATE TABLE change_counters (
    name     text COLLATE "C" PRIMARY KEY CHECK (name IN ('catalog', 'usage')),
    counter  bigint NOT NULL CHECK (counter >= 0)
);
INSERT INTO change_counters (name, counter) VALUES ('catalog', 0), ('usage', 0);

CREATE FUNCTION tally_bump_change_counter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counters SET counter = counter + 1 WHERE name = TG_ARGV[0];
    RETURN NULL;
END $$;

CREATE TRIGGER plan_versions_bump_catalog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plan_versions
    FOR EACH STATEMENT EXECUTE FUNCTION tally_bump_change_counter('catalog');
CREATE TRIGGER plan_names_bump_catalog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plan_names
    FOR EACH STATEMENT EXECUTE FUNCTION tally_bump_change_counter('catalog');
CREATE TRIGGER customers_bump_catalog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION tally_bump_change_counter('catalog');
CREATE TRIGGER subscriptions_bump_catalog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION tally_bump_change_counter('catalog');
CREATE TRIGGER rollups_bump_usage AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rollups
    FOR EACH STATEMENT EXECUTE FUNCTION tally_bump_change_counter('usage');
CREATE TRIGGER rollup_deltas_bump_usage AFTER UPDATE OR DELETE OR TRUNCATE ON rollup_deltas
    FOR EACH STATEMENT EXECUTE FUNCTION tally_bump_change_counter('usage');

-- The counters only go up; nobody deletes them.
CREATE FUNCTION tally_change_counter_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name AND NEW.counter > OLD.counter THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of change counter % is not allowed: counters only go up', TG_OP, OLD.name
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER change_counters_guard BEFORE UPDATE OR DELETE ON change_counters
    FOR EACH ROW EXECUTE FUNCTION tally_change_counter_guard();
CREATE TRIGGER change_counters_no_truncate BEFORE TRUNCATE ON change_counters
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();

-- 3. Rows inserted into rollup_deltas, per customer and period, counted by
-- each inserting statement (one COPY per batch): it only grows, and the
-- fold leaves it alone (the fold bumps `usage`). Rows are taken in key
-- order, so two consumers writing the same customers wait, never deadlock
-- on it.
CREATE TABLE usage_marks (
    customer_id  text COLLATE "C" NOT NULL,
    period       integer NOT NULL,
    inserts      bigint NOT NULL CHECK (inserts > 0),
    PRIMARY KEY (customer_id, period)
);

CREATE FUNCTION tally_mark_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_marks AS m (customer_id, period, inserts)
    SELECT customer_id, period, count(*) FROM new_deltas GROUP BY customer_id, period ORDER BY customer_id, period
    ON CONFLICT (customer_id, period) DO UPDATE SET inserts = m.inserts + EXCLUDED.inserts;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_deltas_mark_usage AFTER INSERT ON rollup_deltas REFERENCING NEW TABLE AS new_deltas
    FOR EACH STATEMENT EXECUTE FUNCTION tally_mark_usage();

CREATE FUNCTION tally_usage_mark_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.customer_id = OLD.customer_id AND NEW.period = OLD.period
       AND NEW.inserts > OLD.inserts THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of usage mark (%, %) is not allowed: marks only go up', TG_OP, OLD.customer_id, OLD.period
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER usage_marks_guard BEFORE UPDATE OR DELETE ON usage_marks
    FOR EACH ROW EXECUTE FUNCTION tally_usage_mark_guard();
CREATE TRIGGER usage_marks_no_truncate BEFORE TRUNCATE ON usage_marks
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
