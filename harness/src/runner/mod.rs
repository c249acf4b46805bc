//! The runner: what executes scenarios against a cluster, above `probe`, `check` and `k8s` and
//! beside `session` (which drives a whole run). `execute` runs one loaded scenario (its
//! namespace, fixtures and steps, and its mutants); [`run_all`] runs a run's scenarios side by
//! side (bounded, exclusive ones alone, results in scenario order); `shard` splits them across
//! CI jobs (disjoint, complete, stable); `bench` simulates a run's wall time under a stated
//! latency model with the same scheduler.

pub mod bench;
pub mod events;
pub mod execute;
pub mod outcome;
pub mod shard;

use std::future::Future;

use futures::StreamExt;
use tokio::sync::RwLock;

/// How many scenarios run at once (`e2e --jobs`): four suits a laptop's kind cluster (each
/// scenario's pods are small; more mostly waits on the same API server).
pub const DEFAULT_JOBS: u16 = 4;

/// Run `count` items with `work(i)`, at most `jobs` at a time; an item for which
/// `exclusive(i)` holds runs alone (it waits for every running item, and none starts beside
/// it). Results come back in item order, whatever order they finish in.
pub async fn run_all<T, Fut>(
    count: usize,
    jobs: usize,
    exclusive: impl Fn(usize) -> bool,
    work: impl Fn(usize) -> Fut,
) -> Vec<T>
where
    Fut: Future<Output = T>,
{
    // Readers share the cluster, a writer has it alone; tokio's lock is fair (first come,
    // first served), so an exclusive item is not starved by the items after it.
    let cluster = RwLock::new(());
    let (cluster, work, exclusive) = (&cluster, &work, &exclusive);
    let mut done: Vec<(usize, T)> = futures::stream::iter(0..count)
        .map(|i| async move {
            let result = if exclusive(i) {
                let _alone = cluster.write().await;
                work(i).await
            } else {
                let _shared = cluster.read().await;
                work(i).await
            };
            (i, result)
        })
        // Unordered: a slow scenario does not hold back the start of the next ones.
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// At most `jobs` at once, exclusive items alone, results in order though they finish out
    /// of order; with virtual time, the wall time shows the overlap.
    #[tokio::test(start_paused = true)]
    async fn bounded_with_exclusive_items_alone_and_results_in_order() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let beside_exclusive = Arc::new(AtomicUsize::new(0));
        let exclusive_running = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let exclusive = |i: usize| i == 3;
        let started = tokio::time::Instant::now();
        let results = run_all(8, 3, exclusive, |i| {
            let (running, peak, beside, alone) =
                (running.clone(), peak.clone(), beside_exclusive.clone(), exclusive_running.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Nothing starts beside the exclusive item, and it starts beside nothing.
                if (exclusive(i) && now != 1) || (!exclusive(i) && alone.load(Ordering::SeqCst)) {
                    beside.fetch_add(1, Ordering::SeqCst);
                }
                if exclusive(i) {
                    alone.store(true, Ordering::SeqCst);
                }
                // Later items are shorter: they finish before earlier ones.
                tokio::time::sleep(Duration::from_secs(10 - i as u64)).await;
                if !exclusive(i) && alone.load(Ordering::SeqCst) {
                    beside.fetch_add(1, Ordering::SeqCst);
                }
                if exclusive(i) {
                    alone.store(false, Ordering::SeqCst);
                }
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }
        })
        .await;
        assert_eq!(results, [0, 10, 20, 30, 40, 50, 60, 70]);
        assert_eq!(peak.load(Ordering::SeqCst), 3, "bounded by jobs");
        assert_eq!(beside_exclusive.load(Ordering::SeqCst), 0, "the exclusive item ran alone");
        let elapsed = started.elapsed().as_secs();
        let sequential: u64 = (0..8).map(|i| 10 - i).sum();
        assert!(elapsed < sequential && elapsed >= 7, "overlapped: {elapsed}s of {sequential}s");
    }

    #[tokio::test(start_paused = true)]
    async fn one_job_is_sequential() {
        let started = tokio::time::Instant::now();
        let results = run_all(
            3,
            1,
            |_| false,
            |i| async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                i
            },
        )
        .await;
        assert_eq!(results, [0, 1, 2]);
        assert_eq!(started.elapsed(), Duration::from_secs(15));
    }
}
