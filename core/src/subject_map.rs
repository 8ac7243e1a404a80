//! [`SubjectMap`]: every subject's state in a snapshot, by subject id, as a persistent map. A
//! commit publishes a new snapshot that differs from the last in the few subjects it wrote;
//! cloning the map and changing one subject copies one path of a two-level tree (two arrays of
//! [`FANOUT`] pointers) and one leaf of about `subjects / 4096` entries, never the whole map, so
//! publishing costs the same at 10 and at 100,000 subjects. A read hashes the subject id once:
//! the hash's top bits choose the leaf, a binary search of the leaf (sorted by hash) finds it.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::gate::FastHash;
use crate::id::same_id;
use crate::state::SubjectState;

/// Pointers per level of the tree (two levels: 4096 leaves).
const FANOUT: usize = 64;
const FANOUT_BITS: u32 = FANOUT.trailing_zeros();

/// One leaf: its subjects' (hash, id, state), sorted by hash.
type Leaf = Vec<(u64, String, Arc<SubjectState>)>;
type Mid = [Option<Arc<Leaf>>; FANOUT];
type Root = [Option<Arc<Mid>>; FANOUT];

/// Every subject's state, by subject id. Cloning it is one reference count; changing a clone
/// copies only the path to the changed subject (copy on write), the other clone is unchanged.
///
/// Hashing: one foldhash of the id, seeded at random per map (see [`FastHash`]), so colliding ids
/// cannot be precomputed; ids whose hashes collide anyway are told apart by comparing them.
#[derive(Clone)]
pub struct SubjectMap {
    /// Hashes subject ids.
    hasher: FastHash,
    root: Arc<Root>,
    len: usize,
}

impl Default for SubjectMap {
    fn default() -> SubjectMap {
        SubjectMap { hasher: FastHash::default(), root: Arc::new(std::array::from_fn(|_| None)), len: 0 }
    }
}

impl SubjectMap {
    /// The (root, mid) slots of a hash.
    #[inline]
    fn slots(h: u64) -> (usize, usize) {
        ((h >> (64 - FANOUT_BITS)) as usize, ((h >> (64 - 2 * FANOUT_BITS)) as usize) & (FANOUT - 1))
    }

    /// The position of `subject` (hash `h`) in `leaf`: `Ok` where it is, `Err` where it would go.
    #[inline]
    fn position(leaf: &Leaf, h: u64, subject: &str) -> Result<usize, usize> {
        let mut k = leaf.partition_point(|e| e.0 < h);
        while let Some(e) = leaf.get(k) {
            if e.0 != h {
                break;
            }
            if same_id(&e.1, subject) {
                return Ok(k);
            }
            k += 1;
        }
        Err(k)
    }

    #[inline]
    fn entry(&self, subject: &str) -> Option<&(u64, String, Arc<SubjectState>)> {
        let h = self.hasher.hash_one(subject);
        let (i, j) = Self::slots(h);
        let leaf = self.root[i].as_ref()?[j].as_deref()?;
        Self::position(leaf, h, subject).ok().map(|k| &leaf[k])
    }

    /// The subject's state, if it has one.
    #[inline]
    pub fn get(&self, subject: &str) -> Option<&Arc<SubjectState>> {
        self.entry(subject).map(|e| &e.2)
    }

    /// The stored id and state of a subject, if it has one.
    pub fn get_key_value(&self, subject: &str) -> Option<(&String, &Arc<SubjectState>)> {
        self.entry(subject).map(|e| (&e.1, &e.2))
    }

    /// True if the subject has a state.
    pub fn contains_key(&self, subject: &str) -> bool {
        self.get(subject).is_some()
    }

    /// The leaf of hash `h`, made unique to this map (copied if shared), created if absent.
    fn leaf_mut(&mut self, h: u64) -> &mut Leaf {
        let (i, j) = Self::slots(h);
        let mid = Arc::make_mut(Arc::make_mut(&mut self.root)[i].get_or_insert_with(|| Arc::new(std::array::from_fn(|_| None))));
        Arc::make_mut(mid[j].get_or_insert_with(|| Arc::new(Leaf::new())))
    }

