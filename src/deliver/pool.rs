//! The sender pool: several senders hand messages to a transport at once
//! (SMTP is latency-bound) while the calling thread records each outcome
//! as it arrives, a batch at a time.
//!
//! It cannot hang: sending one message never fails (a failure is an
//! outcome to record), and if recording fails the senders are told to stop
//! and the outcome channel is closed, so none stays blocked on it. It
//! returns once every sender has finished the message it holds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

/// Sends every job on `senders` threads with `send`, and records the
/// outcomes on the calling thread with `record`, one batch of whatever has
/// arrived per call. Returns the first recording error, after the senders
/// have stopped; jobs not yet taken are then left unsent.
///
/// An accepted job not yet recorded is in the batch being recorded (at
/// most 1 + the channel), in the channel (`senders` outcomes), or held by
/// a sender blocked on the full channel: a kill repeats at most
/// 3 x `senders` + 1 jobs, each once (over SMTP a job is one message; the
/// file transport records a batch only once its files are flushed, and a
/// repeat rewrites the same file).
pub fn send_all<J, O, E>(
    jobs: Vec<J>,
    senders: usize,
    send: impl Fn(&J) -> O + Sync,
    mut record: impl FnMut(Vec<(J, O)>) -> Result<(), E>,
) -> Result<(), E>
where
    J: Send,
    O: Send,
{
    let queue = Mutex::new(jobs.into_iter());
    let stop = AtomicBool::new(false);
    let (outcomes, results) = sync_channel::<(J, O)>(senders.max(1));
    std::thread::scope(|scope| {
        for _ in 0..senders.max(1) {
            let outcomes = outcomes.clone();
            let (queue, stop, send) = (&queue, &stop, &send);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // A poisoned queue only means another sender panicked;
                    // the iterator itself is still sound.
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(job) = next else { return };
                    let outcome = send(&job);
                    if outcomes.send((job, outcome)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(outcomes);
        let recorded = record_as_they_arrive(&results, &mut record);
        if recorded.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Dropping the receiver wakes any sender blocked on the full channel.
        drop(results);
        recorded
    })
}

/// Records outcomes in batches until every sender has hung up, or the
/// first recording error.
fn record_as_they_arrive<J, O, E>(
    results: &Receiver<(J, O)>,
    record: &mut impl FnMut(Vec<(J, O)>) -> Result<(), E>,
) -> Result<(), E> {
    while let Ok(first) = results.recv() {
        let mut batch = vec![first];
        batch.extend(results.try_iter());
        record(batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// More jobs than the channel holds, every sender busy: runs `f` on
    /// another thread and fails the test if it has not returned in time.
    fn returns_within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(f());
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the sender pool returned (it hung before)")
    }

    #[test]
    fn a_failing_message_is_an_outcome_and_every_other_is_recorded() {
        let recorded = returns_within(|| {
            let mut recorded = Vec::new();
            let result: Result<(), ()> = send_all(
                (0..500).collect(),
                32,
                |job: &u32| if *job == 7 { Err("refused") } else { Ok(()) },
                |batch| {
                    recorded.extend(batch);
                    Ok(())
                },
            );
            assert!(result.is_ok());
            recorded
        });
        assert_eq!(recorded.len(), 500, "every job's outcome is recorded once");
        let failed: Vec<u32> = recorded
            .iter()
            .filter(|(_, o)| o.is_err())
            .map(|(j, _)| *j)
            .collect();
        assert_eq!(failed, vec![7]);
    }

    #[test]
    fn a_recording_error_stops_the_senders_and_returns() {
        let started = Instant::now();
        let (result, sent) = returns_within(|| {
            let sent = std::sync::atomic::AtomicUsize::new(0);
            let mut calls = 0;
            let result = send_all(
                (0..10_000).collect(),
                32,
                |_job: &u32| {
                    std::thread::sleep(Duration::from_millis(1));
                    sent.fetch_add(1, Ordering::Relaxed);
                },
                |_batch| {
                    calls += 1;
                    if calls == 3 {
                        Err("ledger is gone")
                    } else {
                        Ok(())
                    }
                },
            );
            (result, sent.into_inner())
        });
        assert_eq!(result, Err("ledger is gone"));
        assert!(sent < 10_000, "senders stopped early: {sent} sent");
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
