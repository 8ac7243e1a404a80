//! `CatalogId`: an immutable catalog id string (a feature or category id) that the gate hands out in every
//! answer. Cloning one never allocates and never touches a shared counter for ids of up to
//! [`INLINE_BYTES`] bytes (every id of the shipped catalogs), so a check allocates nothing and two
//! threads checking the same feature do not contend on a reference count. Longer ids are shared.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ids up to this many bytes are stored inline.
pub const INLINE_BYTES: usize = 30;

/// True if the two ids are the same bytes: the gate's id comparison, inline (no `memcmp` call)
/// for ids up to 32 bytes, the length compared first.
#[inline(always)]
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    #[inline(always)]
    fn word(s: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    }
    #[inline(always)]
    fn half(s: &[u8], at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_ne_bytes(w)
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0) && word(a, 8) == word(b, 8) && word(a, n - 16) == word(b, n - 16) && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

/// An immutable string, cheap to clone; compares, hashes, prints and serialises as its text.
#[derive(Clone)]
pub struct CatalogId(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
    Shared(Arc<str>),
}

impl CatalogId {
    /// A name holding `text`.
    pub fn new(text: &str) -> CatalogId {
        if text.len() <= INLINE_BYTES {
            let mut bytes = [0u8; INLINE_BYTES];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            CatalogId(Repr::Inline { len: text.len() as u8, bytes })
        } else {
            CatalogId(Repr::Shared(Arc::from(text)))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes are a whole `&str` copied in `new`, so they are valid UTF-8.
            Repr::Inline { len, bytes } => std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default(),
            Repr::Shared(text) => text,
        }
    }
}

impl Deref for CatalogId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for CatalogId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for CatalogId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for CatalogId {
    fn from(text: &str) -> CatalogId {
        CatalogId::new(text)
    }
}

impl From<String> for CatalogId {
    fn from(text: String) -> CatalogId {
        CatalogId::new(&text)
    }
}

impl From<&String> for CatalogId {
    fn from(text: &String) -> CatalogId {
        CatalogId::new(text)
    }
}

impl From<CatalogId> for String {
    fn from(name: CatalogId) -> String {
        name.as_str().to_owned()
    }
}

impl PartialEq for CatalogId {
    fn eq(&self, other: &CatalogId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CatalogId {}

impl PartialEq<str> for CatalogId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for CatalogId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for CatalogId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<CatalogId> for &str {
    fn eq(&self, other: &CatalogId) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<CatalogId> for String {
    fn eq(&self, other: &CatalogId) -> bool {
        self == other.as_str()
    }
}

impl PartialOrd for CatalogId {
    fn partial_cmp(&self, other: &CatalogId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CatalogId {
    fn cmp(&self, other: &CatalogId) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for CatalogId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for CatalogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for CatalogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CatalogId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CatalogId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(CatalogId::from(String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_id_is_byte_equality_at_every_length() {
        let text: String = (0..80u8).map(|i| (b'a' + i % 26) as char).collect();
        for n in 0..=70 {
            let a = &text[..n];
            let copy: String = a.chars().collect();
            assert!(same_id(a, &copy), "{n}");
            for i in 0..n {
                let mut other = a.as_bytes().to_vec();
                other[i] = b'#';
                assert!(!same_id(a, std::str::from_utf8(&other).unwrap()), "{n} differing at {i}");
            }
            assert!(!same_id(a, &text[..n + 1]) && !same_id(&text[..n + 1], a), "{n}: a longer id differs");
        }
    }

    #[test]
    fn short_and_long_names_keep_their_text() {
        for text in ["", "usage_statistics", &"x".repeat(INLINE_BYTES), &"y".repeat(INLINE_BYTES + 1), "grüße_ü", &"ü".repeat(40)] {
            let name = CatalogId::new(text);
            assert_eq!(name.as_str(), text);
            assert_eq!(name.clone(), name);
            assert_eq!(name, text);
            assert_eq!(name.to_string(), text);
            assert_eq!(serde_json::to_string(&name).unwrap(), serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<CatalogId>(&serde_json::to_string(text).unwrap()).unwrap(), name);
        }
        assert_ne!(CatalogId::new("a"), CatalogId::new("b"));
        assert!(matches!(CatalogId::new(&"z".repeat(INLINE_BYTES)).0, Repr::Inline { .. }));
        assert!(matches!(CatalogId::new(&"z".repeat(INLINE_BYTES + 1)).0, Repr::Shared(_)));
    }
}
