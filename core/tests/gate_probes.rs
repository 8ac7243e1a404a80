//! Hostile probes of the gate's answer: allows that should be denials, through the public API.
mod common;

use common::*;
use consentkit_core::*;

fn scoped(subject: &str, category: &str, action: Action, scope: &str, source: Source) -> DecisionInput {
    let mut d = DecisionInput::new(subject, category, action, source);
    d.scope = Some(scope.into());
    d
}

fn assert_deny_has_reasons(d: &Decision) {
    assert_eq!(d.allowed, d.reasons.is_empty(), "{d:?}");
    if !d.allowed {
        assert!(d.valid_until.is_none() && !d.limited, "{d:?}");
    }
}

/// A child's own item grant made before the subject was marked under age does not become a
/// guardian's consent when the guardian later grants the category: for a subject under age the
/// gate counts only items a guardian granted (since its grant of the category).
#[test]
fn a_childs_item_grant_from_before_the_age_mark_is_no_guardian_consent() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.grant("kid", "device_contacts");
    f.store.record(&scoped("kid", "device_contacts", Action::Grant, "contact-1", Source::Settings)).unwrap();
    assert!(f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed);
    f.clock.advance_millis(60_000);
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    let d = f.store.check("kid", "contact_sync", Some("contact-1")).unwrap();
    assert!(!d.allowed, "{d:?}");
    // The guardian grants the category only: the child's item grant is still not the guardian's.
    f.clock.advance_millis(60_000);
    f.record("kid", "device_contacts", Action::Grant, Source::Guardian);
    assert!(f.allowed("kid", "contact_lookup"), "the guardian's category grant opens the whole-category feature");
    let d = f.store.check("kid", "contact_sync", Some("contact-1")).unwrap();
    assert_deny_has_reasons(&d);
    assert!(!d.allowed, "an item granted by the child alone is allowed: {d:?}");
    assert_eq!(f.reasons("kid", "contact_sync", Some("contact-1")), pairs(&[("scope_not_granted", "device_contacts")]));
    // The guardian grants the item: it counts.
    f.clock.advance_millis(1);
    f.store.record(&scoped("kid", "device_contacts", Action::Grant, "contact-1", Source::Guardian)).unwrap();
    assert!(f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed);
    // An adult's items are not affected by the rule: marked of age again, the item counts.
    f.store.set_under_age("kid", false, Source::Settings).unwrap();
    f.clock.advance_millis(1);
    f.grant("kid", "device_contacts");
    assert!(
        f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed,
        "an adult's item from before the category's grant counts"
    );
}

/// An item granted before the category's latest grant expires on its own expiry, at that very
/// instant, while the category's grant still holds; until then the allow says when it ends.
#[test]
fn an_item_expires_at_its_own_instant_while_the_category_still_holds() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.grant("alice", "device_contacts");
    let item = f.store.record(&scoped("alice", "device_contacts", Action::Grant, "contact-1", Source::Settings)).unwrap();
    let item_until = item.valid_until.unwrap();
    f.clock.advance_millis(30 * 24 * 3600 * 1000);
    let category = f.grant("alice", "device_contacts");
    assert!(category.valid_until.unwrap() > item_until);
    f.clock.set(Timestamp(item_until.0 - 1));
    let d = f.store.check("alice", "contact_sync", Some("contact-1")).unwrap();
    assert!(d.allowed && d.valid_until == Some(item_until), "{d:?}");
    f.clock.set(item_until);
    let d = f.store.check("alice", "contact_sync", Some("contact-1")).unwrap();
    assert_deny_has_reasons(&d);
    assert_eq!(f.reasons("alice", "contact_sync", Some("contact-1")), pairs(&[("scope_not_granted", "device_contacts")]));
    assert!(f.allowed("alice", "contact_lookup"), "the category's own grant still holds");
    // The clock set back does not bring the item back.
    f.clock.set(Timestamp(item_until.0 - 3600 * 1000));
    assert!(!f.store.check("alice", "contact_sync", Some("contact-1")).unwrap().allowed);
}

