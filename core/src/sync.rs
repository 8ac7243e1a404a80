//! The sync outbox: every event waits, durably, until the app's backend has acknowledged it.
//! The SDK does no networking; the app sends `pending_sync` and calls `ack_sync` after success.
//! At-least-once: a crash between send and ack resends; the backend dedupes by event id.

use crate::db;
use crate::error::{Error, Result};
use crate::receipt::Receipt;
use crate::store::ConsentStore;

impl ConsentStore {
    /// The oldest events not yet acknowledged, at most `limit`. Erased events are not sent; their
    /// erasure record (with the erased event ids) is.
    pub fn pending_sync(&self, limit: u32) -> Result<Vec<Receipt>> {
        Ok(self.pending_with_cursor(limit)?.1)
    }

    /// The acknowledged cursor and the events after it, read together (a concurrent ack cannot
    /// fall between them).
    pub(crate) fn pending_with_cursor(&self, limit: u32) -> Result<(u64, Vec<Receipt>)> {
        self.with_ledger(|l| {
            let acked = read_acked(&l.conn)?;
            Ok((acked, db::events_after(&l.conn, acked, limit)?))
        })
    }

    /// The highest acknowledged sequence number (0 if none).
    pub fn sync_acked(&self) -> Result<u64> {
        self.with_ledger(|l| read_acked(&l.conn))
    }

    /// Marks every event up to `up_to_seq` as sent. Never moves backwards; durable on return.
    pub fn ack_sync(&self, up_to_seq: u64) -> Result<()> {
        // The cursor only rises, in one statement (`raise_sync_acked`), so acks from this and other
        // processes never move it backwards.
        self.with_ledger(|l| {
            let acked = read_acked(&l.conn)?;
            let head = db::last_event(&l.conn)?.map_or(0, |(s, _)| s);
            if up_to_seq > head {
                return Err(crate::error::invalid("sequence number", &up_to_seq.to_string(), format!("is beyond the last event {head}")));
            }
            if up_to_seq > acked {
                db::raise_sync_acked(&l.conn, up_to_seq)?;
            }
            Ok(())
        })
    }
}

/// The acknowledged cursor as stored.
pub(crate) fn read_acked(conn: &rusqlite::Connection) -> Result<u64> {
    let value = db::meta(conn, "sync_acked_seq")?.unwrap_or_else(|| "0".into());
    value.parse().map_err(|_| Error::Corrupt(format!("sync_acked_seq '{value}'")))
}
