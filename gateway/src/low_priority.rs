//! A small pool of threads at the lowest CPU scheduling priority, with a short bounded queue,
//! for work that must never take CPU from the proxy: password hashing.
//!
//! Why not tokio's blocking pool: its threads run at the same priority as the proxy's workers,
//! so a login flood (argon2 costs ~20 ms of a core per attempt) took a pinned gateway from 23k
//! to 4k proxied requests per second. These threads run under `SCHED_IDLE`: the kernel gives
//! them a core only when nothing else wants it, so proxied traffic always goes first.
//!
//! Why shed instead of queueing without bound: when the proxy is busy, idle-priority threads
//! make slow progress, and a queue would only turn a flood into minutes of waiting for every
//! honest user. At most `threads + queue` jobs are admitted; past that, [`LowPriorityPool::admit`]
//! says no at once and the caller answers "busy, try again in a moment".

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why admitted work produced no result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// The worker threads are gone (they never exit while the pool lives; this is a bug).
    #[error("the low-priority pool has no running threads")]
    Stopped,
    /// The job panicked; its thread survived and keeps serving.
    #[error("a low-priority job panicked")]
    Panicked,
}

/// How the pool's threads are scheduled, as it turned out on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `SCHED_IDLE`: runs only on a core nothing else wants.
    Idle,
    /// `SCHED_IDLE` was refused; the thread runs at nice 19 instead.
    Nice19,
    /// Neither could be set (not Linux, or forbidden): normal priority.
    Normal,
}

struct Shared {
    /// Jobs admitted and not finished (running or queued).
    admitted: AtomicUsize,
    capacity: usize,
}

/// A bounded pool of lowest-priority threads. Cloning shares the pool.
#[derive(Clone)]
pub struct LowPriorityPool {
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    threads: usize,
}

/// One admitted job's place in the pool, held until the job has run (or been skipped).
/// Dropping it without running frees the place.
pub struct Slot {
    shared: Arc<Shared>,
    jobs: Sender<Job>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LowPriorityPool {
    /// Starts `threads` threads named `{name}-{i}`; `queue` more jobs may wait for them.
    pub fn new(name: &str, threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker(&receiver))?;
        }
        Ok(LowPriorityPool {
            shared: Arc::new(Shared {
                admitted: AtomicUsize::new(0),
                capacity: threads.saturating_add(queue),
            }),
            jobs,
            threads,
        })
    }

    /// A place for one job, or `None` when every thread is busy and the queue is full.
    /// Cheap and never waits: this is what lets a flood be answered at once.
    pub fn admit(&self) -> Option<Slot> {
        let capacity = self.shared.capacity;
        self.shared
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot {
                shared: self.shared.clone(),
                jobs: self.jobs.clone(),
            })
    }

    /// Jobs admitted and not finished.
    pub fn admitted(&self) -> usize {
        self.shared.admitted.load(Ordering::Acquire)
    }

    /// Running plus queued jobs the pool accepts.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Slot {
    /// Runs `work` on the pool and waits for its result. If the caller stops waiting (the
    /// client went away) before a thread picks the job up, the job is skipped: no CPU is spent
    /// on an answer nobody will read.
    pub async fn run<T, F>(self, work: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let jobs = self.jobs.clone();
        let slot = self;
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(work)).map_err(|_| PoolError::Panicked);
            // The place is free before the caller hears back, so it can be admitted again.
            drop(slot);
            let _ = tx.send(outcome);
        });
        jobs.send(job).map_err(|_| PoolError::Stopped)?;
        rx.await.map_err(|_| PoolError::Stopped)?
    }
}

