-- +goose Up
-- Times are BIGINT microseconds since the Unix epoch (UTC) in both dialects:
-- one SQL text, exact comparisons, no time-zone surprises. Booleans are 0/1.

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    groups_csv    TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL DEFAULT 0,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE resources (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    capacity   INTEGER NOT NULL CHECK (capacity >= 0),
    available  INTEGER NOT NULL CHECK (available >= 0 AND available <= capacity),
    price      BIGINT NOT NULL CHECK (price >= 0),
    currency   TEXT NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    owner_id   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE flights (
    resource_id            TEXT PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    flight_number          INTEGER NOT NULL,
    departure_date         TEXT NOT NULL,
    departure_airport_code TEXT NOT NULL,
    departure_airport_name TEXT NOT NULL,
    departure_city         TEXT NOT NULL,
    departure_locale       TEXT NOT NULL,
    arrival_date           TEXT NOT NULL,
    arrival_airport_code   TEXT NOT NULL,
    arrival_airport_name   TEXT NOT NULL,
    arrival_city           TEXT NOT NULL,
    arrival_locale         TEXT NOT NULL
);
CREATE INDEX flights_schedule ON flights (departure_airport_code, departure_date, resource_id);

CREATE TABLE holds (
    key         TEXT PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES resources (id),
    booking_id  TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX holds_resource ON holds (resource_id);

CREATE TABLE bookings (
    id              TEXT PRIMARY KEY,
    resource_id     TEXT NOT NULL REFERENCES resources (id),
    customer        TEXT NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    status          TEXT NOT NULL,
    reference       TEXT UNIQUE,
    payment_token   TEXT NOT NULL UNIQUE,
    price           BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    checked_in      INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    execution_id    TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL DEFAULT 1,
    UNIQUE (customer, idempotency_key)
);
CREATE INDEX bookings_customer_status ON bookings (customer, status, id);
CREATE INDEX bookings_resource ON bookings (resource_id);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    booking_id  TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL,
    code        TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    checked_in  INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX tickets_booking ON tickets (booking_id);

CREATE TABLE charges (
    id           TEXT PRIMARY KEY,
    customer     TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    provider_ref TEXT NOT NULL DEFAULT '',
    captured     BIGINT NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
    refunded     BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    booking_id   TEXT NOT NULL DEFAULT '',
    failure_code TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX charges_customer ON charges (customer, id);

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    type    TEXT NOT NULL,
    source  TEXT NOT NULL,
    who     TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX events_who ON events (who, seq);
CREATE INDEX events_subject ON events (subject, seq);

CREATE TABLE executions (
    id          TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    status      TEXT NOT NULL,
    phase       TEXT NOT NULL,
    step        INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    input       TEXT NOT NULL,
    state       TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    correlation TEXT NOT NULL DEFAULT '',
    next_run_at BIGINT NOT NULL,
    deadline    BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX executions_due ON executions (status, next_run_at);
CREATE INDEX executions_correlation ON executions (correlation);

CREATE TABLE history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    type         TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    detail       TEXT NOT NULL,
    error        TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX history_execution ON history (execution_id, seq);

CREATE TABLE loyalty_entries (
    booking_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    customer   TEXT NOT NULL,
    points     BIGINT NOT NULL CHECK (points >= 0),
    at         BIGINT NOT NULL,
    PRIMARY KEY (booking_id, kind)
);
CREATE INDEX loyalty_customer ON loyalty_entries (customer);

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);

-- +goose Down
DROP TABLE kv;
DROP TABLE webhooks;
DROP TABLE loyalty_entries;
DROP TABLE history;
DROP TABLE executions;
DROP TABLE events;
DROP TABLE charges;
DROP TABLE tickets;
DROP TABLE bookings;
DROP TABLE holds;
DROP TABLE flights;
DROP TABLE resources;
DROP TABLE api_keys;
DROP TABLE accounts;
