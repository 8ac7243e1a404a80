//! Reads that need SQLite (history, verify; export and the outbox in `rights`/`sync`): run on
//! their own connection, never under the writer's locks, so commit hooks and observers can read.

use std::sync::atomic::Ordering;

use super::{lock, ConsentStore, Ledger};
use crate::chain::ChainRow;
use crate::db;
use crate::error::{Error, Result};
use crate::gate::Snapshot;
use crate::input::check_stored_subject;
use crate::receipt::Receipt;
use crate::state_proof;

impl ConsentStore {
    /// Runs `f` on the read connection (reads that need SQLite: history, export, verify, the
    /// outbox). Catches up with other processes' commits first, so the gate agrees with what the
    /// read returns, unless a write of this process holds the publish lock: then the read does
    /// not wait for it (a commit hook may hand a read to another thread and wait for it) and
    /// reads what is committed. Refused while suspended.
    pub(crate) fn with_ledger<T>(&self, f: impl FnOnce(&Ledger) -> Result<T>) -> Result<T> {
        if self.shared.suspended.load(Ordering::Acquire) {
            return Err(Error::Suspended("reading the ledger"));
        }
        match self.refresh_without_waiting() {
            Ok(()) | Err(Error::Busy(_)) => {}
            Err(e) => log::warn!("consentkit: could not catch up before a read: {}", e.log_summary()),
        }
        let mut guard = lock(&self.ledger);
        // Checked again under the ledger's lock: `suspend` takes it too, so no read transaction
        // starts after `suspend` returned.
        if self.shared.suspended.load(Ordering::Acquire) {
            return Err(Error::Suspended("reading the ledger"));
        }
        let slot = guard.as_mut().ok_or_else(|| Error::Closed(self.unavailable().unwrap_or_default()))?;
        f(slot.get()?)
    }

    /// A subject's history, oldest first, with the device's OS permission changes interleaved.
    /// A subject id an older version stored and new input refuses (`" alice"`) stays readable
    /// ([`check_stored_subject`]).
    pub fn history(&self, subject: &str) -> Result<Vec<Receipt>> {
        check_stored_subject(subject)?;
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
    /// must equal the fold. SQLite's `PRAGMA quick_check` runs first: a damaged file is
    /// `Err(Error::Tampered(ChainBreak::FileDamaged))` naming SQLite's message. `Ok(n)`: n events
    /// checked and intact; `Err(Error::Tampered)` names the first broken sequence number. When the
    /// state disagrees with an intact history, the stored digest is invalidated (the next open
    /// fails closed) and, if this store was serving the disagreeing state, it closes: checks fail
    /// closed from then on.
    pub fn verify(&self) -> Result<u64> {
        self.verify_with_progress(&mut |_, _| {})
    }

    /// [`ConsentStore::verify`], calling `progress(rows checked, head sequence number)` every
    /// 4096 rows (for a progress bar).
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
        let outcome = self.with_ledger(|l| {
            // One read transaction: the walk, the head and the table are of one moment.
            l.conn.execute_batch("BEGIN DEFERRED")?;
            let read = (|| -> Result<_> {
                // SQLite's own check first: a damaged page or index is a broken store even where
                // the rows the chain walk reads still hash right.
                db::quick_check(&l.conn)?;
                db::time_mark(&l.conn)?;
                let head = db::head(&l.conn)?.map_or(0, |(seq, _)| seq);
                let (events, fold) = state_proof::walk_with_progress(&l.conn, &mut |rows| progress(rows, head))?;
                let table = fold.check(&db::load_subjects(&l.conn)?, &db::load_os(&l.conn)?, head);
                Ok((events, fold, head, table))
            })();
            let _ = l.conn.execute_batch("COMMIT");
            let (events, fold, head, table) = read?;
            // The served snapshot is comparable only if it reflects exactly this head (not while
            // a write publishes, nor when this process is behind another one's commits).
            let served = match self.shared.snapshot_with_seq() {
                Some((snap, seq)) if seq == head => {
                    // The gate's maps, in the fold's map types (verify is rare; the copy is cheap).
                    let subjects: std::collections::HashMap<_, _> = snap.subjects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    fold.check(&subjects, &snap.os.iter().map(|(p, r)| (*p, *r)).collect(), head)
                }
                _ => Ok(()),
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
                    self.close(b.to_string());
                }
                Err(Error::Tampered(b))
            }
        }
    }

    /// Closes the store after it found itself serving a state its history does not give: writes
    /// and ledger reads fail from now on, checks deny consent-gated features, caches are told.
    pub(super) fn close(&self, why: String) {
        let _published = if self.shared.held_by_this_thread() { None } else { Some(self.shared.lock()) };
        *lock(&self.writer) = None;
        *lock(&self.ledger) = None;
        let mut closed = Snapshot::empty(self.policy.clone());
        closed.unavailable = Some(why);
        closed.generation = self.shared.snapshot.load().generation + 1;
        let generation = closed.generation;
        let seq = self.shared.snapshot_with_seq().map_or(0, |(_, seq)| seq);
        self.shared.publish(closed, seq);
        // The Kotlin and Swift caches drop what they hold.
        self.shared.registry.committed(generation);
    }
}
