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

-- Durable dedup: (source, id) identifies a call. payload_hash (128 bits of
-- the message bytes) tells a duplicate (same bytes) from a conflict (same
-- key, other payload).
CREATE TABLE event_keys (
    source          text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    payload_hash    text NOT NULL,
    event_time      timestamptz NOT NULL,
    accepted_at     timestamptz NOT NULL,
    PRIMARY KEY (source, id)
);
-- BRIN: accepted_at grows with insertion order, so a tiny index serves the
-- expiry of old keys without slowing every insert down.
CREATE INDEX event_keys_accepted_at ON event_keys USING brin (accepted_at);

-- The raw accepted events, partitioned by the day they were accepted
-- (partitions are created as needed and dropped after retention).
CREATE TABLE events (
    customer_id  text COLLATE "C" NOT NULL,
    source       text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    event_time   timestamptz NOT NULL,
    accepted_at  timestamptz NOT NULL,
    kafka_topic  text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    payload      text NOT NULL          -- the accepted message, valid UTF-8 JSON
) PARTITION BY RANGE (accepted_at);
CREATE INDEX events_customer_time ON events (customer_id, event_time);

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
);

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
