//! [`channel`]: a FIFO from one sending thread to the threads that share its receiver (a
//! `Mutex<VecDeque>` and a `Condvar`), for the observer workers, the probe thread's stop signal and the open's
//! check thread. It replaces `std::sync::mpsc`, whose three channel flavours (list, array,
//! rendezvous) are all compiled for every item type (about 25 KB of the library for three types).
//! Same contract as `mpsc` for what the core uses: a send fails once the receiver is gone; a
//! receive waits for an item and returns `None` once the sender is gone and the queue is empty.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Inner<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    sender_alive: bool,
    receiver_alive: bool,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sending half; dropping it ends the receiver's wait (once the queue is drained).
pub(crate) struct Sender<T> {
    inner: Arc<Inner<T>>,
}

/// The receiving half; dropping it makes every later send fail.
pub(crate) struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

/// A new, empty queue.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State { items: VecDeque::new(), sender_alive: true, receiver_alive: true }),
        ready: Condvar::new(),
    });
    (Sender { inner: inner.clone() }, Receiver { inner })
}

impl<T> Sender<T> {
    /// Queues `item`, or gives it back when the receiver is gone. Never blocks on the receiver.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut state = self.inner.lock();
        if !state.receiver_alive {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        self.inner.ready.notify_one();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.inner.lock().sender_alive = false;
        self.inner.ready.notify_all();
    }
}

/// How a [`Receiver::recv_timeout`] ended without an item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecvTimeoutError {
    /// The wait ran out; the sender is still there.
    Timeout,
    /// The sender is gone and the queue is empty.
    Disconnected,
}

impl<T> Receiver<T> {
    /// The next item, waiting for it; `None` once the sender is gone and the queue is empty.
    pub(crate) fn recv(&self) -> Option<T> {
        let mut state = self.inner.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                return Some(item);
            }
            if !state.sender_alive {
                return None;
            }
            state = self.inner.ready.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// The next item, waiting at most `timeout` for it.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                return Ok(item);
            }
            if !state.sender_alive {
                return Err(RecvTimeoutError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
            state = self.inner.ready.wait_timeout(state, left).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.receiver_alive = false;
        // Dropped here, not with the last handle: the sender may hold it a long time.
        let items = std::mem::take(&mut state.items);
        drop(state);
        drop(items);
    }
}

impl<T> Iterator for Receiver<T> {
    type Item = T;
    /// [`Receiver::recv`]: ends once the sender is gone and the queue is drained.
    fn next(&mut self) -> Option<T> {
        self.recv()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_and_the_receiver_ends_after_the_sender() {
        let (tx, rx) = channel();
        let worker = std::thread::spawn(move || rx.collect::<Vec<u32>>());
        for n in 0..1000 {
            tx.send(n).unwrap();
        }
        drop(tx);
        assert_eq!(worker.join().unwrap(), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_send_fails_once_the_receiver_is_gone() {
        let (tx, rx) = channel();
        tx.send(1).unwrap();
        drop(rx);
        assert_eq!(tx.send(2), Err(2));
    }

    #[test]
    fn recv_timeout_tells_a_timeout_from_a_gone_sender() {
        let (tx, rx) = channel::<()>();
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
        tx.send(()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Ok(()));
        let waiter = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(120)));
        drop(tx);
        // The drop wakes the waiter at once (it would otherwise wait two minutes).
        assert_eq!(waiter.join().unwrap(), Err(RecvTimeoutError::Disconnected));
        let (tx, rx) = channel::<u8>();
        tx.send(7).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Some(7), "queued items outlive the sender");
        assert_eq!(rx.recv(), None);
    }
}
