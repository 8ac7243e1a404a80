//! The policy catalog: an app's data categories (with legal basis, OS permission, retention and
//! purpose version) and the features that need them. Loaded from JSON and validated as a whole.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

use crate::clock::Period;
use crate::error::{Error, Result};
use crate::id::{same_id, CatalogId};
use crate::model::{ChildrenRule, LegalBasis};
use crate::os_permission::OsPermission;

/// The hasher of the id indexes: foldhash, seeded at random per process. Ids come from the app's
/// own catalog, never from an attacker; foldhash is several times faster than SipHash on short
/// keys, and its random seed still keeps collisions from being precomputed.
type IdHash = foldhash::fast::RandomState;

/// Longest id (policy, category, feature) in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// The built-in catalog: PCS's UCAnywhere app, derived from its privacy statement.
pub const UCANYWHERE_JSON: &str = include_str!("../catalogs/ucanywhere.json");

/// One data category of the app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Stable id, never reused for another meaning.
    pub id: String,
    /// Short human title.
    pub title: String,
    /// What the data is and what it is used for.
    #[serde(default)]
    pub description: String,
    /// Why it may be processed.
    pub legal_basis: LegalBasis,
    /// The OS permission its features also need, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_permission: Option<OsPermission>,
    /// How long its records are kept after the subject's last interaction with it.
    pub retention: Period,
    /// Bumped when what the data is used for changes materially; older grants then need renewal.
    #[serde(default = "one")]
    pub purpose_version: u32,
}

/// One feature of the app and the categories it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Stable id the app checks against.
    pub id: String,
    /// Short human title.
    #[serde(default)]
    pub title: String,
    /// Every category it needs (one or more); all must allow it.
    pub categories: Vec<String>,
    /// Granted per single item (a scope, e.g. one contact id): `check` needs the item granted too.
    #[serde(default)]
    pub per_item: bool,
}

/// A validated catalog. Construct with [`Policy::from_json`] or [`Policy::builtin`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Stable id of the app's policy; a store belongs to one policy id.
    pub id: String,
    /// The version in force (free text, e.g. a date); recorded with every event.
    pub version: String,
    /// Human name of the app or controller.
    #[serde(default)]
    pub name: String,
    /// How long a grant stays valid; `None` for no limit.
    #[serde(default)]
    pub consent_lifetime: Option<Period>,
    /// How long after a refusal the app should not ask again.
    #[serde(default)]
    pub reask_after_refusal: Option<Period>,
    /// Age of digital consent (GDPR Art. 8: 13 to 16 depending on the member state).
    #[serde(default = "sixteen")]
    pub age_of_digital_consent: u8,
    /// What happens to subjects marked under that age.
    #[serde(default = "guardian")]
    pub children: ChildrenRule,
    /// The data categories.
    pub categories: Vec<Category>,
    /// The features.
    pub features: Vec<Feature>,
    #[serde(skip)]
    category_index: HashMap<String, usize, IdHash>,
    #[serde(skip)]
    feature_index: FeatureTable,
    /// Per category (in order): its id as handed out in answers.
    #[serde(skip)]
    category_names: Vec<CatalogId>,
    /// Per feature (in order): what the gate needs of it, resolved at load time.
    #[serde(skip)]
    plans: Vec<FeaturePlan>,
}

/// A feature resolved at load time, so a check does one id lookup and no allocation: its id as
/// handed out in answers and its categories as indices into [`Policy::categories`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FeaturePlan {
    /// The feature's id.
    pub(crate) id: CatalogId,
    /// Indices into `Policy::categories`, in the feature's order.
    pub(crate) categories: Box<[usize]>,
}

/// The feature ids, for the gate's lookup: open addressing over their foldhash values (at least
/// twice as many slots as features, so a probe always ends), so a lookup hashes the id once,
/// reads a slot or two and compares the id inline ([`same_id`]), with no `memcmp` call. Derived
/// from the features, so it takes no part in comparing policies.
#[derive(Clone, Debug, Default)]
struct FeatureTable {
    hasher: IdHash,
    /// Per slot: (hash of the id, index into `Policy::features` + 1), or (0, 0) when empty.
    slots: Box<[(u64, usize)]>,
}

impl FeatureTable {
    /// The table of `features` (their ids are distinct: validated before).
    fn new(features: &[Feature]) -> FeatureTable {
        let hasher = IdHash::default();
        let len = (features.len() * 2).next_power_of_two().max(4);
        let mut slots = vec![(0u64, 0usize); len].into_boxed_slice();
        for (i, f) in features.iter().enumerate() {
            let h = hasher.hash_one(f.id.as_str());
            let mut k = h as usize & (len - 1);
            while slots[k].1 != 0 {
                k = (k + 1) & (len - 1);
            }
            slots[k] = (h, i + 1);
        }
        FeatureTable { hasher, slots }
    }

