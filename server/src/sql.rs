//! Every SQL statement the server runs, in one place, so `tests/sql_lint.rs` can check each one
//! against the distributed-engine rules (see ARCHITECTURE.md): filter on `subject_key`, unique keys
//! include it, no global sequence. Statements that read across all subjects say so in a comment.

/// The schema (tables and indexes).
pub const SCHEMA: &str = include_str!("../sql/schema.sql");
/// The function through which a device's erasure record removes that device's stored events.
pub const FUNCTIONS: &str = include_str!("../sql/device_erase.sql");
/// The database roles and their grants.
pub const ROLES: &str = include_str!("../sql/roles.sql");

/// Creates a device's head at 0 if it has none.
pub const HEAD_INIT: &str = "INSERT INTO device_heads (subject_key, device, seq, hash, updated_at) VALUES ($1, $2, 0, $3, $4) \
     ON CONFLICT (subject_key, device) DO NOTHING";
/// Reads and locks a device's head for the rest of the transaction.
pub const HEAD_LOCK: &str = "SELECT seq, hash FROM device_heads WHERE subject_key = $1 AND device = $2 FOR UPDATE";
/// Reads a device's head.
pub const HEAD_GET: &str = "SELECT seq, hash FROM device_heads WHERE subject_key = $1 AND device = $2";
/// Moves a device's head.
pub const HEAD_SET: &str = "UPDATE device_heads SET seq = $3, hash = $4, updated_at = $5 WHERE subject_key = $1 AND device = $2";
/// The stored links of a device in a range of sequence numbers.
pub const CHAIN_RANGE: &str =
    "SELECT seq, hash FROM device_chain WHERE subject_key = $1 AND device = $2 AND seq >= $3 AND seq <= $4 ORDER BY seq";
/// Appends links of a device's chain.
pub const CHAIN_INSERT: &str = "INSERT INTO device_chain (subject_key, device, seq, content_hash, prev_hash, hash, event_subject_key) \
     SELECT $1, $2, u.seq, u.content_hash, u.prev_hash, u.hash, u.event_subject_key \
     FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS u (seq, content_hash, prev_hash, hash, event_subject_key)";
/// Removes the stored events that a stored erasure record of the device (`$3`, its seq) lists
/// (of that device only; returns how many).
pub const DEVICE_ERASE: &str = "SELECT consentkit_device_erase($1, $2, $3)";
/// Serialises ingest and erasure on one subject (a transaction-scoped advisory lock): an erasure
/// sees every event an ingest of the subject stored, and an ingest sees every erasure before it.
pub const SUBJECT_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";
/// When each of these subjects was last erased.
pub const ERASED_AT: &str = "SELECT subject_key, max(erased_at) FROM erasures WHERE subject_key = ANY($1) GROUP BY subject_key";
/// Appends events (one array per column; the device's own events carry the device's key).
pub const EVENTS_INSERT: &str = "INSERT INTO events (subject_key, device, seq, has_subject, id, category, action, scope, source, \
     policy_id, policy_version, purpose_version, at, valid_until, permission, os_state, detail, content_hash, prev_hash, hash, received_at) \
     SELECT u.subject_key, $2, u.seq, u.has_subject, u.id, u.category, u.action, u.scope, u.source, u.policy_id, u.policy_version, \
     u.purpose_version, u.at, u.valid_until, u.permission, u.os_state, u.detail, u.content_hash, u.prev_hash, u.hash, $3 \
     FROM unnest($1::text[], $4::bigint[], $5::boolean[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
     $12::text[], $13::integer[], $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[]) \
     AS u (subject_key, seq, has_subject, id, category, action, scope, source, policy_id, policy_version, purpose_version, at, \
     valid_until, permission, os_state, detail, content_hash, prev_hash, hash)";
/// Records that these subjects have events from this device.
pub const SUBJECT_DEVICES_INSERT: &str = "INSERT INTO subject_devices (subject_key, device, first_seen) \
     SELECT k, $2, $3 FROM unnest($1::text[]) AS k ON CONFLICT (subject_key, device) DO NOTHING";
