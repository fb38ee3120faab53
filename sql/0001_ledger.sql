-- Key columns use COLLATE "C": byte order, the same on every server, and
-- several times cheaper to index than a locale's collation.
--
-- The ledger: customers, published plan versions, subscriptions, durable
-- dedup keys, the raw event archive, hourly rollups, Kafka offsets, dead
-- letters and offset gaps. Every large table keeps customer_id in its key,
-- so it can later be distributed by customer (Citus) without a redesign.

CREATE TABLE customers (
    customer_id  text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A published plan version is immutable: its YAML body is stored as
-- published, with its SHA-256, and never updated or deleted.
CREATE TABLE plan_versions (
    plan            text COLLATE "C" NOT NULL,
    version         text COLLATE "C" NOT NULL,
    effective_from  timestamptz NOT NULL,
    effective_until timestamptz,
    currency        char(3) NOT NULL,
    body            text NOT NULL,
    body_sha256     text NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan, version)
);

CREATE FUNCTION tally_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % is not allowed: rows of this table are immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER plan_versions_immutable BEFORE UPDATE OR DELETE ON plan_versions
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();

-- Which plan a customer is on from an instant on, with contract terms
-- (discounts, coupons, commitment, grants) as the YAML of a subscription.
CREATE TABLE subscriptions (
    customer_id  text COLLATE "C" NOT NULL REFERENCES customers,
    valid_from   timestamptz NOT NULL,
    plan         text NOT NULL,
    terms        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, valid_from)
);

-- Durable dedup. event_key identifies a call: the first 128 bits of SHA-256
-- over its (source, id) (ingest/event_key.h). payload_hash (128 bits of the
-- message bytes) tells a duplicate (same bytes) from a conflict (same call,
-- other bytes). One narrow fixed-width key keeps the insert of every billed
-- call cheap; the call's source, id and customer are in the archive.
CREATE TABLE event_keys (
    event_key       uuid PRIMARY KEY,
    payload_hash    uuid NOT NULL,
    accepted_at     timestamptz NOT NULL DEFAULT now()
);
-- BRIN: accepted_at grows with insertion order, so a tiny index serves the
-- expiry of old keys without slowing every insert down.
CREATE INDEX event_keys_accepted_at ON event_keys USING brin (accepted_at);

-- The raw accepted events, partitioned by the day they were accepted
-- (partitions are created as needed and dropped after retention). One row
-- holds the calls of one customer from one partition and one UTC day of
-- event time within one batch: the messages byte for byte, separated by
-- the record separator 0x1E (RFC 7464; valid JSON never contains it), and
-- the Kafka offset of each. Thousands of rows a second instead of hundreds
-- of thousands; the view archived_events below gives one row per call.
CREATE TABLE event_archive (
    customer_id      text COLLATE "C" NOT NULL,
    first_event_time timestamptz NOT NULL,
    last_event_time  timestamptz NOT NULL,
    accepted_at      timestamptz NOT NULL DEFAULT now(),
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offsets    bigint[] NOT NULL,
    payloads         text COMPRESSION lz4 NOT NULL,
    CHECK (cardinality(kafka_offsets) >= 1)
) PARTITION BY RANGE (accepted_at);
CREATE INDEX event_archive_customer_time ON event_archive (customer_id, first_event_time);

CREATE VIEW archived_events AS
SELECT a.customer_id, a.kafka_topic, a.kafka_partition, e.kafka_offset, a.accepted_at, e.payload
FROM event_archive a
CROSS JOIN LATERAL unnest(a.kafka_offsets, string_to_array(a.payloads, E'\x1e')) AS e (kafka_offset, payload);

-- Hourly rollups: summed quantities per rate cell. Names, not indices, so
-- the rows mean the same to every process and every plan catalog.
CREATE TABLE rollups (
    customer_id   text COLLATE "C" NOT NULL,
    period        integer NOT NULL,      -- billing month id (year*12 + month-1)
    hour          integer NOT NULL,      -- UTC hours since 1970-01-01
    plan          text COLLATE "C" NOT NULL,
    version       text COLLATE "C" NOT NULL,
    model         text COLLATE "C" NOT NULL,
    band          smallint NOT NULL,
    condition     smallint NOT NULL,     -- -1: none
    time_window   smallint NOT NULL,     -- -1: none
    flags         smallint NOT NULL,     -- 1 batch, 2 thinking
    unit          text COLLATE "C" NOT NULL,
    quantity      bigint NOT NULL CHECK (quantity >= 0),
    calls         bigint NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit)
) WITH (fillfactor = 70);  -- room on each page, so adding to a row is a HOT update

-- Each batch appends its rollup rows here: a plain insert, no index to keep
-- up, where an upsert into rollups costs several times more per row. The
-- consumer folds the deltas into rollups every few seconds, in one
-- transaction (ledger/batch_writer.cc, FoldDeltas). Usage is always rollups
-- plus rollup_deltas: read it from the view usage_rollups.
CREATE TABLE rollup_deltas (LIKE rollups INCLUDING CONSTRAINTS);

CREATE VIEW usage_rollups AS
SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit,
       sum(quantity)::bigint AS quantity, sum(calls)::bigint AS calls
FROM (SELECT * FROM rollups UNION ALL SELECT * FROM rollup_deltas) AS r
GROUP BY customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit;

-- The next offset to consume per partition, written in the same
-- transaction as the rollups it produced (exactly-once ingestion).
CREATE TABLE consumer_offsets (
    consumer_group  text COLLATE "C" NOT NULL,
    topic           text COLLATE "C" NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- Messages that could not be billed, with why and where they came from.
CREATE TABLE dead_letters (
    dead_letter_id  bigserial PRIMARY KEY,
    kafka_topic     text COLLATE "C" NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason_code     text NOT NULL,
    reason          text NOT NULL,
    raw             bytea NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

-- Offsets that were lost before they were billed (retention passed them)
-- and skipped by an operator's explicit command.
CREATE TABLE offset_gaps (
    consumer_group  text COLLATE "C" NOT NULL,
    topic           text COLLATE "C" NOT NULL,
    kafka_partition integer NOT NULL,
    from_offset     bigint NOT NULL,
    to_offset       bigint NOT NULL,
    skipped_at      timestamptz NOT NULL DEFAULT now(),
    skipped_by      text NOT NULL,
    PRIMARY KEY (consumer_group, topic, kafka_partition, from_offset)
);

-- A plan's display name (may be Chinese), as in its latest published file.
CREATE TABLE plan_names (
    plan  text COLLATE "C" PRIMARY KEY,
    name  text NOT NULL
);