    /// The index of the feature with this id in `features` (the ones the table was built of).
    #[inline]
    fn get(&self, id: &str, features: &[Feature]) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let h = self.hasher.hash_one(id);
        let mut k = h as usize & mask;
        loop {
            let (hash, index) = self.slots[k];
            if index == 0 {
                return None;
            }
            if hash == h && same_id(&features[index - 1].id, id) {
                return Some(index - 1);
            }
            k = (k + 1) & mask;
        }
    }
}

impl PartialEq for FeatureTable {
    /// Always equal: the table is derived from the features, which the policies compare.
    fn eq(&self, _: &FeatureTable) -> bool {
        true
    }
}

fn one() -> u32 {
    1
}
fn sixteen() -> u8 {
    16
}
fn guardian() -> ChildrenRule {
    ChildrenRule::GuardianConsent
}

impl Policy {
    /// The built-in UCAnywhere catalog (the default).
    pub fn builtin() -> Policy {
        // The embedded catalog is validated by a unit test. Should it ever fail, we log and
        // fall back to a catalog with no features: every check is then an error, never an allow.
        Policy::from_json(UCANYWHERE_JSON).unwrap_or_else(|e| {
            log::error!("built-in catalog is invalid: {e}");
            Policy::empty("ucanywhere")
        })
    }

    fn empty(id: &str) -> Policy {
        Policy {
            id: id.into(),
            version: "invalid".into(),
            name: String::new(),
            consent_lifetime: None,
            reask_after_refusal: None,
            age_of_digital_consent: 16,
            children: ChildrenRule::GuardianConsent,
            categories: vec![],
            features: vec![],
            category_index: HashMap::default(),
            feature_index: FeatureTable::default(),
            category_names: vec![],
            plans: vec![],
        }
    }

    /// Parses and validates a catalog. Errors name the JSON path and the bad value.
    pub fn from_json(text: &str) -> Result<Policy> {
        let mut policy: Policy = crate::json_path::from_str(text).map_err(|(path, why)| Error::Policy { path, why })?;
        policy.validate()?;
        Ok(policy)
    }

    /// The catalog as pretty JSON (the same shape [`Policy::from_json`] reads).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    fn validate(&mut self) -> Result<()> {
        let err = |path: String, why: String| Error::Policy { path, why };
        check_id("$.id", &self.id)?;
        if self.version.is_empty() || self.version.len() > MAX_ID_BYTES {
            return Err(err("$.version".into(), format!("'{}' must be 1 to {MAX_ID_BYTES} bytes", self.version)));
        }
        if self.consent_lifetime.is_some_and(|p| p.is_zero()) {
            // A grant that lasts no time would be expired at the instant it is given.
            return Err(err("$.consent_lifetime".into(), "'P0D': a grant must last some time (omit the field for no limit)".into()));
        }
        if self.categories.is_empty() {
            return Err(err("$.categories".into(), "a policy needs at least one category".into()));
        }
        let mut categories = HashMap::default();
        for (i, c) in self.categories.iter().enumerate() {
            check_id(&format!("$.categories[{i}].id"), &c.id)?;
            if categories.insert(c.id.clone(), i).is_some() {
                return Err(err(format!("$.categories[{i}].id"), format!("duplicate category id '{}'", c.id)));
            }
            if c.purpose_version == 0 {
                return Err(err(format!("$.categories[{i}].purpose_version"), "0: purpose versions start at 1".into()));
            }
        }
        let mut features: HashMap<&str, usize> = HashMap::default();
        for (i, f) in self.features.iter().enumerate() {
            check_id(&format!("$.features[{i}].id"), &f.id)?;
            if features.insert(f.id.as_str(), i).is_some() {
                return Err(err(format!("$.features[{i}].id"), format!("duplicate feature id '{}'", f.id)));
            }
            if f.categories.is_empty() {
                return Err(err(format!("$.features[{i}].categories"), format!("feature '{}' needs at least one category", f.id)));
            }
            let mut seen = HashSet::new();
            for (j, c) in f.categories.iter().enumerate() {
                let path = format!("$.features[{i}].categories[{j}]");
                if !categories.contains_key(c) {
                    return Err(err(path, format!("feature '{}' requires unknown category '{}'", f.id, crate::error::shorten(c))));
                }
                if !seen.insert(c) {
                    return Err(err(path, format!("category '{c}' listed twice")));
                }
            }
            // Only a consent category takes item grants; without one, a check with any item would
            // allow it with no item granted.
            if f.per_item && !f.categories.iter().any(|c| self.categories[categories[c]].legal_basis == LegalBasis::Consent) {
                let why = format!("per-item feature '{}' needs a consent category (only consent is granted per item)", f.id);
                return Err(err(format!("$.features[{i}].per_item"), why));
            }
        }
        self.category_names = self.categories.iter().map(|c| CatalogId::new(&c.id)).collect();
        self.plans = self
            .features
            .iter()
            .map(|f| FeaturePlan { id: CatalogId::new(&f.id), categories: f.categories.iter().map(|c| categories[c]).collect() })
            .collect();
        self.category_index = categories;
        self.feature_index = FeatureTable::new(&self.features);
        Ok(())
    }

    /// The feature with this id and its resolved plan, or `UnknownFeature` (one hash lookup).
    #[inline]
    pub(crate) fn feature_plan(&self, id: &str) -> Result<(&Feature, &FeaturePlan)> {
        match self.feature_index.get(id, &self.features) {
            Some(i) => Ok((&self.features[i], &self.plans[i])),
            None => Err(Error::UnknownFeature(crate::error::shorten(&id.escape_debug().to_string()))),
        }
    }

    /// The id of the category at `index` as handed out in answers.
    #[inline]
    pub(crate) fn category_name(&self, index: usize) -> &CatalogId {
        &self.category_names[index]
    }

    /// The category with this id, or `UnknownCategory`.
    pub fn category(&self, id: &str) -> Result<&Category> {
        self.category_index
            .get(id)
            .map(|&i| &self.categories[i])
            .ok_or_else(|| Error::UnknownCategory(crate::error::shorten(&id.escape_debug().to_string())))
    }

    /// True if a per-item feature uses this category, so its decisions may name one item (a scope).
    pub fn is_per_item(&self, category: &str) -> bool {
        self.features.iter().any(|f| f.per_item && f.categories.iter().any(|c| c == category))
    }

    /// The feature with this id, or `UnknownFeature`.
    pub fn feature(&self, id: &str) -> Result<&Feature> {
        self.feature_index
            .get(id, &self.features)
            .map(|i| &self.features[i])
            .ok_or_else(|| Error::UnknownFeature(crate::error::shorten(&id.escape_debug().to_string())))
    }
}

