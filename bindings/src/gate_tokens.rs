//! Tokens for the hand-written gate entries (the JNI gate for Kotlin, the C gate for Swift): a
//! kit registers once and the entry finds it by its token on every check, lock-free.

use std::sync::{Arc, LazyLock, Mutex, Weak};

use arc_swap::ArcSwap;

use crate::consent_kit::ConsentKit;

/// The registered kits, indexed by token. Read lock-free on every check; written once per
/// registration. Weak: a token never keeps a store alive.
static GATES: LazyLock<ArcSwap<Vec<Weak<ConsentKit>>>> = LazyLock::new(|| ArcSwap::from_pointee(Vec::new()));
static REGISTER: Mutex<()> = Mutex::new(());

/// Registers `kit` and returns its token. Slots are never reused (a stale token must not find a
/// newer kit): a few bytes per kit ever registered in this process.
pub(crate) fn register(kit: &Arc<ConsentKit>) -> u64 {
    let _one_at_a_time = REGISTER.lock().unwrap_or_else(|p| p.into_inner());
    let mut gates: Vec<Weak<ConsentKit>> = GATES.load().as_ref().clone();
    gates.push(Arc::downgrade(kit));
    let token = gates.len() as u64 - 1;
    GATES.store(Arc::new(gates));
    token
}

/// The kit of `token` while it is alive; `None` for a dropped kit or a token never handed out
/// (negative or out of range included).
pub(crate) fn lookup(token: impl TryInto<usize>) -> Option<Arc<ConsentKit>> {
    let index = token.try_into().ok()?;
    GATES.load().get(index)?.upgrade()
}
