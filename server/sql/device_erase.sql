-- An erasure made on the device (the user erased their data in the app) removes the server's
-- copies of the events it erased, in the ingest transaction that stores its erasure record.
-- The ingest role may never DELETE events itself (sql/roles.sql); it may only call this function,
-- with the sequence number of an erasure record already stored for that device. The function reads
-- the record's `removed_seqs` itself and deletes exactly those events of that device, so a caller
-- cannot name other events; it runs with its owner's rights (SECURITY DEFINER, fixed search_path).
-- Every statement filters on subject_key (the distribution column, see ARCHITECTURE.md).
DROP FUNCTION IF EXISTS consentkit_device_erase(text, text, bigint[]);
CREATE OR REPLACE FUNCTION consentkit_device_erase(p_device_key text, p_device text, p_erasure_seq bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    detail_text text;
    seqs bigint[];
    keys text[];
    erased bigint;
BEGIN
    -- The erasure record must be stored already (this transaction stored it, hash-verified):
    -- the function deletes only what that record lists, whatever its caller passes.
    SELECT e.detail INTO detail_text FROM events e
        WHERE e.subject_key = p_device_key AND e.device = p_device AND e.seq = p_erasure_seq AND e.action = 'erasure' AND NOT e.has_subject;
    IF detail_text IS NULL THEN
        RETURN 0;
    END IF;
    BEGIN
        SELECT array_agg(v::bigint) INTO seqs FROM jsonb_array_elements_text(detail_text::jsonb -> 'removed_seqs') AS v
            WHERE v ~ '^[0-9]{1,18}$' AND v::bigint < p_erasure_seq;
    EXCEPTION WHEN others THEN
        seqs := NULL; -- a detail that is not the core's JSON lists nothing
    END;
    IF seqs IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(DISTINCT c.event_subject_key) INTO keys FROM device_chain c
        WHERE c.subject_key = p_device_key AND c.device = p_device AND c.seq = ANY(seqs) AND c.event_subject_key IS NOT NULL;
    IF keys IS NULL THEN
        RETURN 0;
    END IF;
    -- Fail closed: a subject another device also sent events of keeps this device's copies (its
    -- withdrawal here may be what keeps another device's older grant from counting); that is the
    -- DPO's erasure. And an erasure removes every event of its subject on the device, so a record
    -- that leaves some of them out (a selective deletion) deletes nothing of that subject.
    keys := ARRAY(
        SELECT k FROM unnest(keys) AS k
        EXCEPT SELECT o.subject_key FROM events o WHERE o.subject_key = ANY(keys) AND o.device <> p_device
        EXCEPT SELECT l.subject_key FROM events l WHERE l.subject_key = ANY(keys) AND l.device = p_device
            AND l.seq < p_erasure_seq AND NOT l.seq = ANY(seqs));
    IF cardinality(keys) = 0 THEN
        RETURN 0;
    END IF;
    DELETE FROM events WHERE subject_key = ANY(keys) AND device = p_device AND seq = ANY(seqs) AND has_subject;
    GET DIAGNOSTICS erased = ROW_COUNT;
    DELETE FROM subject_devices sd WHERE sd.subject_key = ANY(keys) AND sd.device = p_device
        AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subject_key = sd.subject_key AND e.device = p_device);
    RETURN erased;
END
$$;
