//! [`SubjectMap`]: every subject's state in a snapshot, by subject id, as a persistent map. A
//! commit publishes a new snapshot that differs from the last in the few subjects it wrote;
//! cloning the map and changing one subject copies one path of a two-level tree (two arrays of
//! [`FANOUT`] pointers) and one leaf of about `subjects / 4096` entries, never the whole map, so
//! publishing costs the same at 10 and at 100,000 subjects. Reads are one hash of the subject id
//! to find its leaf and one hash-map lookup in the leaf.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::gate::FastHash;
use crate::state::SubjectState;

/// Pointers per level of the tree (two levels: 4096 leaves).
const FANOUT: usize = 64;
const FANOUT_BITS: u32 = FANOUT.trailing_zeros();

type Leaf = HashMap<String, Arc<SubjectState>, FastHash>;
type Mid = [Option<Arc<Leaf>>; FANOUT];
type Root = [Option<Arc<Mid>>; FANOUT];

/// Every subject's state, by subject id. Cloning it is one reference count; changing a clone
/// copies only the path to the changed subject (copy on write), the other clone is unchanged.
///
/// Hashing: the leaf is chosen by one foldhash of the id and looked up inside with another,
/// both seeded at random per map (see [`FastHash`]), so colliding ids cannot be precomputed.
#[derive(Clone)]
pub struct SubjectMap {
    /// Chooses the leaf of a subject id.
    route: FastHash,
    /// The hasher of every leaf (independent of `route`, so a leaf's keys are spread in it).
    leaf_hasher: FastHash,
    root: Arc<Root>,
    len: usize,
}

impl Default for SubjectMap {
    fn default() -> SubjectMap {
        SubjectMap { route: FastHash::default(), leaf_hasher: FastHash::default(), root: Arc::new(std::array::from_fn(|_| None)), len: 0 }
    }
}

impl SubjectMap {
    /// The (root, mid) slots of a subject id.
    #[inline]
    fn slots(&self, subject: &str) -> (usize, usize) {
        let h = self.route.hash_one(subject);
        ((h >> (64 - FANOUT_BITS)) as usize, ((h >> (64 - 2 * FANOUT_BITS)) as usize) & (FANOUT - 1))
    }

    #[inline]
    fn leaf(&self, subject: &str) -> Option<&Leaf> {
        let (i, j) = self.slots(subject);
        self.root[i].as_ref()?[j].as_deref()
    }

    /// The subject's state, if it has one.
    #[inline]
    pub fn get(&self, subject: &str) -> Option<&Arc<SubjectState>> {
        self.leaf(subject)?.get(subject)
    }

    /// The stored id and state of a subject, if it has one.
    pub fn get_key_value(&self, subject: &str) -> Option<(&String, &Arc<SubjectState>)> {
        self.leaf(subject)?.get_key_value(subject)
    }

    /// True if the subject has a state.
    pub fn contains_key(&self, subject: &str) -> bool {
        self.get(subject).is_some()
    }

    /// The leaf a subject belongs in, made unique to this map (copied if shared), created if absent.
    fn leaf_mut(&mut self, subject: &str) -> &mut Leaf {
        let (i, j) = self.slots(subject);
        let hasher = &self.leaf_hasher;
        let mid = Arc::make_mut(Arc::make_mut(&mut self.root)[i].get_or_insert_with(|| Arc::new(std::array::from_fn(|_| None))));
        Arc::make_mut(mid[j].get_or_insert_with(|| Arc::new(Leaf::with_hasher(hasher.clone()))))
    }

    /// Sets a subject's state; returns the one it replaced.
    pub fn insert(&mut self, subject: String, state: Arc<SubjectState>) -> Option<Arc<SubjectState>> {
        let old = self.leaf_mut(&subject).insert(subject, state);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Drops a subject's state; returns it.
    pub fn remove(&mut self, subject: &str) -> Option<Arc<SubjectState>> {
        self.leaf(subject)?.get(subject)?;
        let old = self.leaf_mut(subject).remove(subject);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The number of subjects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no subject has a state.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every subject and its state, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<SubjectState>)> {
        self.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).flat_map(|leaf| leaf.iter())
    }

