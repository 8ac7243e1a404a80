#!/usr/bin/env python3
"""Writes the export documents the import scenarios read: one honest export and forgeries made
the way an attacker would (edited, then resealed: the chain is unkeyed, so anyone can recompute
it). Run from anywhere: python3 tests/conformance/documents/make_documents.py

The hashes follow the canonical encoding v1 of core/src/chain.rs (content_hash, link_hash)."""
import datetime
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GENESIS = "0" * 64
FIELDS = ["id", "seq", "subject", "category", "action", "scope", "source", "policy_id", "policy_version",
          "purpose_version", "at", "valid_until", "permission", "os_state", "detail"]


def millis(text):
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def content_hash(r):
    h = hashlib.sha256(b"consentkit-event-v1")
    for name in FIELDS:
        v = r.get(name)
        if v is None:
            h.update(struct.pack(">I", 0xFFFFFFFF))
            continue
        if name in ("at", "valid_until"):
            v = str(millis(v))
        b = str(v).encode()
        h.update(struct.pack(">I", len(b)) + b)
    return h.hexdigest()


def sealed(events):
    prev = GENESIS
    out = []
    for seq, e in enumerate(events, 1):
        r = {name: None for name in FIELDS}
        r.update({"seq": seq, "policy_id": "ucanywhere", "policy_version": "2018-05-01", "purpose_version": 1})
        r.update(e)
        r["content_hash"] = content_hash(r)
        r["prev_hash"] = prev
        r["hash"] = hashlib.sha256((prev + r["content_hash"]).encode()).hexdigest()
        prev = r["hash"]
        out.append(r)
    return out


def document(subject, events):
    return {
        "format": "consentkit-export/1",
        "exported_at": "2026-02-01T09:00:00Z",
        "subject": subject,
        "policy": {"id": "ucanywhere", "version": "2018-05-01", "categories": []},
        "under_age": False,
        "state": [],
        "history": sealed(events),
        "os_permissions": [],
    }


def event(n, subject, category, action, source, at, **more):
    e = {"id": f"00000000-0000-4000-8000-{n:012d}", "subject": subject, "category": category, "action": action,
         "source": source, "at": at}
    e.update(more)
    return e


def write(name, doc):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


write("honest_alice.json", document("alice", [
    event(1, "alice", "usage_statistics", "grant", "onboarding", "2026-01-15T09:00:00Z", valid_until="2027-02-15T09:00:00Z"),
    event(2, "alice", "photos_media", "refuse", "onboarding", "2026-01-15T09:00:00Z", valid_until="2026-07-15T09:00:00Z"),
]))
# Issue #9 item 2, forgery 1: a withdraw_objection on a consent category (it read as not_required: allowed).
write("forged_withdraw_objection_on_consent.json", document("mallory", [
    event(11, "mallory", "usage_statistics", "refuse", "onboarding", "2026-01-15T09:00:00Z", valid_until="2026-07-15T09:00:00Z"),
    event(12, "mallory", "usage_statistics", "withdraw_objection", "settings", "2026-01-16T09:00:00Z"),
]))
# Forgery 2: a grant by support, no valid_until, purpose_version 999, OS permission fields set.
write("forged_support_grant_with_os_fields.json", document("mallory", [
    event(21, "mallory", "device_contacts", "grant", "support", "2026-01-15T09:00:00Z",
          purpose_version=999, permission="contacts", os_state="granted"),
]))
# Forgery 3: a 5 KB scope full of terminal escape sequences.
write("forged_escape_scope.json", document("mallory", [
    event(31, "mallory", "device_contacts", "grant", "settings", "2026-01-15T09:00:00Z", valid_until="2027-02-15T09:00:00Z"),
    event(32, "mallory", "device_contacts", "grant", "settings", "2026-01-15T09:00:01Z", valid_until="2027-02-15T09:00:01Z",
          scope=("\u001b[2J\u001b[31mOWNED\u001b]0;pwned\u0007" * 160)[:5000]),
]))
