-- ConsentKit server schema (PostgreSQL 15; Citus-ready, see ARCHITECTURE.md).
-- Rules (checked by server/tests/sql_lint.rs): every table has subject_key, the keyed pseudonym
-- of a subject (or of a device, for a device's own rows) and the distribution column under Citus;
-- every primary or unique key includes it; no sequence, serial or identity column orders anything.

CREATE TABLE IF NOT EXISTS events (
    subject_key     text    NOT NULL,
    device          text    NOT NULL,
    seq             bigint  NOT NULL,
    has_subject     boolean NOT NULL,
    id              text    NOT NULL,
    category        text,
    action          text    NOT NULL,
    scope           text,
    source          text    NOT NULL,
    policy_id       text    NOT NULL,
    policy_version  text    NOT NULL,
    purpose_version integer,
    at              bigint  NOT NULL,
    valid_until     bigint,
    permission      text,
    os_state        text,
    detail          text,
    content_hash    text    NOT NULL,
    prev_hash       text    NOT NULL,
    hash            text    NOT NULL,
    received_at     bigint  NOT NULL,
    PRIMARY KEY (subject_key, device, seq)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (subject_key, at);

CREATE TABLE IF NOT EXISTS device_chain (
    subject_key  text   NOT NULL,
    device       text   NOT NULL,
    seq          bigint NOT NULL,
    content_hash text   NOT NULL,
    prev_hash    text   NOT NULL,
    hash         text   NOT NULL,
    -- The pseudonym of the event's subject (NULL for the device's own events): lets an erasure
    -- record from the device find the stored events it removed (sql/device_erase.sql).
    event_subject_key text,
    PRIMARY KEY (subject_key, device, seq)
);
ALTER TABLE device_chain ADD COLUMN IF NOT EXISTS event_subject_key text;

CREATE TABLE IF NOT EXISTS device_heads (
    subject_key text   NOT NULL,
    device      text   NOT NULL,
    seq         bigint NOT NULL,
    hash        text   NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (subject_key, device)
);

CREATE TABLE IF NOT EXISTS device_os (
    subject_key text   NOT NULL,
    device      text   NOT NULL,
    permission  text   NOT NULL,
    state       text   NOT NULL,
    since       bigint NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (subject_key, device, permission)
);

CREATE TABLE IF NOT EXISTS subject_devices (
    subject_key text   NOT NULL,
    device      text   NOT NULL,
    first_seen  bigint NOT NULL,
    PRIMARY KEY (subject_key, device)
);

-- Erasures on the server that a device has not confirmed yet: that device's sequence numbers of
-- the erased events, told in every reply to it (and by GET /v1/devices/{device}/erasures) until
-- its own erasure records claim them. Keyed by the device's pseudonym.
CREATE TABLE IF NOT EXISTS device_erasures (
    subject_key text     NOT NULL,
    device      text     NOT NULL,
    erasure_id  text     NOT NULL,
    seqs        bigint[] NOT NULL,
    created_at  bigint   NOT NULL,
    PRIMARY KEY (subject_key, device, erasure_id)
);

CREATE TABLE IF NOT EXISTS erasures (
    subject_key   text   NOT NULL,
    id            text   NOT NULL,
    erased_at     bigint NOT NULL,
    erased_events bigint NOT NULL,
    receipt       text   NOT NULL,
    PRIMARY KEY (subject_key, id)
);

CREATE TABLE IF NOT EXISTS access_log (
    subject_key text   NOT NULL,
    seq         bigint NOT NULL,
    at          bigint NOT NULL,
    actor       text   NOT NULL,
    role        text   NOT NULL,
    action      text   NOT NULL,
    detail      text   NOT NULL,
    prev_hash   text   NOT NULL,
    hash        text   NOT NULL,
    PRIMARY KEY (subject_key, seq)
);

CREATE TABLE IF NOT EXISTS access_heads (
    subject_key text   NOT NULL,
    seq         bigint NOT NULL,
    hash        text   NOT NULL,
    PRIMARY KEY (subject_key)
);