/// A feature of two legitimate-interest categories: an objection to either denies it, naming only that one.
#[test]
fn an_objection_to_one_of_two_categories_denies_naming_it() {
    let f = Fixture::new(fixture_policy("wk360.json"));
    assert!(f.allowed("lead", "sales_outreach"));
    f.record("lead", "meeting_data", Action::Object, Source::Settings);
    assert_eq!(f.reasons("lead", "sales_outreach", None), pairs(&[("objected", "meeting_data")]));
    assert!(f.allowed("lead", "newsletter"), "the other feature does not need meeting data");
    f.record("lead", "contact_data", Action::Object, Source::Settings);
    assert_eq!(f.reasons("lead", "sales_outreach", None), pairs(&[("objected", "contact_data"), ("objected", "meeting_data")]));
    f.record("lead", "meeting_data", Action::WithdrawObjection, Source::Settings);
    assert_eq!(f.reasons("lead", "sales_outreach", None), pairs(&[("objected", "contact_data")]));
}

/// Subjects that print alike are different subjects: a grant to one opens nothing for the others.
#[test]
fn look_alike_subjects_share_no_grant() {
    let f = Fixture::ucanywhere();
    let nfc = "jos\u{e9}";
    f.grant(nfc, "usage_statistics");
    assert!(f.allowed(nfc, "usage_analytics"));
    for other in ["jose\u{301}", "JOS\u{c9}", "Jos\u{e9}"] {
        let d = f.store.check(other, "usage_analytics", None).unwrap();
        assert_deny_has_reasons(&d);
        assert!(!d.allowed, "{other:?}: {d:?}");
    }
    for bad in ["jos\u{e9} ", " jos\u{e9}", "jos\u{e9}\0", "jos\u{200b}\u{e9}", &"x".repeat(257)] {
        assert!(matches!(f.store.check(bad, "usage_analytics", None), Err(Error::InvalidInput { .. })), "{bad:?}");
    }
    for bad in ["usage_analytics ", "Usage_analytics", "usage_analytics\0", "usage\u{2010}analytics"] {
        assert!(matches!(f.store.check(nfc, bad, None), Err(Error::UnknownFeature(_))), "{bad:?}");
    }
    // Withdrawn under the look-alike id: the real id keeps its grant (a different subject), and
    // withdrawn under the real id, no look-alike answers allow.
    f.record(nfc, "usage_statistics", Action::Withdraw, Source::Settings);
    for s in [nfc, "jose\u{301}"] {
        assert!(!f.allowed(s, "usage_analytics"), "{s:?}");
    }
}

/// Limited or provisional OS access opens the feature flagged limited; revoking it afterwards
/// (denied, restricted, or reported not determined again) denies with the OS reason.
#[test]
fn os_access_revoked_after_an_allow_denies() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "photos_media");
    f.store.set_os_permission(OsPermission::PHOTOS, OsState::Limited).unwrap();
    let d = f.store.check("alice", "photo_sharing", None).unwrap();
    assert!(d.allowed && d.limited, "{d:?}");
    f.store.set_os_permission(OsPermission::PHOTOS, OsState::Granted).unwrap();
    let d = f.store.check("alice", "photo_sharing", None).unwrap();
    assert!(d.allowed && !d.limited, "{d:?}");
    for (state, code) in [
        (OsState::Denied, "os_permission_denied"),
        (OsState::Restricted, "os_permission_restricted"),
        (OsState::NotDetermined, "os_permission_not_determined"),
    ] {
        f.store.set_os_permission(OsPermission::PHOTOS, state).unwrap();
        let d = f.store.check("alice", "photo_sharing", None).unwrap();
        assert_deny_has_reasons(&d);
        assert_eq!(f.reasons("alice", "photo_sharing", None), pairs(&[(code, "photos_media")]), "{state:?}");
    }
}