    /// Sets a subject's state; returns the one it replaced.
    pub fn insert(&mut self, subject: String, state: Arc<SubjectState>) -> Option<Arc<SubjectState>> {
        let h = self.hasher.hash_one(subject.as_str());
        let leaf = self.leaf_mut(h);
        match Self::position(leaf, h, &subject) {
            Ok(k) => Some(std::mem::replace(&mut leaf[k].2, state)),
            Err(k) => {
                leaf.insert(k, (h, subject, state));
                self.len += 1;
                None
            }
        }
    }

    /// Drops a subject's state; returns it.
    pub fn remove(&mut self, subject: &str) -> Option<Arc<SubjectState>> {
        self.entry(subject)?;
        let h = self.hasher.hash_one(subject);
        let leaf = self.leaf_mut(h);
        let k = Self::position(leaf, h, subject).ok()?;
        let removed = leaf.remove(k).2;
        self.len -= 1;
        Some(removed)
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
        self.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).flat_map(|leaf| leaf.iter()).map(|e| (&e.1, &e.2))
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
    /// Builds the whole tree at once (start-up): every leaf allocated once at its final size.
    /// A subject given twice keeps its last state.
    fn from_iter<I: IntoIterator<Item = (String, Arc<SubjectState>)>>(items: I) -> SubjectMap {
        let mut map = SubjectMap::default();
        let mut items: Vec<(u64, String, Arc<SubjectState>)> =
            items.into_iter().map(|(subject, state)| (map.hasher.hash_one(subject.as_str()), subject, state)).collect();
        // Sorted by hash, and stably, so of a subject given twice the last one is found last.
        items.sort_by_key(|e| e.0);
        let mut leaves: Vec<Option<Leaf>> = (0..FANOUT * FANOUT).map(|_| None).collect();
        for (h, subject, state) in items {
            let (i, j) = Self::slots(h);
            let leaf = leaves[i * FANOUT + j].get_or_insert_with(Leaf::new);
            // Equal hashes are adjacent: replace an earlier entry of the same subject.
            let same = leaf.iter().rev().take_while(|e| e.0 == h).position(|e| e.1 == subject);
            match same {
                Some(back) => {
                    let k = leaf.len() - 1 - back;
                    leaf[k].2 = state;
                }
                None => {
                    leaf.push((h, subject, state));
                    map.len += 1;
                }
            }
        }
        let root = Arc::make_mut(&mut map.root);
        for (i, mids) in leaves.chunks_mut(FANOUT).enumerate() {
            if mids.iter().any(Option::is_some) {
                root[i] = Some(Arc::new(std::array::from_fn(|j| mids[j].take().map(Arc::new))));
            }
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
    fn ids_with_the_same_hash_are_told_apart() {
        let leaf: Leaf =
            vec![(1, "a".into(), state(false)), (5, "b".into(), state(false)), (5, "c".into(), state(true)), (9, "d".into(), state(false))];
        assert_eq!(SubjectMap::position(&leaf, 5, "b"), Ok(1));
        assert_eq!(SubjectMap::position(&leaf, 5, "c"), Ok(2));
        assert_eq!(SubjectMap::position(&leaf, 5, "x"), Err(3), "not there: it would go after its equals");
        assert_eq!(SubjectMap::position(&leaf, 0, "a"), Err(0));
        assert_eq!(SubjectMap::position(&leaf, 10, "d"), Err(4));
    }

    #[test]
    fn built_at_once_it_equals_built_one_by_one() {
        let items: Vec<(String, Arc<SubjectState>)> = (0..5000).map(|i| (format!("user-{}", i % 4000), state(i >= 4000))).collect();
        let at_once: SubjectMap = items.iter().cloned().collect();
        let mut one_by_one = SubjectMap::default();
        one_by_one.extend(items);
        assert_eq!((at_once.len(), one_by_one.len()), (4000, 4000));
        for (k, v) in one_by_one.iter() {
            assert_eq!(at_once.get(k).map(|s| s.under_age), Some(v.under_age), "{k}: the last state given wins");
        }
        assert!(at_once["user-10"].under_age && !at_once["user-3999"].under_age);
        let mut changed = at_once.clone();
        changed.insert("new".into(), state(true));
        assert!(!at_once.contains_key("new") && changed.contains_key("new"));
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
