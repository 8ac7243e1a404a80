//! Reads that need SQLite (history, verify; export and the outbox in `rights`/`sync`): run on
//! the ledger connection under the writer lock.

use std::sync::Arc;

use super::{lock, ConsentStore, Ledger};
use crate::chain::ChainRow;
use crate::db;
use crate::error::{Error, Result};
use crate::gate::Snapshot;
use crate::input::check_subject;
use crate::receipt::Receipt;
use crate::state_proof;

impl ConsentStore {
    /// Runs `f` on the ledger connection (reads that need SQLite: history, export, verify).
    pub(crate) fn with_ledger<T>(&self, f: impl FnOnce(&Ledger) -> Result<T>) -> Result<T> {
        let guard = lock(&self.ledger);
        let ledger = guard.as_ref().ok_or_else(|| Error::Closed(self.unavailable().unwrap_or_default()))?;
        f(ledger)
    }

    /// A subject's history, oldest first, with the device's OS permission changes interleaved.
    pub fn history(&self, subject: &str) -> Result<Vec<Receipt>> {
        check_subject(subject)?;
        self.with_ledger(|l| db::subject_history(&l.conn, subject))
    }

    /// Every chain row (events and tombstones) in sequence order: what an offline proof walks
    /// (e.g. a server's signed head checked against this device's chain).
    pub fn chain_rows(&self) -> Result<Vec<ChainRow>> {
        self.with_ledger(|l| {
            let mut rows = Vec::new();
            db::for_each_chain_row(&l.conn, |row| {
                rows.push(row);
                true
            })?;
            Ok(rows)
        })
    }

    /// Walks the whole hash chain and folds it: the state table, and the state this store serves,
    /// must equal the fold. `Ok(n)`: n events checked and intact; `Err(Error::Tampered)` names the
    /// first broken sequence number. When the state disagrees with an intact history, the stored
    /// digest is invalidated (the next open rebuilds the state from the history) and, if this
    /// store was serving the disagreeing state, it closes: checks fail closed from then on.
    pub fn verify(&self) -> Result<u64> {
        self.verify_with_progress(&mut |_, _| {})
    }

    /// [`ConsentStore::verify`], calling `progress(rows checked, head sequence number)` every
    /// 4096 rows (for a progress bar).
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
        let outcome = self.with_ledger(|l| {
            let (events, fold) = state_proof::walk_with_progress(&l.conn, &mut |rows| progress(rows, l.head_seq))?;
            let head = db::head(&l.conn)?.map_or(0, |(seq, _)| seq);
            let table = fold.check(&db::load_subjects(&l.conn)?, &db::load_os(&l.conn)?, head);
            // Under the ledger lock, so no write is between the walk and the snapshot; a snapshot
            // behind the file's head (another process wrote) is not comparable.
            let snap = self.snapshot.load_full();
            let served = if head == l.head_seq {
                let subjects: std::collections::HashMap<_, _> = snap.subjects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                fold.check(&subjects, &snap.os.iter().map(|(p, r)| (*p, *r)).collect(), head)
            } else {
                Ok(())
            };
            if table.is_err() || served.is_err() {
                if let Err(e) = db::set_meta(&l.conn, state_proof::DIGEST_KEY, "invalidated by verify") {
                    log::warn!("consentkit: could not invalidate the state digest: {e}");
                }
            }
            Ok((events, served.is_err(), served.and(table)))
        })?;
        match outcome {
            (events, _, Ok(())) => Ok(events),
            (_, serving_it, Err(b)) => {
                if serving_it {
                    log::error!("consentkit: {b}; closing the store");
                    let generation = {
                        let mut guard = lock(&self.ledger);
                        *guard = None;
                        let mut closed = Snapshot::empty(self.policy.clone());
                        closed.unavailable = Some(b.to_string());
                        closed.generation = self.snapshot.load().generation + 1;
                        let generation = closed.generation;
                        self.snapshot.store(Arc::new(closed));
                        generation
                    };
                    // The Kotlin and Swift caches drop what they hold.
                    self.registry.committed(generation);
                }
                Err(Error::Tampered(b))
            }
        }
    }
}
