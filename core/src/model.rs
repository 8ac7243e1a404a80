//! The vocabulary of consent: actions, sources, statuses, legal bases and OS permission states
//! (the permissions themselves are open ids: [`crate::os_permission`]).
//! Every value has one snake_case name, used in SQLite, JSON, the CLI and the bindings alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Defines a fieldless enum with a stable snake_case name per variant, `Display`, `FromStr`
/// (whose error names the bad value and the accepted ones) and serde in those names.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// From its name, through [`FromStr`] (see `named_value`).
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                named_value(deserializer)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} '{}' (expected one of: {})",
                        $what,
                        crate::text::shorten(text),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

/// A [`named_enum!`] value read from its name: a string parsed by the enum's `FromStr`, whose
/// error names the bad value and the accepted ones. One small body for every such enum, instead
/// of serde's derived visitor per enum (which also reads variant indices, bytes and the
/// `{"name": null}` form, none of which ConsentKit writes).
fn named_value<'de, T: FromStr<Err = String>, D: serde::Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
}

named_enum!(
    /// Why the app may process a category (GDPR Art. 6(1)).
    LegalBasis, "legal basis" {
        /// Art. 6(1)(a): the subject's consent, which can be refused and withdrawn.
        Consent = "consent",
        /// Art. 6(1)(b): needed for a contract with the subject (or their employer).
        Contract = "contract",
        /// Art. 6(1)(f): the controller's legitimate interest; the subject may object (Art. 21).
        LegitimateInterest = "legitimate_interest",
        /// Art. 6(1)(c): required by law.
        LegalObligation = "legal_obligation",
    }
);

named_enum!(
    /// What a recorded event did.
    Action, "action" {
        /// The subject agreed (DPV: GivenConsent / ConsentGiven).
        Grant = "grant",
        /// The subject declined when asked (DPV: ConsentRefused).
        Refuse = "refuse",
        /// The subject took back a consent (DPV: ConsentWithdrawn).
        Withdraw = "withdraw",
        /// The subject objected to processing on legitimate interest (GDPR Art. 21).
        Object = "object",
        /// The subject took back an objection.
        WithdrawObjection = "withdraw_objection",
        /// The system recorded that a grant reached the end of its lifetime (DPV: ConsentExpired).
        Expire = "expire",
        /// The device's OS permission changed (device-wide, no subject).
        OsPermission = "os_permission",
        /// A subject was marked under (or no longer under) the age of digital consent.
        AgeStatus = "age_status",
        /// A subject's records were erased (Art. 17); the event holds only a keyed hash of the subject.
        Erasure = "erasure",
        /// The retention purge removed events past their retention period.
        Purge = "purge",
    }
);

impl Action {
    /// The five actions an app or support tool records; the others are the system's own.
    pub fn is_decision(self) -> bool {
        matches!(self, Action::Grant | Action::Refuse | Action::Withdraw | Action::Object | Action::WithdrawObjection)
    }
}

named_enum!(
    /// Where a decision came from.
    Source, "source" {
        /// The app's first-run consent dialog.
        Onboarding = "onboarding",
        /// The app's own settings screen.
        Settings = "settings",
        /// The operating system's settings (or a change the app observed there).
        OsSettings = "os_settings",
        /// Support staff recording a request received by phone or letter (never a grant).
        Support = "support",
        /// A parent or guardian acting for a subject under the age of digital consent.
        Guardian = "guardian",
        /// Restored from an export document of another store.
        Import = "import",
        /// The SDK itself (expiry, erasure, purge).
        System = "system",
    }
);

impl Source {
    /// The sources an erasure may come from: the subject (the app's settings) or support staff
    /// acting on the subject's request. The one definition for [`crate::ConsentStore::erase`]'s
    /// check, [`crate::chain::may_claim_tombstones`] and the schema's update trigger.
    pub const ERASURE: [Source; 2] = [Source::Settings, Source::Support];

    /// The sources a purge record comes from (the SDK itself). As [`Source::ERASURE`].
    pub const PURGE: [Source; 1] = [Source::System];

    /// True when a grant may come from this source: the subject's own act in the app (onboarding,
    /// settings) or a guardian's. Never support staff (consent is the subject's own act), the OS
    /// settings (an OS permission is not a consent to a purpose), an import or the SDK itself.
    pub fn may_grant(self) -> bool {
        matches!(self, Source::Onboarding | Source::Settings | Source::Guardian)
    }
}

