-- An erasure made on the device (the user erased their data in the app) removes the server's
-- copies of the events it erased, in the ingest transaction that stores its erasure record.
-- The ingest role may never DELETE events itself (sql/roles.sql); it may only call this function,
-- which deletes exactly the events the device's own hash-verified erasure record lists, of that
-- device only, and runs with its owner's rights (SECURITY DEFINER, fixed search_path).
-- Every statement filters on subject_key (the distribution column, see ARCHITECTURE.md).
CREATE OR REPLACE FUNCTION consentkit_device_erase(p_device_key text, p_device text, p_seqs bigint[])
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    keys text[];
    erased bigint;
BEGIN
    SELECT array_agg(DISTINCT c.event_subject_key) INTO keys FROM device_chain c
        WHERE c.subject_key = p_device_key AND c.device = p_device AND c.seq = ANY(p_seqs) AND c.event_subject_key IS NOT NULL;
    IF keys IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM events WHERE subject_key = ANY(keys) AND device = p_device AND seq = ANY(p_seqs) AND has_subject;
    GET DIAGNOSTICS erased = ROW_COUNT;
    DELETE FROM subject_devices sd WHERE sd.subject_key = ANY(keys) AND sd.device = p_device
        AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subject_key = sd.subject_key AND e.device = p_device);
    RETURN erased;
END
$$;
