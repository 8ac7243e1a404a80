-- The database roles the server connects as (run by the owner, a superuser or CREATEROLE role).
-- Least privilege: the ingest role can INSERT events but never UPDATE or DELETE them; only the
-- DPO role can DELETE (erasure); the access log is append-only for everyone.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['consentkit_ingest', 'consentkit_support', 'consentkit_dpo', 'consentkit_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
END $$;

REVOKE ALL ON events, device_chain, device_heads, device_os, subject_devices, device_erasures, erasures, access_log, access_heads
    FROM PUBLIC, consentkit_ingest, consentkit_support, consentkit_dpo, consentkit_auditor;

GRANT SELECT, INSERT ON events, device_chain, subject_devices TO consentkit_ingest;
GRANT SELECT, INSERT, UPDATE ON device_heads, device_os TO consentkit_ingest;
GRANT SELECT ON erasures TO consentkit_ingest;
GRANT SELECT, UPDATE, DELETE ON device_erasures TO consentkit_ingest;

GRANT SELECT ON events, device_chain, device_heads, device_os, subject_devices, device_erasures, erasures TO consentkit_support;
GRANT SELECT, INSERT ON access_log TO consentkit_support;
GRANT SELECT, INSERT, UPDATE ON access_heads TO consentkit_support;

GRANT SELECT ON events, device_chain, device_heads, device_os, subject_devices, erasures TO consentkit_dpo;
GRANT DELETE ON events, subject_devices TO consentkit_dpo;
GRANT UPDATE (event_subject_key) ON device_chain TO consentkit_dpo;
GRANT INSERT ON erasures, device_erasures TO consentkit_dpo;
GRANT SELECT, INSERT ON access_log TO consentkit_dpo;
GRANT SELECT, INSERT, UPDATE ON access_heads TO consentkit_dpo;

GRANT SELECT ON access_log, access_heads TO consentkit_auditor;

-- The one way the ingest role removes events: the device's own erasure records (sql/device_erase.sql).
REVOKE ALL ON FUNCTION consentkit_device_erase(text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consentkit_device_erase(text, text, bigint) TO consentkit_ingest;
