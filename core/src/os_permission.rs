//! OS permissions by id: the common ones predefined, any other a catalog names (e.g. `bluetooth`)
//! accepted the same way. Ids are interned once, at parse time (catalog load, store load, a
//! platform report), so an [`OsPermission`] is `Copy`, compares by index and the gate reads the
//! device's state by index: no hashing, no allocation in a check.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest OS permission id in bytes.
pub const MAX_OS_PERMISSION_BYTES: usize = 64;

/// Most distinct OS permission ids one process accepts (an id is kept for the process's life).
pub const MAX_OS_PERMISSIONS: usize = 1024;

/// An operating-system permission a category may depend on, by its snake_case id
/// (1 to [`MAX_OS_PERMISSION_BYTES`] bytes of `a-z`, `0-9`, `_`, starting with a letter).
#[derive(Clone, Copy)]
pub struct OsPermission {
    index: u32,
    name: &'static str,
}

macro_rules! predefined {
    ($($(#[$meta:meta])* $konst:ident = $index:literal, $text:literal;)+) => {
        impl OsPermission {
            $($(#[$meta])* pub const $konst: OsPermission = OsPermission { index: $index, name: $text };)+
            /// The predefined permissions, in index order.
            pub const PREDEFINED: &'static [OsPermission] = &[$(OsPermission::$konst),+];
        }
    };
}

predefined! {
    /// The address book (Android `READ_CONTACTS`, iOS `CNContactStore`).
    CONTACTS = 0, "contacts";
    /// The photo library and media (Android `READ_MEDIA_IMAGES`/`_VISUAL_USER_SELECTED`, iOS `PHPhotoLibrary`);
    /// Android's partial (user-selected) access and iOS's limited library are reported as `limited`.
    PHOTOS = 1, "photos";
    /// The camera.
    CAMERA = 2, "camera";
    /// The microphone.
    MICROPHONE = 3, "microphone";
    /// The device location; approximate (coarse, reduced-accuracy) access is reported as `limited`.
    LOCATION = 4, "location";
    /// Notifications; iOS's provisional (quiet) authorisation is reported as `provisional`.
    NOTIFICATIONS = 5, "notifications";
    /// The calendar; iOS 17's write-only access is reported as `limited`.
    CALENDAR = 6, "calendar";
    /// iOS App Tracking Transparency (`ATTrackingManager`).
    APP_TRACKING_TRANSPARENCY = 7, "app_tracking_transparency";
}

struct Interner {
    names: Vec<&'static str>,
    index: HashMap<&'static str, u32>,
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(|| {
        let names: Vec<&'static str> = OsPermission::PREDEFINED.iter().map(|p| p.name).collect();
        let index = names.iter().enumerate().map(|(i, n)| (*n, i as u32)).collect();
        Mutex::new(Interner { names, index })
    })
}

/// Why `id` is not a valid OS permission id, if it is not.
fn invalid(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("an OS permission id may not be empty".into())
    } else if id.len() > MAX_OS_PERMISSION_BYTES {
        Some(format!("OS permission '{}' is longer than {MAX_OS_PERMISSION_BYTES} bytes", crate::text::shorten(id)))
    } else if !id.starts_with(|c: char| c.is_ascii_lowercase())
        || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Some(format!("OS permission '{}' is not snake_case (a-z, 0-9, _, starting with a letter)", id.escape_debug()))
    } else {
        None
    }
}

impl OsPermission {
    /// The permission with this id: a predefined one or any valid id. The error names the value.
    pub fn parse(id: &str) -> Result<OsPermission, String> {
        if let Some(why) = invalid(id) {
            return Err(why);
        }
        let mut interner = interner().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&index) = interner.index.get(id) {
            return Ok(OsPermission { index, name: interner.names[index as usize] });
        }
        if interner.names.len() >= MAX_OS_PERMISSIONS {
            return Err(format!("OS permission '{id}' is one more than the {MAX_OS_PERMISSIONS} distinct ids accepted"));
        }
        let name: &'static str = Box::leak(id.to_owned().into_boxed_str());
        let index = interner.names.len() as u32;
        interner.names.push(name);
        interner.index.insert(name, index);
        Ok(OsPermission { index, name })
    }

    /// The id, as catalogs, stores and exports spell it.
    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// A dense index, stable for the process: predefined permissions first, in [`Self::PREDEFINED`] order.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl PartialEq for OsPermission {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}
impl Eq for OsPermission {}

impl std::hash::Hash for OsPermission {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.index.hash(state)
    }
}

/// Ordered by id, so exports and listings read the same in every process.
impl Ord for OsPermission {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(other.name)
    }
}
impl PartialOrd for OsPermission {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for OsPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OsPermission({})", self.name)
    }
}

impl fmt::Display for OsPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl FromStr for OsPermission {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        OsPermission::parse(text)
    }
}

impl Serialize for OsPermission {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

impl<'de> Deserialize<'de> for OsPermission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        OsPermission::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_ids_parse_to_their_constants() {
        for (i, p) in OsPermission::PREDEFINED.iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(OsPermission::parse(p.as_str()).unwrap(), *p);
        }
        assert_eq!("photos".parse::<OsPermission>().unwrap(), OsPermission::PHOTOS);
    }

    #[test]
    fn another_catalogs_id_is_interned_once() {
        let a = OsPermission::parse("bluetooth_scan").unwrap();
        let b = OsPermission::parse("bluetooth_scan").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.index(), b.index());
        assert!(a.index() >= OsPermission::PREDEFINED.len());
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"bluetooth_scan\"");
        assert_eq!(serde_json::from_str::<OsPermission>("\"bluetooth_scan\"").unwrap(), a);
    }

    #[test]
    fn bad_ids_are_errors_naming_the_value() {
        for bad in ["", "Camera", "camera-roll", "9lives", "_x", "has space", "ümlaut"] {
            let err = OsPermission::parse(bad).unwrap_err();
            assert!(bad.is_empty() || err.contains(&bad.escape_debug().to_string()), "{bad}: {err}");
        }
        let long = "a".repeat(MAX_OS_PERMISSION_BYTES + 1);
        assert!(OsPermission::parse(&long).unwrap_err().contains("longer than 64"));
        assert!(OsPermission::parse(&"a".repeat(MAX_OS_PERMISSION_BYTES)).is_ok());
    }
}