fn check_id(path: &str, id: &str) -> Result<()> {
    let why = if id.is_empty() {
        Some("an id may not be empty".to_string())
    } else if id.len() > MAX_ID_BYTES {
        Some(format!("'{}' is longer than {MAX_ID_BYTES} bytes", crate::error::shorten(id)))
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some(format!("'{}' contains white space or control characters", id.escape_debug()))
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::Policy { path: path.into(), why }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> String {
        Policy::from_json(json).unwrap_err().to_string()
    }

    const MINIMAL: &str = r#"{"id":"p","version":"1","categories":[{"id":"a","title":"A","legal_basis":"consent","retention":"P1Y"}],
        "features":[{"id":"f","categories":["a"]}]}"#;

    #[test]
    fn builtin_catalog_matches_the_statement() {
        let p = Policy::from_json(UCANYWHERE_JSON).expect("built-in catalog validates");
        let ids: Vec<&str> = p.categories.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "user_information",
                "contact_information",
                "traffic_data",
                "business_contacts",
                "device_contacts",
                "photos_media",
                "usage_statistics",
                "chat_information"
            ]
        );
        let consent: Vec<&str> = p.categories.iter().filter(|c| c.legal_basis == LegalBasis::Consent).map(|c| c.id.as_str()).collect();
        assert_eq!(consent, ["device_contacts", "photos_media", "usage_statistics"]);
        assert_eq!(p.category("contact_information").unwrap().legal_basis, LegalBasis::LegitimateInterest);
        for id in ["user_information", "traffic_data", "business_contacts", "chat_information"] {
            assert_eq!(p.category(id).unwrap().legal_basis, LegalBasis::Contract, "{id}");
        }
        assert!(p.categories.iter().all(|c| c.retention == "P6Y".parse().unwrap()));
        assert_eq!(p.consent_lifetime, Some("P13M".parse().unwrap()));
        assert_eq!(p.reask_after_refusal, Some("P6M".parse().unwrap()));
        assert_eq!(p.age_of_digital_consent, 16);
        assert_eq!(p.category("device_contacts").unwrap().os_permission, Some(OsPermission::CONTACTS));
        assert_eq!(p.category("photos_media").unwrap().os_permission, Some(OsPermission::PHOTOS));
        let feature = |id: &str| p.feature(id).unwrap().categories.clone();
        assert_eq!(feature("contact_lookup"), ["device_contacts"]);
        assert_eq!(feature("contact_sync"), ["device_contacts"]);
        assert!(p.feature("contact_sync").unwrap().per_item);
        assert_eq!(feature("photo_sharing"), ["photos_media"]);
        assert_eq!(feature("usage_analytics"), ["usage_statistics"]);
        assert_eq!(feature("calling"), ["traffic_data"]);
        assert_eq!(feature("messaging"), ["chat_information"]);
        assert_eq!(feature("business_directory"), ["business_contacts"]);
        assert_eq!(Policy::builtin(), p);
    }

    #[test]
    fn minimal_policy_gets_defaults() {
        let p = Policy::from_json(MINIMAL).unwrap();
        assert_eq!(p.age_of_digital_consent, 16);
        assert_eq!(p.children, ChildrenRule::GuardianConsent);
        assert_eq!(p.categories[0].purpose_version, 1);
        assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn validation_names_path_and_value() {
        let dup = MINIMAL.replace(r#""features""#, r#""x":1,"features""#);
        assert!(msg(&dup).contains("unknown field `x`"), "{}", msg(&dup));
        let cases = [
            (MINIMAL.replace(r#""consent""#, r#""concent""#), "$.categories[0].legal_basis", "concent"),
            (
                MINIMAL.replace(r#""retention":"P1Y""#, r#""retention":"P1Y","os_permission":"Camera-Roll""#),
                "$.categories[0].os_permission",
                "'Camera-Roll' is not snake_case",
            ),
            (MINIMAL.replace(r#"["a"]"#, r#"["b"]"#), "$.features[0].categories[0]", "unknown category 'b'"),
            (MINIMAL.replace(r#"["a"]"#, "[]"), "$.features[0].categories", "at least one category"),
            (MINIMAL.replace(r#"["a"]"#, r#"["a","a"]"#), "$.features[0].categories[1]", "category 'a' listed twice"),
            (MINIMAL.replace(r#"{"id":"f""#, r#"{"id":"""#), "$.features[0].id", "may not be empty"),
            (MINIMAL.replace(r#""id":"p""#, &format!(r#""id":"{}""#, "x".repeat(129))), "$.id", "longer than 128 bytes"),
            (MINIMAL.replace(r#"}]}"#, r#"},{"id":"f","categories":["a"]}]}"#), "$.features[1].id", "duplicate feature id 'f'"),
            (
                MINIMAL.replace(
                    r#""retention":"P1Y"}"#,
                    r#""retention":"P1Y"},{"id":"a","title":"","legal_basis":"contract","retention":"P1Y"}"#,
                ),
                "$.categories[1].id",
                "duplicate category id 'a'",
            ),
            (MINIMAL.replace("P1Y", "1 year"), "$.categories[0].retention", "1 year"),
            (MINIMAL.replace(r#""version":"1","#, r#""version":"1","consent_lifetime":"P0D","#), "$.consent_lifetime", "'P0D'"),
            ("{not json".to_string(), "$", "key must be a string"),
        ];
        for (json, path, value) in cases {
            let m = msg(&json);
            assert!(m.contains(path) && m.contains(value), "expected {path} and {value} in: {m}");
        }
    }

    #[test]
    fn every_feature_is_found_by_its_id_and_no_other_id_is() {
        let features: Vec<String> = (0..300).map(|i| format!("feature_{i}")).collect();
        let json = format!(
            r#"{{"id":"p","version":"1","categories":[{{"id":"a","title":"A","legal_basis":"consent","retention":"P1Y"}}],"features":[{}]}}"#,
            features.iter().map(|f| format!(r#"{{"id":"{f}","categories":["a"]}}"#)).collect::<Vec<_>>().join(",")
        );
        let p = Policy::from_json(&json).unwrap();
        for (i, f) in features.iter().enumerate() {
            assert_eq!(p.feature(f).unwrap().id, *f);
            assert_eq!(p.feature_plan(f).unwrap().1.id, f.as_str(), "{i}");
        }
        for other in ["feature_300", "feature_", "", "feature_1 ", "Feature_1"] {
            assert!(matches!(p.feature(other), Err(Error::UnknownFeature(_))), "{other}");
            assert!(p.feature_plan(other).is_err(), "{other}");
        }
        assert_eq!(Policy::from_json(&json).unwrap(), p, "equal catalogs compare equal whatever their tables' seeds");
    }

    #[test]
    fn lookups_fail_with_typed_errors() {
        let p = Policy::builtin();
        assert!(matches!(p.feature("nope"), Err(Error::UnknownFeature(f)) if f == "nope"));
        assert!(matches!(p.category("nope"), Err(Error::UnknownCategory(c)) if c == "nope"));
    }
}