/// Sets a device's latest OS permission state (an older event never overwrites a newer one).
pub const DEVICE_OS_UPSERT: &str =
    "INSERT INTO device_os (subject_key, device, permission, state, since, seq) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (subject_key, device, permission) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since, seq = EXCLUDED.seq \
     WHERE device_os.seq < EXCLUDED.seq";

/// Every event of a subject, from all devices.
pub const SUBJECT_EVENTS: &str = "SELECT device, seq, id, category, action, scope, source, policy_id, policy_version, purpose_version, \
     at, valid_until, permission, os_state, detail, content_hash, prev_hash, hash, received_at FROM events WHERE subject_key = $1";
/// A device's OS permission events (for the timeline).
pub const DEVICE_OS_EVENTS: &str = "SELECT device, seq, id, category, action, scope, source, policy_id, policy_version, purpose_version, \
     at, valid_until, permission, os_state, detail, content_hash, prev_hash, hash, received_at FROM events \
     WHERE subject_key = $1 AND device = $2 AND action = 'os_permission' ORDER BY seq";
/// The devices that sent events of a subject.
pub const SUBJECT_DEVICES: &str = "SELECT device FROM subject_devices WHERE subject_key = $1 ORDER BY device";
/// A device's current OS permission states.
pub const DEVICE_OS_STATES: &str = "SELECT permission, state, since FROM device_os WHERE subject_key = $1 AND device = $2";
/// A subject's erasure receipts.
pub const ERASURES_OF: &str = "SELECT receipt FROM erasures WHERE subject_key = $1 ORDER BY erased_at";

/// Erasure: every event of the subject.
pub const EVENTS_DELETE: &str = "DELETE FROM events WHERE subject_key = $1";
/// Erasure: the subject's device list.
pub const SUBJECT_DEVICES_DELETE: &str = "DELETE FROM subject_devices WHERE subject_key = $1";
/// Erasure: the receipt (pseudonym only).
pub const ERASURE_INSERT: &str = "INSERT INTO erasures (subject_key, id, erased_at, erased_events, receipt) VALUES ($1, $2, $3, $4, $5)";

/// Erasure: the subject's events per device, for the devices' erasure notices.
pub const SUBJECT_EVENT_SEQS: &str = "SELECT device, seq FROM events WHERE subject_key = $1 ORDER BY device, seq";
/// Erasure: the device's chain links keep their hashes but no longer name the subject.
pub const CHAIN_FORGET_SUBJECT: &str =
    "UPDATE device_chain SET event_subject_key = NULL WHERE subject_key = $1 AND device = $2 AND event_subject_key = $3";
/// Erasure: a notice for one device (keyed by the device's pseudonym).
pub const DEVICE_ERASURE_INSERT: &str =
    "INSERT INTO device_erasures (subject_key, device, erasure_id, seqs, created_at) VALUES ($1, $2, $3, $4, $5)";
/// A device's pending erasure notices.
pub const DEVICE_ERASURES_OF: &str = "SELECT erasure_id, seqs FROM device_erasures WHERE subject_key = $1 AND device = $2 FOR UPDATE";
/// What is left of a notice once the device's erasure records claimed some of its seqs.
pub const DEVICE_ERASURE_SET: &str = "UPDATE device_erasures SET seqs = $4 WHERE subject_key = $1 AND device = $2 AND erasure_id = $3";
/// A notice the device's erasure records claimed whole.
pub const DEVICE_ERASURE_DONE: &str = "DELETE FROM device_erasures WHERE subject_key = $1 AND device = $2 AND erasure_id = $3";

/// Creates a subject's access chain head at 0 if it has none.
pub const ACCESS_HEAD_INIT: &str =
    "INSERT INTO access_heads (subject_key, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (subject_key) DO NOTHING";
