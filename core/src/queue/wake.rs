//! Wake-on-push: a worker waiting on an empty queue is woken the moment a job is pushed,
//! instead of at its next poll.
//!
//! [`WakeHub`] keeps one [`WakeSignal`] per listening queue worker of this process; pushing a
//! job notifies the signals of its queue. Across processes the Redis queue relays the same
//! notification over pub/sub (see [`super::relay`]). Interval polling stays as the fallback,
//! so a lost notification costs latency, never a job.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use futures::task::AtomicWaker;

/// A second wake this long after a notification. A fetch already running when the job was
/// pushed may have missed it, and the first wake was spent while that fetch was in flight.
const RECHECK_AFTER: Duration = Duration::from_millis(3);

#[derive(Debug, Default)]
struct Slot {
    generation: AtomicU64,
    waker: AtomicWaker,
}

impl Slot {
    fn notify(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.waker.wake();
    }
}

/// The wake signals of this process, by queue name. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct WakeHub {
    slots: Mutex<HashMap<String, Vec<Weak<Slot>>>>,
}

impl WakeHub {
    /// A signal that fires whenever a job is pushed to `queue`.
    pub fn subscribe(&self, queue: &str) -> WakeSignal {
        let slot = Arc::new(Slot::default());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(queue.to_string())
            .or_default()
            .push(Arc::downgrade(&slot));
        WakeSignal {
            slot,
            seen: 0,
            recheck: None,
        }
    }

    /// Wakes every live signal of `queue` (dropped signals are forgotten).
    pub fn notify(&self, queue: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = slots.get_mut(queue) {
            list.retain(|weak| match weak.upgrade() {
                Some(slot) => {
                    slot.notify();
                    true
                }
                None => false,
            });
        }
    }
}

/// A poll strategy for apalis backends that wakes the worker on push notifications.
pub struct WakeSignal {
    slot: Arc<Slot>,
    seen: u64,
    recheck: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for WakeSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeSignal")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl PollStrategy for WakeSignal {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        // Register before reading the generation, so a notification in between still wakes.
        self.slot.waker.register(cx.waker());
        let generation = self.slot.generation.load(Ordering::Acquire);
        if generation != self.seen {
            self.seen = generation;
            self.recheck = Some(Box::pin(tokio::time::sleep(RECHECK_AFTER)));
            cx.waker().wake_by_ref();
            return Poll::Ready(Some(()));
        }
        if let Some(recheck) = self.recheck.as_mut()
            && recheck.as_mut().poll(cx).is_ready()
        {
            self.recheck = None;
            cx.waker().wake_by_ref();
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker;

    #[tokio::test]
    async fn a_push_fires_the_signals_of_its_queue_only() {
        let hub = WakeHub::default();
        let mut a = hub.subscribe("q:a");
        let mut b = hub.subscribe("q:b");
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let snapshot = PollSnapshot::default();
        assert!(a.poll_drive(&mut cx, &snapshot).is_pending());
        hub.notify("q:a");
        assert!(a.poll_drive(&mut cx, &snapshot).is_ready());
        assert!(b.poll_drive(&mut cx, &snapshot).is_pending());
        drop(b);
        hub.notify("q:b");
        assert!(hub.slots.lock().unwrap()["q:b"].is_empty());
    }
}