    /// Every subject id, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(k, _)| k)
    }

    #[cfg(test)]
    /// True if `other` is a clone of this map with no change since (the very same tree).
    pub(crate) fn shares_all_with(&self, other: &SubjectMap) -> bool {
        Arc::ptr_eq(&self.root, &other.root)
    }

    #[cfg(test)]
    /// How many leaves the two maps hold in common (the same allocation): what publishing
    /// one change did not copy.
    pub(crate) fn shared_leaves_with(&self, other: &SubjectMap) -> usize {
        let leaves = |m: &SubjectMap| -> Vec<*const Leaf> {
            m.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).map(Arc::as_ptr).collect()
        };
        let theirs: std::collections::HashSet<*const Leaf> = leaves(other).into_iter().collect();
        leaves(self).into_iter().filter(|p| theirs.contains(p)).count()
    }

    #[cfg(test)]
    /// The number of leaves holding subjects.
    pub(crate) fn leaf_count(&self) -> usize {
        self.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).count()
    }
}

impl std::ops::Index<&str> for SubjectMap {
    type Output = Arc<SubjectState>;

    /// The subject's state; panics if it has none (like `HashMap`'s index).
    fn index(&self, subject: &str) -> &Arc<SubjectState> {
        self.get(subject).expect("no state for this subject")
    }
}

impl FromIterator<(String, Arc<SubjectState>)> for SubjectMap {
    fn from_iter<I: IntoIterator<Item = (String, Arc<SubjectState>)>>(items: I) -> SubjectMap {
        let mut map = SubjectMap::default();
        for (subject, state) in items {
            map.insert(subject, state);
        }
        map
    }
}

impl Extend<(String, Arc<SubjectState>)> for SubjectMap {
    fn extend<I: IntoIterator<Item = (String, Arc<SubjectState>)>>(&mut self, items: I) {
        for (subject, state) in items {
            self.insert(subject, state);
        }
    }
}

impl<'a> IntoIterator for &'a SubjectMap {
    type Item = (&'a String, &'a Arc<SubjectState>);
    type IntoIter = Box<dyn Iterator<Item = (&'a String, &'a Arc<SubjectState>)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl fmt::Debug for SubjectMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(under_age: bool) -> Arc<SubjectState> {
        Arc::new(SubjectState { under_age, ..Default::default() })
    }

    #[test]
    fn it_behaves_like_a_map() {
        let mut m = SubjectMap::default();
        assert!(m.is_empty() && m.get("a").is_none() && m.remove("a").is_none());
        let mut reference = std::collections::HashMap::new();
        for i in 0..20_000 {
            let key = format!("user-{i}");
            assert!(m.insert(key.clone(), state(i % 3 == 0)).is_none());
            reference.insert(key, i % 3 == 0);
        }
        assert!(m.insert("user-7".into(), state(false)).is_some(), "a replacement returns the old state");
        reference.insert("user-7".into(), false);
        for i in (0..20_000).step_by(7) {
            assert!(m.remove(&format!("user-{i}")).is_some());
            reference.remove(&format!("user-{i}"));
        }
        assert_eq!(m.len(), reference.len());
        assert_eq!(m.iter().count(), reference.len());
        for (k, v) in m.iter() {
            assert_eq!(reference.get(k), Some(&v.under_age));
        }
        for (k, v) in &reference {
            assert_eq!(m.get(k).map(|s| s.under_age), Some(*v));
            assert_eq!(m.get_key_value(k).map(|(key, _)| key.as_str()), Some(k.as_str()));
        }
        assert!(!m.contains_key("user-0") && m.contains_key("user-1"));
    }

    #[test]
    fn a_change_to_a_clone_copies_one_leaf_and_leaves_the_original_unchanged() {
        let base: SubjectMap = (0..10_000).map(|i| (format!("user-{i}"), state(false))).collect();
        let mut next = base.clone();
        assert!(next.shares_all_with(&base));
        next.insert("user-42".into(), state(true));
        assert!(!next.shares_all_with(&base));
        let leaves = base.leaf_count();
        assert!(leaves > 2_000, "10k subjects spread over the leaves ({leaves})");
        assert_eq!(next.shared_leaves_with(&base), leaves - 1, "only the changed subject's leaf was copied");
        assert!(!base["user-42"].under_age && next["user-42"].under_age);
        for i in (0..10_000).filter(|i| *i != 42) {
            let k = format!("user-{i}");
            assert!(Arc::ptr_eq(&base[k.as_str()], &next[k.as_str()]), "{k} is the very same state");
        }
        next.remove("user-43");
        assert!(base.contains_key("user-43") && !next.contains_key("user-43"));
        assert_eq!((base.len(), next.len()), (10_000, 9_999));
    }
}