/// Reads and locks a subject's access chain head.
pub const ACCESS_HEAD_LOCK: &str = "SELECT seq, hash FROM access_heads WHERE subject_key = $1 FOR UPDATE";
/// Appends one access log line.
pub const ACCESS_INSERT: &str = "INSERT INTO access_log (subject_key, seq, at, actor, role, action, detail, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// Moves a subject's access chain head.
pub const ACCESS_HEAD_SET: &str = "UPDATE access_heads SET seq = $2, hash = $3 WHERE subject_key = $1";
/// One subject's access log.
pub const ACCESS_LOG_OF: &str =
    "SELECT subject_key, seq, at, actor, role, action, detail, prev_hash, hash FROM access_log WHERE subject_key = $1 ORDER BY seq";
/// The whole access log, for the auditor's verification.
pub const ACCESS_LOG_ALL: &str = "SELECT subject_key, seq, at, actor, role, action, detail, prev_hash, hash FROM access_log \
     ORDER BY subject_key, seq -- all shards: the auditor walks every chain";
/// Every access chain head, for the auditor's verification.
pub const ACCESS_HEADS_ALL: &str = "SELECT subject_key, seq, hash FROM access_heads -- all shards: the auditor walks every chain";
/// A liveness probe.
pub const PING: &str = "SELECT 1";

/// Every statement with its name, for the lint test.
pub const ALL: &[(&str, &str)] = &[
    ("HEAD_INIT", HEAD_INIT),
    ("HEAD_LOCK", HEAD_LOCK),
    ("HEAD_GET", HEAD_GET),
    ("HEAD_SET", HEAD_SET),
    ("CHAIN_RANGE", CHAIN_RANGE),
    ("CHAIN_INSERT", CHAIN_INSERT),
    ("DEVICE_ERASE", DEVICE_ERASE),
    ("SUBJECT_LOCK", SUBJECT_LOCK),
    ("ERASED_AT", ERASED_AT),
    ("EVENTS_INSERT", EVENTS_INSERT),
    ("SUBJECT_DEVICES_INSERT", SUBJECT_DEVICES_INSERT),
    ("DEVICE_OS_UPSERT", DEVICE_OS_UPSERT),
    ("SUBJECT_EVENTS", SUBJECT_EVENTS),
    ("DEVICE_OS_EVENTS", DEVICE_OS_EVENTS),
    ("SUBJECT_DEVICES", SUBJECT_DEVICES),
    ("DEVICE_OS_STATES", DEVICE_OS_STATES),
    ("ERASURES_OF", ERASURES_OF),
    ("EVENTS_DELETE", EVENTS_DELETE),
    ("SUBJECT_DEVICES_DELETE", SUBJECT_DEVICES_DELETE),
    ("ERASURE_INSERT", ERASURE_INSERT),
    ("SUBJECT_EVENT_SEQS", SUBJECT_EVENT_SEQS),
    ("CHAIN_FORGET_SUBJECT", CHAIN_FORGET_SUBJECT),
    ("DEVICE_ERASURE_INSERT", DEVICE_ERASURE_INSERT),
    ("DEVICE_ERASURES_OF", DEVICE_ERASURES_OF),
    ("DEVICE_ERASURE_SET", DEVICE_ERASURE_SET),
    ("DEVICE_ERASURE_DONE", DEVICE_ERASURE_DONE),
    ("ACCESS_HEAD_INIT", ACCESS_HEAD_INIT),
    ("ACCESS_HEAD_LOCK", ACCESS_HEAD_LOCK),
    ("ACCESS_INSERT", ACCESS_INSERT),
    ("ACCESS_HEAD_SET", ACCESS_HEAD_SET),
    ("ACCESS_LOG_OF", ACCESS_LOG_OF),
    ("ACCESS_LOG_ALL", ACCESS_LOG_ALL),
    ("ACCESS_HEADS_ALL", ACCESS_HEADS_ALL),
    ("PING", PING),
];
