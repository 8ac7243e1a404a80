//! [`SubjectMap`]: every subject's state in a snapshot, by subject id, as a persistent map. A
//! commit publishes a new snapshot that differs from the last in the few subjects it wrote;
//! cloning the map and changing one subject copies one path of a two-level tree (two arrays of
//! `FANOUT` pointers) and one leaf of about `subjects / 4096` entries, never the whole map, so
//! publishing costs the same at 10 and at 100,000 subjects. A read hashes the subject id once:
//! the hash's top bits choose the leaf, a binary search of the leaf (sorted by hash) finds it.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use crate::gate::FastHash;
use crate::id::same_id;
use crate::state::{SubjectState, ValidRow};

/// Pointers per level of the tree (two levels: 4096 leaves).
const FANOUT: usize = 64;
const FANOUT_BITS: u32 = FANOUT.trailing_zeros();

/// A subject's state as loaded from the state table: decoded, or its checked row, decoded on
/// first use ([`ValidRow`]).
pub(crate) enum Loaded {
    /// Decoded.
    State(Arc<SubjectState>),
    /// A binary row that was checked to decode.
    Row(ValidRow),
}

/// One subject's state in the map: decoded, or a checked row that is decoded the first time the
/// subject is read (once; a reader racing the first one waits for that one decoding).
#[derive(Clone)]
struct Slot {
    row: Option<ValidRow>,
    state: OnceLock<Arc<SubjectState>>,
}

impl Slot {
    fn decoded(state: Arc<SubjectState>) -> Slot {
        Slot { row: None, state: OnceLock::from(state) }
    }

    fn loaded(loaded: Loaded) -> Slot {
        match loaded {
            Loaded::State(state) => Slot::decoded(state),
            Loaded::Row(row) => Slot { row: Some(row), state: OnceLock::new() },
        }
    }

    #[inline]
    fn state(&self) -> &Arc<SubjectState> {
        match self.state.get() {
            Some(state) => state,
            None => self.decode(),
        }
    }

    #[cold]
    fn decode(&self) -> &Arc<SubjectState> {
        self.state.get_or_init(|| Arc::new(self.row.as_ref().map(ValidRow::decode).unwrap_or_default()))
    }

    fn into_state(self) -> Arc<SubjectState> {
        self.state().clone()
    }
}

/// One leaf: its subjects' (hash, id, state), sorted by hash.
type Leaf = Vec<(u64, String, Slot)>;
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
    fn entry(&self, subject: &str) -> Option<&(u64, String, Slot)> {
        let h = self.hasher.hash_one(subject);
        let (i, j) = Self::slots(h);
        let leaf = self.root[i].as_ref()?[j].as_deref()?;
        Self::position(leaf, h, subject).ok().map(|k| &leaf[k])
    }

    /// The subject's state, if it has one.
    #[inline]
    pub fn get(&self, subject: &str) -> Option<&Arc<SubjectState>> {
        self.entry(subject).map(|e| e.2.state())
    }

    /// The stored id and state of a subject, if it has one.
    pub fn get_key_value(&self, subject: &str) -> Option<(&String, &Arc<SubjectState>)> {
        self.entry(subject).map(|e| (&e.1, e.2.state()))
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
            Ok(k) => Some(std::mem::replace(&mut leaf[k].2, Slot::decoded(state)).into_state()),
            Err(k) => {
                leaf.insert(k, (h, subject, Slot::decoded(state)));
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
        Some(removed.into_state())
    }

    /// The number of subjects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no subject has a state.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every subject id, in no particular order, decoding no state.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).flat_map(|leaf| leaf.iter()).map(|e| &e.1)
    }

    /// Every subject and its state, in no particular order (decoding each not yet read).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<SubjectState>)> {
        self.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).flat_map(|leaf| leaf.iter()).map(|e| (&e.1, e.2.state()))
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
    /// Builds the whole tree at once: every leaf allocated once at its final size.
    /// A subject given twice keeps its last state.
    fn from_iter<I: IntoIterator<Item = (String, Arc<SubjectState>)>>(items: I) -> SubjectMap {
        items.into_iter().map(|(subject, state)| (subject, Loaded::State(state))).collect()
    }
}

impl FromIterator<(String, Loaded)> for SubjectMap {
    /// Builds the whole tree at once (start-up, from the state table): every leaf allocated once
    /// at its final size, each checked row kept to be decoded on first use. A subject given twice
    /// keeps its last state.
    fn from_iter<I: IntoIterator<Item = (String, Loaded)>>(items: I) -> SubjectMap {
        let mut map = SubjectMap::default();
        let items: Vec<(u64, String, Slot)> =
            items.into_iter().map(|(subject, state)| (map.hasher.hash_one(subject.as_str()), subject, Slot::loaded(state))).collect();
        // Bucketed by leaf (a counting sort: each leaf allocated once at its size), in the order
        // given; then each leaf (a few entries) sorted by hash, stably, so of a subject given
        // twice the last one is found last.
        let mut sizes = vec![0usize; FANOUT * FANOUT];
        for e in &items {
            sizes[Self::leaf_index(e.0)] += 1;
        }
        let mut leaves: Vec<Leaf> = sizes.iter().map(|&n| Leaf::with_capacity(n)).collect();
        for e in items {
            leaves[Self::leaf_index(e.0)].push(e);
        }
        for leaf in &mut leaves {
            leaf.sort_by_key(|e| e.0);
            if leaf.windows(2).any(|w| w[0].0 == w[1].0) {
                *leaf = Self::last_of_each(std::mem::take(leaf));
            }
            map.len += leaf.len();
        }
        let root = Arc::make_mut(&mut map.root);
        let mut leaves = leaves.into_iter();
        for slot in root.iter_mut() {
            let mids: [Option<Arc<Leaf>>; FANOUT] = std::array::from_fn(|_| leaves.next().filter(|leaf| !leaf.is_empty()).map(Arc::new));
            if mids.iter().any(Option::is_some) {
                *slot = Some(Arc::new(mids));
            }
        }
        map
    }
}