/// The guardian's dialog for a child: the category and an item granted in one batch (one instant)
/// open the per-item feature for that item, and only for it.
#[test]
fn a_guardians_category_and_item_granted_together_open_the_item() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    f.store
        .record_batch(&[
            DecisionInput::new("kid", "device_contacts", Action::Grant, Source::Guardian),
            scoped("kid", "device_contacts", Action::Grant, "contact-1", Source::Guardian),
        ])
        .unwrap();
    assert!(f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed);
    assert_eq!(f.reasons("kid", "contact_sync", Some("contact-2")), pairs(&[("scope_not_granted", "device_contacts")]));
    // The child cannot add an item itself.
    assert!(f.store.record(&scoped("kid", "device_contacts", Action::Grant, "contact-2", Source::Settings)).is_err());
}

/// A guardian's grant of the category made before the age mark, then the child's own item grant
/// (still unmarked, from settings), then the mark: the item was made after the guardian's grant,
/// but not by the guardian, so it is no guardian's consent (each item grant records whether a
/// guardian made it).
#[test]
fn a_childs_item_after_a_guardians_early_category_grant_is_no_guardian_consent() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.record("kid", "device_contacts", Action::Grant, Source::Guardian);
    f.clock.advance_millis(60_000);
    f.store.record(&scoped("kid", "device_contacts", Action::Grant, "contact-1", Source::Settings)).unwrap();
    f.clock.advance_millis(60_000);
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    assert!(!f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed, "the child's own item is allowed");
}

/// The guardian grants the category and an item, the child (not yet marked) another item, then
/// the subject is marked under age: the guardian's item counts, the child's does not, until the
/// guardian grants it too. An item the guardian granted before its latest grant of the category
/// is granted again (the rule is never looser than the one before items recorded their granter).
#[test]
fn the_guardians_own_item_from_before_the_mark_counts_and_the_childs_does_not() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.record("teen", "device_contacts", Action::Grant, Source::Guardian);
    f.clock.advance_millis(60_000);
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-guardian", Source::Guardian)).unwrap();
    f.clock.advance_millis(60_000);
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-child", Source::Settings)).unwrap();
    let allowed = |item: &str| f.store.check("teen", "contact_sync", Some(item)).unwrap().allowed;
    assert!(allowed("by-guardian") && allowed("by-child"), "not marked: every item counts");
    f.clock.advance_millis(60_000);
    f.store.set_under_age("teen", true, Source::Settings).unwrap();
    let d = f.store.check("teen", "contact_sync", Some("by-guardian")).unwrap();
    assert!(d.allowed && d.valid_until.is_some(), "the guardian's own item counts: {d:?}");
    let d = f.store.check("teen", "contact_sync", Some("by-child")).unwrap();
    assert_deny_has_reasons(&d);
    assert_eq!(f.reasons("teen", "contact_sync", Some("by-child")), pairs(&[("scope_not_granted", "device_contacts")]));
    // The same answers from the stored rows and from the history (reopened: the row keeps each
    // item's flag) and once the whole state is proven again by `verify`.
    let mut f = f;
    f.reopen(None);
    assert!(f.store.check("teen", "contact_sync", Some("by-guardian")).unwrap().allowed);
    assert!(!f.store.check("teen", "contact_sync", Some("by-child")).unwrap().allowed);
    assert!(f.store.verify().is_ok());
    // The guardian grants the child's item: now it counts.
    f.clock.advance_millis(1);
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-child", Source::Guardian)).unwrap();
    assert!(f.store.check("teen", "contact_sync", Some("by-child")).unwrap().allowed);
    // The guardian grants the category again: items it granted before are granted again too.
    f.clock.advance_millis(1);
    f.record("teen", "device_contacts", Action::Grant, Source::Guardian);
    assert!(f.allowed("teen", "contact_lookup"));
    assert_eq!(f.reasons("teen", "contact_sync", Some("by-guardian")), pairs(&[("scope_not_granted", "device_contacts")]));
    f.clock.advance_millis(1);
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-guardian", Source::Guardian)).unwrap();
    assert!(f.store.check("teen", "contact_sync", Some("by-guardian")).unwrap().allowed);
    // Marked of age again: the rule no longer applies; the child's own grants count.
    f.store.set_under_age("teen", false, Source::Settings).unwrap();
    f.clock.advance_millis(1);
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-adult", Source::Settings)).unwrap();
    assert!(f.store.check("teen", "contact_sync", Some("by-adult")).unwrap().allowed);
}

