//! Reads that need SQLite (history, verify; export and the outbox in `rights`/`sync`): run on
//! their own connection, never under the writer's locks, so commit hooks and observers can read.

use std::sync::atomic::Ordering;

use super::{lock, ConsentStore, Ledger};
use crate::chain::{ChainBreak, Verifier};
use crate::db;
use crate::error::{Error, Result};
use crate::input::check_subject;
use crate::receipt::Receipt;

impl ConsentStore {
    /// Runs `f` on the read connection (reads that need SQLite: history, export, verify, the
    /// outbox). Catches up with other processes' commits first, so the gate agrees with what the
    /// read returns. Refused while suspended.
    pub(crate) fn with_ledger<T>(&self, f: impl FnOnce(&Ledger) -> Result<T>) -> Result<T> {
        if self.shared.suspended.load(Ordering::Acquire) {
            return Err(Error::Suspended("reading the ledger"));
        }
        if let Err(e) = self.refresh() {
            log::warn!("consentkit: could not catch up before a read: {e}");
        }
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
        self.with_ledger(|l| {
            let mut verifier = Verifier::default();
            let mut broken: Option<ChainBreak> = None;
            db::for_each_chain_row(&l.conn, |row| match verifier.push(row) {
                Ok(()) => true,
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