impl SubjectMap {
    /// The index of a hash's leaf among all `FANOUT * FANOUT`, in tree order.
    #[inline]
    fn leaf_index(h: u64) -> usize {
        let (i, j) = Self::slots(h);
        i * FANOUT + j
    }

    /// A leaf sorted by hash (stably) with the same subject given more than once: only the last
    /// of each kept, in place of the first.
    fn last_of_each(entries: Leaf) -> Leaf {
        let mut leaf = Leaf::with_capacity(entries.len());
        for (h, subject, state) in entries {
            // Equal hashes are adjacent: replace an earlier entry of the same subject.
            let same = leaf.iter().rev().take_while(|e| e.0 == h).position(|e| e.1 == subject);
            match same {
                Some(back) => {
                    let k = leaf.len() - 1 - back;
                    leaf[k].2 = state;
                }
                None => leaf.push((h, subject, state)),
            }
        }
        leaf
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
    fn a_map_of_checked_rows_reads_like_the_map_of_their_states() {
        let states: Vec<(String, Arc<SubjectState>)> = (0..3000)
            .map(|i| {
                let mut s = SubjectState { under_age: i % 5 == 0, ..Default::default() };
                if i % 2 == 0 {
                    s = SubjectState::from_row(&format!(r#"{{"under_age":{},"categories":{{"c":{{"status":"granted","since":"2026-01-01T00:00:00Z","seq":{i},"purpose_version":1,"valid_until":null,"by_guardian":false,"last_interaction":"2026-01-01T00:00:00Z"}}}}}}"#, i % 5 == 0).into_bytes()).unwrap();
                }
                (format!("user-{i}"), Arc::new(s))
            })
            .collect();
        let eager: SubjectMap = states.iter().cloned().collect();
        let lazy: SubjectMap = states
            .iter()
            .map(|(k, s)| (k.clone(), Loaded::Row(ValidRow::check(&s.to_row()).expect("a row the store writes checks"))))
            .collect();
        let copy = lazy.clone();
        assert_eq!(lazy.len(), eager.len());
        for (k, s) in &states {
            assert_eq!(lazy.get(k), Some(s), "{k}");
            assert!(Arc::ptr_eq(&lazy[k.as_str()], &lazy[k.as_str()]), "{k}: decoded once, then kept");
        }
        assert_eq!(copy.iter().count(), 3000);
        for (k, v) in copy.iter() {
            assert_eq!(eager.get(k), Some(v));
        }
        let mut changed = lazy.clone();
        assert_eq!(changed.insert("user-2".into(), state(true)).as_deref(), Some(&*states[2].1), "the replaced state, decoded");
        assert_eq!(changed.remove("user-4").as_deref(), Some(&*states[4].1));
        assert!(lazy.contains_key("user-4") && !lazy["user-2"].under_age);
        assert!(
            ValidRow::check(b"{}").is_none() && ValidRow::check(&[1, 0, 1]).is_none(),
            "JSON text and damaged rows are not checked rows"
        );
    }

    #[test]
    fn ids_with_the_same_hash_are_told_apart() {
        let leaf: Leaf = [(1, "a", false), (5, "b", false), (5, "c", true), (9, "d", false)]
            .map(|(h, k, u)| (h, k.into(), Slot::decoded(state(u))))
            .into();
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

    /// The bucketed build (start-up) gives the very tree inserting one by one gives: the same
    /// leaves, each sorted by hash, each subject once (its last state), no empty leaf kept.
    #[test]
    fn built_from_rows_at_once_the_tree_is_the_one_built_one_by_one() {
        let rows: Vec<(String, SubjectState)> =
            (0..12_000).map(|i| (format!("user-{}", i % 10_000), SubjectState { under_age: i >= 10_000, ..Default::default() })).collect();
        let at_once: SubjectMap =
            rows.iter().map(|(k, s)| (k.clone(), Loaded::Row(ValidRow::check(&s.to_row()).expect("checks")))).collect();
        let mut one_by_one = SubjectMap { hasher: at_once.hasher, ..SubjectMap::default() };
        for (k, s) in &rows {
            one_by_one.insert(k.clone(), Arc::new(s.clone()));
        }
        assert_eq!((at_once.len(), one_by_one.len()), (10_000, 10_000));
        assert_eq!(at_once.leaf_count(), one_by_one.leaf_count());
        let leaves = |m: &SubjectMap| -> Vec<Vec<(u64, String)>> {
            m.root.iter().flatten().flat_map(|mid| mid.iter().flatten()).map(|l| l.iter().map(|e| (e.0, e.1.clone())).collect()).collect()
        };
        let (a, b) = (leaves(&at_once), leaves(&one_by_one));
        assert!(a.iter().all(|l| !l.is_empty() && l.windows(2).all(|w| w[0].0 <= w[1].0)), "sorted, none empty");
        let set = |v: Vec<Vec<(u64, String)>>| -> std::collections::BTreeSet<(u64, String)> { v.into_iter().flatten().collect() };
        assert_eq!(set(a), set(b));
        for (k, s) in rows.iter().skip(10_000) {
            assert_eq!(at_once.get(k).map(|v| v.under_age), Some(s.under_age), "{k}: the last row given wins");
        }
        assert!(!at_once["user-9999"].under_age);
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
