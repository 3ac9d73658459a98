//! The priority gate: at most `worker.concurrency` stages run at once in this process, and
//! when a slot frees up it goes to the most urgent waiting stage (then the longest waiting).
//!
//! Each priority level has its own queue and queue worker, so an urgent job is fetched even
//! while every slot is busy with less urgent stages; the gate then lets it start first.
//! A stage that just queued its successor releases its slot with a *hand-off*: for a short
//! window the slot is kept for a stage at least as urgent, so an urgent execution runs its
//! stages back to back instead of letting a less urgent stage in between each of them.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a hand-off keeps a slot for the successor stage.
pub const HANDOFF_WINDOW: Duration = Duration::from_millis(50);

struct Waiter {
    rank: u8,
    seq: u64,
    grant: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank && self.seq == other.seq
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    /// The heap's maximum is the most urgent, then the earliest, waiter.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank
            .cmp(&other.rank)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A free slot kept for a stage of at least `min_rank` until `until`.
#[derive(Clone, Copy)]
struct Hold {
    min_rank: u8,
    until: Instant,
}

struct State {
    free: usize,
    waiters: BinaryHeap<Waiter>,
    next_seq: u64,
    hold: Option<Hold>,
    closed: bool,
}

impl State {
    fn hold_blocks(&mut self, rank: u8) -> bool {
        match self.hold {
            Some(hold) if Instant::now() >= hold.until => {
                self.hold = None;
                false
            }
            Some(hold) => rank < hold.min_rank,
            None => false,
        }
    }

    /// Gives free slots to waiters, most urgent first, as far as the hold allows.
    fn dispatch(&mut self) {
        while self.free > 0 {
            let Some(top) = self.waiters.peek() else {
                return;
            };
            if self.hold_blocks(top.rank) {
                return;
            }
            let waiter = self.waiters.pop().expect("peeked");
            if waiter.grant.send(()).is_ok() {
                self.free -= 1;
                self.hold = None;
            }
        }
    }
}

/// The gate; share it behind an `Arc`.
pub struct PriorityGate {
    state: Mutex<State>,
}

impl std::fmt::Debug for PriorityGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PriorityGate")
    }
}

/// A running-stage slot; dropping it gives the slot back.
pub struct GatePermit {
    gate: Arc<PriorityGate>,
    handoff_rank: Option<u8>,
}

impl GatePermit {
    /// Gives the slot back, keeping it for a stage of at least `rank` for a short window
    /// when only less urgent stages are waiting.
    pub fn hand_off(mut self, rank: u8) {
        self.handoff_rank = Some(rank);
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.gate.release(self.handoff_rank);
    }
}

/// Gives a slot granted to a waiter that stopped waiting back to the gate.
struct PendingGrant {
    gate: Arc<PriorityGate>,
    receiver: Option<oneshot::Receiver<()>>,
}

impl Drop for PendingGrant {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take()
            && receiver.try_recv().is_ok()
        {
            self.gate.release(None);
        }
    }
}

impl PriorityGate {
    /// A gate with `slots` running-stage slots.
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(PriorityGate {
            state: Mutex::new(State {
                free: slots,
                waiters: BinaryHeap::new(),
                next_seq: 0,
                hold: None,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot for a stage of `rank` (higher is more urgent). `None` once the gate
    /// is closed for shutdown.
    pub async fn acquire(self: &Arc<Self>, rank: u8) -> Option<GatePermit> {
        let receiver = {
            let mut state = self.lock();
            if state.closed {
                return None;
            }
            let nobody_ahead = state.waiters.peek().is_none_or(|top| top.rank < rank);
            if state.free > 0 && nobody_ahead && !state.hold_blocks(rank) {
                state.free -= 1;
                state.hold = None;
                return Some(self.permit());
            }
            let (grant, receiver) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.waiters.push(Waiter { rank, seq, grant });
            receiver
        };
        let mut pending = PendingGrant {
            gate: self.clone(),
            receiver: Some(receiver),
        };
        let granted = pending.receiver.as_mut().expect("set above").await.is_ok();
        pending.receiver = None;
        granted.then(|| self.permit())
    }

    fn permit(self: &Arc<Self>) -> GatePermit {
        GatePermit {
            gate: self.clone(),
            handoff_rank: None,
        }
    }

    fn release(self: &Arc<Self>, handoff_rank: Option<u8>) {
        let mut state = self.lock();
        state.free += 1;
        if let Some(rank) = handoff_rank
            && !state.waiters.is_empty()
            && state.waiters.peek().is_some_and(|top| top.rank < rank)
        {
            let until = Instant::now() + HANDOFF_WINDOW;
            state.hold = Some(Hold {
                min_rank: rank,
                until,
            });
            let gate = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(until).await;
                gate.lock().dispatch();
            });
        }
        state.dispatch();
    }

    /// Stops granting slots: every waiter gets `None`; running stages keep theirs.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_most_urgent_then_oldest_waiter() {
        let gate = PriorityGate::new(1);
        let running = gate.acquire(0).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (label, rank) in [("low-1", 0u8), ("low-2", 0), ("high", 2), ("normal", 1)] {
            let gate = gate.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire(rank).await.unwrap();
                order.lock().unwrap().push(label);
                drop(permit);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(running);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["high", "normal", "low-1", "low-2"]);
    }

    #[tokio::test]
    async fn a_hand_off_keeps_the_slot_for_an_urgent_successor() {
        let gate = PriorityGate::new(1);
        let urgent = gate.acquire(2).await.unwrap();
        let low = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(0).await.map(|_| Instant::now()) })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        urgent.hand_off(2);
        // The successor arrives a little later and still goes first.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let successor = gate.acquire(2).await.unwrap();
        let successor_at = Instant::now();
        drop(successor);
        let low_at = low.await.unwrap().unwrap();
        assert!(low_at >= successor_at);
    }

    #[tokio::test]
    async fn an_unclaimed_hand_off_expires() {
        let gate = PriorityGate::new(1);
        let urgent = gate.acquire(2).await.unwrap();
        let low = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(0).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        urgent.hand_off(2);
        let waited = tokio::time::timeout(HANDOFF_WINDOW * 4, low).await;
        assert!(
            waited.unwrap().unwrap(),
            "the low stage got the slot after the window"
        );
    }

    #[tokio::test]
    async fn closing_releases_waiters_empty_handed() {
        let gate = PriorityGate::new(1);
        let _running = gate.acquire(1).await.unwrap();
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(1).await.is_none() })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        gate.close();
        assert!(waiter.await.unwrap());
        assert!(gate.acquire(3).await.is_none());
    }
}