named_enum!(
    /// A subject's standing for one category. The W3C Data Privacy Vocabulary term each maps to
    /// is in its doc comment.
    Status, "status" {
        /// No consent is needed: contract or legal obligation, or legitimate interest not objected to
        /// (DPV: the processing's legal basis is `dpv:Contract`, `dpv:LegalObligation` or `dpv:LegitimateInterest`).
        NotRequired = "not_required",
        /// A consent category never decided (DPV: ConsentUnknown / ConsentRequested when prompted).
        NotAsked = "not_asked",
        /// Consent given and in force (DPV: ConsentGiven).
        Granted = "granted",
        /// Consent declined when asked (DPV: ConsentRefused).
        Refused = "refused",
        /// Consent given earlier and taken back (DPV: ConsentWithdrawn).
        Withdrawn = "withdrawn",
        /// Consent given but past its lifetime (DPV: ConsentExpired).
        Expired = "expired",
        /// Consent given for an older purpose version; must be asked again (DPV: RenewedConsentGiven
        /// is what a new grant becomes; until then ConsentInvalidated).
        RenewalRequired = "renewal_required",
        /// Legitimate interest objected to by the subject (DPV: ObjectionToProcessing / dpv:hasObjection).
        Objected = "objected",
    }
);

named_enum!(
    /// The OS's answer for a permission, as the platform reports it.
    OsState, "OS permission state" {
        /// Full access.
        Granted = "granted",
        /// Partial access: iOS's limited photo library, Android's partial (user-selected) photo access,
        /// approximate location, write-only calendar. The gate allows with `limited = true`.
        Limited = "limited",
        /// iOS provisional notifications (delivered quietly, without a prompt). The gate allows with
        /// `limited = true`.
        Provisional = "provisional",
        /// The user said no, or revoked it in the OS settings.
        Denied = "denied",
        /// Never asked (also the state before the platform reports anything).
        NotDetermined = "not_determined",
        /// Blocked by parental controls or device management.
        Restricted = "restricted",
    }
);

named_enum!(
    /// Why the gate denied a feature; each reason names the category it concerns.
    ReasonCode, "reason" {
        ConsentNotAsked = "consent_not_asked",
        ConsentRefused = "consent_refused",
        ConsentWithdrawn = "consent_withdrawn",
        ConsentExpired = "consent_expired",
        RenewalRequired = "renewal_required",
        Objected = "objected",
        /// A per-item feature was checked for an item (scope) that was never granted or was withdrawn.
        ScopeNotGranted = "scope_not_granted",
        OsPermissionDenied = "os_permission_denied",
        OsPermissionNotDetermined = "os_permission_not_determined",
        OsPermissionRestricted = "os_permission_restricted",
        UnderAge = "under_age",
        /// The store could not be opened or read: the gate fails closed.
        StoreUnavailable = "store_unavailable",
    }
);

named_enum!(
    /// How a policy treats subjects under its age of digital consent.
    ChildrenRule, "children rule" {
        /// A guardian may grant on the child's behalf (GDPR Art. 8).
        GuardianConsent = "guardian_consent",
        /// The controller processes no data of children at all: every feature is denied.
        NotServed = "not_served",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_name_the_value() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), *a);
        }
        for s in Status::ALL {
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        let err = "grnat".parse::<Action>().unwrap_err();
        assert!(err.contains("'grnat'") && err.contains("grant"), "{err}");
        assert!(Action::Grant.is_decision() && !Action::Expire.is_decision());
    }

    #[test]
    fn json_reads_every_name_and_refuses_anything_else_naming_it() {
        for s in Source::ALL {
            assert_eq!(serde_json::from_str::<Source>(&serde_json::to_string(s).unwrap()).unwrap(), *s);
        }
        // An escaped name is the same name.
        assert_eq!(serde_json::from_str::<Action>(r#""gr\u0061nt""#).unwrap(), Action::Grant);
        let err = serde_json::from_str::<LegalBasis>(r#""concent""#).unwrap_err().to_string();
        assert!(err.contains("'concent'") && err.contains("consent, contract"), "{err}");
        // Only the name: no variant index, no `{"name": null}` form (ConsentKit writes neither).
        assert!(serde_json::from_str::<Status>("0").is_err());
        assert!(serde_json::from_str::<Status>(r#"{"granted":null}"#).is_err());
    }
}
