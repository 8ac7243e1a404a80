//! One stable sort for the cold paths (expiry order, an observer's initial subjects, the state
//! check's subject order, the open's chunks, an erasure record's removed seqs): [`sort_by_less`]. std's `sort` is compiled once per
//! element type and comparison (about 4-5 KB each); this sorts indices in one non-generic merge
//! sort, [`stable_order`], and only the final move is generic. Not for a hot path: each comparison
//! is an indirect call. A leaf module: it imports nothing of the crate.

/// The indices `0..len` in the stable order `less` defines (`less(a, b)`: item `a` goes before
/// item `b`): a bottom-up merge sort, O(n log n) comparisons, items of equal rank in index order.
pub(crate) fn stable_order(len: usize, less: &mut dyn FnMut(usize, usize) -> bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = vec![0; len];
    let mut width = 1;
    while width < len {
        let mut start = 0;
        while start < len {
            let mid = (start + width).min(len);
            let end = (start + 2 * width).min(len);
            let (mut left, mut right, mut out) = (start, mid, start);
            while left < mid && right < end {
                // Stable: the right run's item goes first only when strictly less.
                if less(order[right], order[left]) {
                    merged[out] = order[right];
                    right += 1;
                } else {
                    merged[out] = order[left];
                    left += 1;
                }
                out += 1;
            }
            merged[out..out + (mid - left)].copy_from_slice(&order[left..mid]);
            out += mid - left;
            merged[out..end].copy_from_slice(&order[right..end]);
            start = end;
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    order
}

/// Sorts `items` stably by `less` (true: the first goes before the second), like
/// `sort_by(|a, b| ...)`, through [`stable_order`].
pub(crate) fn sort_by_less<T>(items: &mut Vec<T>, less: impl Fn(&T, &T) -> bool) {
    let order = stable_order(items.len(), &mut |a, b| less(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_std_stable_sort() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in [0, 1, 2, 3, 7, 8, 9, 31, 64, 100, 1000, 1025] {
            // Few distinct keys, so stability is tested: the second field is the input position.
            let items: Vec<(u64, usize)> = (0..len).map(|i| (next() % 10, i)).collect();
            let mut ours = items.clone();
            sort_by_less(&mut ours, |a, b| a.0 < b.0);
            let mut std_sorted = items;
            std_sorted.sort_by_key(|item| item.0);
            assert_eq!(ours, std_sorted, "length {len}");
        }
    }

    #[test]
    fn sorts_owned_and_borrowed_strings() {
        let mut owned: Vec<String> = ["pear", "apple", "fig", "apple"].map(String::from).to_vec();
        sort_by_less(&mut owned, |a, b| a < b);
        assert_eq!(owned, ["apple", "apple", "fig", "pear"]);
        let words = owned.clone();
        let mut borrowed: Vec<&String> = words.iter().rev().collect();
        sort_by_less(&mut borrowed, |a, b| a < b);
        assert_eq!(borrowed, ["apple", "apple", "fig", "pear"].map(|s| s.to_string()).iter().collect::<Vec<_>>());
    }
}