fn worker(receiver: &Mutex<Receiver<Job>>) {
    let priority = lower_own_priority();
    if priority != Priority::Idle {
        tracing::warn!(
            ?priority,
            "could not move a password-hashing thread to SCHED_IDLE; logins may slow proxying"
        );
    }
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = match receiver.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match job {
            // `run` already catches a panicking job; this keeps the thread alive regardless.
            Ok(job) => {
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

/// Moves the calling thread to the lowest scheduling priority the system allows it.
#[cfg(target_os = "linux")]
fn lower_own_priority() -> Priority {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread (a Linux thread is its own task); `param` is a
    // valid sched_param that outlives the call. Moving to SCHED_IDLE needs no privilege.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return Priority::Idle;
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority on our own thread id; raising niceness needs no privilege.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) } == 0 {
        return Priority::Nice19;
    }
    Priority::Normal
}

#[cfg(not(target_os = "linux"))]
fn lower_own_priority() -> Priority {
    Priority::Normal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    /// A job that blocks its thread until told to finish, so tests hold slots deterministically.
    fn blocker() -> (
        impl FnOnce() -> u32 + Send + 'static,
        std::sync::mpsc::SyncSender<()>,
    ) {
        let (release, wait) = sync_channel::<()>(1);
        (
            move || {
                let _ = wait.recv();
                7
            },
            release,
        )
    }

    #[tokio::test]
    async fn admits_threads_plus_queue_then_sheds_until_a_place_frees() {
        let pool = LowPriorityPool::new("test-shed", 1, 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pool.capacity(), 3);
        let mut releases = Vec::new();
        let mut running = Vec::new();
        for _ in 0..3 {
            let Some(slot) = pool.admit() else {
                panic!("within capacity");
            };
            let (job, release) = blocker();
            releases.push(release);
            running.push(tokio::spawn(slot.run(job)));
        }
        assert_eq!(pool.admitted(), 3);
        assert!(pool.admit().is_none(), "one running and two queued: full");
        assert!(pool.admit().is_none(), "still full");

        // Finishing one job frees exactly one place.
        let _ = releases[0].send(());
        let first = running.remove(0).await.unwrap_or(Err(PoolError::Stopped));
        assert_eq!(first, Ok(7));
        let again = pool.admit();
        assert!(again.is_some());
        assert!(pool.admit().is_none());
        drop(again);
        for r in &releases[1..] {
            let _ = r.send(());
        }
        for handle in running {
            assert_eq!(handle.await.unwrap_or(Err(PoolError::Stopped)), Ok(7));
        }
        assert_eq!(pool.admitted(), 0);
    }

    #[tokio::test]
    async fn a_slot_dropped_unused_frees_its_place() {
        let pool = LowPriorityPool::new("test-drop", 1, 0).unwrap_or_else(|e| panic!("{e}"));
        let slot = pool.admit();
        assert!(slot.is_some());
        assert!(pool.admit().is_none());
        drop(slot);
        assert!(pool.admit().is_some());
    }

    #[tokio::test]
    async fn threads_run_at_idle_priority() {
        let pool = LowPriorityPool::new("test-prio", 1, 0).unwrap_or_else(|e| panic!("{e}"));
        let Some(slot) = pool.admit() else {
            panic!("an empty pool admits");
        };
        // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
        let policy = slot
            .run(|| unsafe { libc::sched_getscheduler(0) })
            .await
            .unwrap_or(-1);
        assert_eq!(policy, libc::SCHED_IDLE);
        // SAFETY: as above, for the test's own thread: the caller is not lowered.
        assert_ne!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
    }

    #[tokio::test]
    async fn a_panicking_job_reports_and_the_thread_keeps_serving() {
        let pool = LowPriorityPool::new("test-panic", 1, 0).unwrap_or_else(|e| panic!("{e}"));
        let Some(slot) = pool.admit() else {
            panic!("an empty pool admits");
        };
        let result: Result<(), PoolError> = slot.run(|| panic!("job failure")).await;
        assert_eq!(result, Err(PoolError::Panicked));
        let Some(slot) = pool.admit() else {
            panic!("the place was freed");
        };
        assert_eq!(slot.run(|| 5).await, Ok(5));
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_is_skipped() {
        let pool = LowPriorityPool::new("test-skip", 1, 1).unwrap_or_else(|e| panic!("{e}"));
        let (job, release) = blocker();
        let Some(first) = pool.admit() else {
            panic!("an empty pool admits");
        };
        let running = tokio::spawn(first.run(job));
        let ran = Arc::new(AtomicUsize::new(0));
        let Some(second) = pool.admit() else {
            panic!("the queue has a place");
        };
        let counter = ran.clone();
        // The caller gives up while the job is still queued behind the blocker.
        let waiting = tokio::spawn(second.run(move || counter.fetch_add(1, Ordering::SeqCst)));
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        let _ = release.send(());
        assert_eq!(running.await.unwrap_or(Err(PoolError::Stopped)), Ok(7));
        // Wait for the pool to drain: the skipped job must still free its place.
        let Some(probe) = pool.admit() else {
            panic!("a place after the blocker");
        };
        assert_eq!(probe.run(|| ()).await, Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the abandoned job never ran");
        assert_eq!(pool.admitted(), 0);
    }
}
