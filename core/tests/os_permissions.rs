//! OS permissions named by the catalog: the predefined ones, a catalog's own id, the platform
//! states (limited, provisional), fail-closed defaults, validation at load and the stored form.

mod common;
use common::*;
use consentkit_core::*;

fn fieldtrip() -> Policy {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/policies/fieldtrip_os_permissions.json");
    Policy::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// (feature, category, permission) of the FieldTrip catalog.
const FIELDTRIP: [(&str, &str, &str); 9] = [
    ("share_photos", "trip_photos", "photos"),
    ("record_note", "voice_notes", "microphone"),
    ("scan_ticket", "scanning", "camera"),
    ("nearby", "whereabouts", "location"),
    ("remind", "reminders", "notifications"),
    ("add_to_calendar", "itinerary", "calendar"),
    ("measure_ads", "ad_measurement", "app_tracking_transparency"),
    ("invite_buddies", "travel_buddies", "contacts"),
    ("beacon_guide", "beacons", "bluetooth_scan"),
];

#[test]
fn a_catalog_names_predefined_and_its_own_permissions() {
    let policy = fieldtrip();
    for (_, category, permission) in FIELDTRIP {
        assert_eq!(policy.category(category).unwrap().os_permission.map(|p| p.as_str()), Some(permission));
    }
    let camera = policy.category("scanning").unwrap().os_permission.unwrap();
    assert_eq!(camera, OsPermission::CAMERA);
    assert_eq!(policy.category("ad_measurement").unwrap().os_permission, Some(OsPermission::APP_TRACKING_TRANSPARENCY));
}

#[test]
fn a_permission_never_reported_is_not_determined_and_denies() {
    let f = Fixture::new(fieldtrip());
    for (feature, category, _) in FIELDTRIP {
        f.grant("alice", category);
        assert_eq!(f.reasons("alice", feature, None), pairs(&[("os_permission_not_determined", category)]), "{feature}");
    }
    // Reporting one permission leaves every other one not determined.
    f.store.set_os_permission(OsPermission::CAMERA, OsState::Granted).unwrap();
    assert!(f.allowed("alice", "scan_ticket"));
    assert!(!f.allowed("alice", "record_note"));
    assert_eq!(f.store.os_state(OsPermission::MICROPHONE), OsState::NotDetermined);
}

#[test]
fn every_state_of_every_permission_reads_the_same() {
    let f = Fixture::new(fieldtrip());
    let cases = [
        (OsState::Granted, true, false, None),
        (OsState::Limited, true, true, None),
        (OsState::Provisional, true, true, None),
        (OsState::Denied, false, false, Some("os_permission_denied")),
        (OsState::NotDetermined, false, false, Some("os_permission_not_determined")),
        (OsState::Restricted, false, false, Some("os_permission_restricted")),
    ];
    for (feature, category, permission) in FIELDTRIP {
        f.grant("alice", category);
        let permission = OsPermission::parse(permission).unwrap();
        for (state, allowed, limited, reason) in cases {
            f.store.set_os_permission(permission, state).unwrap();
            let d = f.store.check("alice", feature, None).unwrap();
            assert_eq!((d.allowed, d.limited), (allowed, limited), "{feature} {state}");
            let expected = reason.map(|r| pairs(&[(r, category)])).unwrap_or_default();
            assert_eq!(f.reasons("alice", feature, None), expected, "{feature} {state}");
        }
    }
}

#[test]
fn provisional_never_overrides_a_missing_consent() {
    let f = Fixture::new(fieldtrip());
    f.store.set_os_permission(OsPermission::NOTIFICATIONS, OsState::Provisional).unwrap();
    let d = f.store.check("alice", "remind", None).unwrap();
    assert!(!d.allowed && !d.limited);
    assert_eq!(f.reasons("alice", "remind", None), pairs(&[("consent_not_asked", "reminders")]));
}

#[test]
fn own_permissions_and_new_states_survive_a_reopen_and_verify() {
    let mut f = Fixture::new(fieldtrip());
    let beacons = OsPermission::parse("bluetooth_scan").unwrap();
    f.grant("alice", "beacons");
    f.grant("alice", "reminders");
    f.store.set_os_permission(beacons, OsState::Granted).unwrap();
    f.store.set_os_permission(OsPermission::NOTIFICATIONS, OsState::Provisional).unwrap();
    f.reopen(None);
    assert_eq!(f.store.os_state(beacons), OsState::Granted);
    assert_eq!(f.store.os_state(OsPermission::NOTIFICATIONS), OsState::Provisional);
    assert!(f.allowed("alice", "beacon_guide"));
    assert!(f.store.check("alice", "remind", None).unwrap().limited);
    assert!(f.store.verify().is_ok());
}

#[test]
fn the_builtin_catalog_and_its_stored_form_are_unchanged() {
    let policy = Policy::builtin();
    assert_eq!(policy.category("device_contacts").unwrap().os_permission, Some(OsPermission::CONTACTS));
    assert_eq!(policy.category("photos_media").unwrap().os_permission, Some(OsPermission::PHOTOS));
    assert!(policy.to_json().contains("\"os_permission\": \"contacts\""));
    let f = Fixture::ucanywhere();
    let r = f.store.set_os_permission(OsPermission::PHOTOS, OsState::Limited).unwrap().unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!((json["permission"].as_str(), json["os_state"].as_str()), (Some("photos"), Some("limited")));
}

#[test]
fn a_bad_permission_id_in_a_catalog_is_an_error_naming_the_path() {
    let base = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/policies/fieldtrip_os_permissions.json"),
    )
    .unwrap();
    let long = "a".repeat(65);
    for bad in ["Camera", "camera-roll", "", "9lives", long.as_str()] {
        let text = base.replace("\"os_permission\": \"camera\"", &format!("\"os_permission\": \"{bad}\""));
        let err = Policy::from_json(&text).unwrap_err().to_string();
        assert!(err.contains("$.categories[2].os_permission"), "{bad}: {err}");
        assert!(err.contains(&bad[..bad.len().min(20)]), "{bad}: {err}");
    }
}

#[test]
fn an_unknown_os_state_is_an_error_naming_it() {
    let err = "partially_granted".parse::<OsState>().unwrap_err();
    assert!(err.contains("'partially_granted'") && err.contains("provisional"), "{err}");
    for state in OsState::ALL {
        assert_eq!(state.as_str().parse::<OsState>().unwrap(), *state);
    }
}