/// An export of a child's record and its import into another store (a new device): the replayed
/// events keep who granted each item (`import` with the original source), so the guardian's item
/// counts there and the child's own item from before the mark does not.
#[test]
fn an_imported_childs_record_keeps_who_granted_each_item() {
    let f = Fixture::ucanywhere();
    f.record("teen", "device_contacts", Action::Grant, Source::Guardian);
    f.clock.advance_millis(60_000);
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-guardian", Source::Guardian)).unwrap();
    f.store.record(&scoped("teen", "device_contacts", Action::Grant, "by-child", Source::Settings)).unwrap();
    f.clock.advance_millis(60_000);
    f.store.set_under_age("teen", true, Source::Settings).unwrap();
    let json = f.store.export_json("teen").unwrap();
    let other = Fixture::ucanywhere();
    other.clock.set(f.clock.now());
    other.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    let imported = other.store.import_json(&json).unwrap();
    assert!(imported.iter().all(|r| r.source == Source::Import));
    assert!(other.store.check("teen", "contact_sync", Some("by-guardian")).unwrap().allowed);
    assert_eq!(other.reasons("teen", "contact_sync", Some("by-child")), pairs(&[("scope_not_granted", "device_contacts")]));
    assert!(other.store.verify().is_ok(), "the imported state is the fold of its history");
}

/// The child granted before being marked under age: the gate denies that grant (`under_age`), so
/// the app is told to ask (the guardian); once the guardian has granted, it is not asked again.
#[test]
fn a_childs_own_grant_from_before_the_age_mark_is_asked_again_for_the_guardian() {
    let f = Fixture::ucanywhere();
    f.grant("kid", "usage_statistics");
    assert!(!f.store.should_ask("kid", "usage_statistics").unwrap(), "an adult's grant in force");
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    assert_eq!(f.reasons("kid", "usage_analytics", None), pairs(&[("under_age", "usage_statistics")]));
    assert!(f.store.should_ask("kid", "usage_statistics").unwrap(), "denied, yet the app is never told to ask the guardian");
    f.record("kid", "usage_statistics", Action::Grant, Source::Guardian);
    assert!(f.allowed("kid", "usage_analytics"));
    assert!(!f.store.should_ask("kid", "usage_statistics").unwrap(), "the guardian's grant is in force");
}

/// The guardian grants the category and an item; the child (not yet marked) grants the same item
/// again from settings, then is marked under age: the item in force is the child's, so it no
/// longer counts. Unmarking and marking again changes nothing the history does not say.
#[test]
fn a_childs_regrant_of_the_guardians_item_takes_the_guardians_flag_away() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.store
        .record_batch(&[
            DecisionInput::new("kid", "device_contacts", Action::Grant, Source::Guardian),
            scoped("kid", "device_contacts", Action::Grant, "contact-1", Source::Guardian),
        ])
        .unwrap();
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    assert!(f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed, "the guardian's item");
    f.clock.advance_millis(60_000);
    f.store.set_under_age("kid", false, Source::Settings).unwrap();
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    assert!(f.store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed, "unmarked and marked again");
    f.store.set_under_age("kid", false, Source::Settings).unwrap();
    f.store.record(&scoped("kid", "device_contacts", Action::Grant, "contact-1", Source::Settings)).unwrap();
    f.store.set_under_age("kid", true, Source::Settings).unwrap();
    assert_eq!(f.reasons("kid", "contact_sync", Some("contact-1")), pairs(&[("scope_not_granted", "device_contacts")]));
}
