//! Reads that need SQLite (history, verify; export and the outbox in `rights`/`sync`): run on
//! the ledger connection under the writer lock.

use super::{lock, ConsentStore, Ledger};
use crate::chain::{ChainBreak, Verifier};
use crate::db;
use crate::error::{Error, Result};
use crate::input::check_subject;
use crate::receipt::Receipt;

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

    /// Walks the whole hash chain. `Ok(n)`: n events checked and intact; `Err(Error::Tampered)` names
    /// the first broken sequence number.
    pub fn verify(&self) -> Result<u64> {
        self.verify_with_progress(&mut |_, _| {})
    }

    /// [`ConsentStore::verify`], calling `progress(rows checked, head sequence number)` every
    /// 4096 rows (for a progress bar; the walk streams, so memory does not grow with history).
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
        self.with_ledger(|l| {
            let mut verifier = Verifier::default();
            let mut broken: Option<ChainBreak> = None;
            let mut rows = 0u64;
            db::for_each_chain_row(&l.conn, |row| match verifier.push(row) {
                Ok(()) => {
                    rows += 1;
                    if rows.is_multiple_of(4096) {
                        progress(rows, l.head_seq);
                    }
                    true
                }
                Err(b) => {
                    broken = Some(b);
                    false
                }
            })?;
            if let Some(b) = broken {
                return Err(Error::Tampered(b));
            }
            verifier.finish(db::head(&l.conn)?).map_err(Error::Tampered)
        })
    }
}
