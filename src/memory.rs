//! Peak memory per stage, for the run summary. A sampler thread reads the
//! process's resident set (`/proc/self/status`, Linux) every few
//! milliseconds and keeps the largest since the current stage began.
//! (Resetting the kernel's own peak would also reset what a parent sees
//! of this process, so it is not touched.) Elsewhere stages have no figure.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The largest resident set (kB) seen since the current stage began.
static STAGE_PEAK_KB: AtomicU64 = AtomicU64::new(0);
static SAMPLER: Once = Once::new();
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Starts measuring a new stage's peak from the resident set now.
pub fn start_stage() {
    SAMPLER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(|| {
                while let Some(kb) = resident_kb() {
                    STAGE_PEAK_KB.fetch_max(kb, Ordering::Relaxed);
                    std::thread::sleep(SAMPLE_EVERY);
                }
            });
        if started.is_err() {
            tracing::debug!("no memory sampler thread: stages have no peak figure");
        }
    });
    STAGE_PEAK_KB.store(resident_kb().unwrap_or(0), Ordering::Relaxed);
}

/// The largest resident set (MB) since [`start_stage`], if it is known.
pub fn stage_peak_mb() -> Option<f64> {
    let now = resident_kb()?;
    let peak = STAGE_PEAK_KB.fetch_max(now, Ordering::Relaxed).max(now);
    Some((peak as f64 / 1024.0 * 10.0).round() / 10.0)
}

/// The resident set now (kB), from `/proc/self/status`.
fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `work` (ingest) with glibc's malloc keeping freed blocks of up to
/// 32 MB (its ceiling) in the process: parse blocks, column buffers and
/// parquet pages are otherwise handed back to the system when freed and
/// faulted in again, zeroed, for the next day (a tenth of ingest's CPU
/// time on a plain month went to that). Afterwards the thresholds go back
/// to glibc's initial 128 KB (fixed: glibc no longer raises its mmap
/// threshold by itself) and what is free goes back to the system, so the
/// later stages do not carry ingest's free memory in their peaks.
pub fn keeping_freed_blocks<T>(work: impl FnOnce() -> T) -> T {
    set_malloc_thresholds(32 << 20, 256 << 20);
    let out = work();
    set_malloc_thresholds(128 << 10, 128 << 10);
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    out
}

/// glibc's mmap and trim thresholds (bytes); nothing elsewhere.
fn set_malloc_thresholds(mmap: i32, trim: i32) {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes malloc's tuning, and is thread-safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim);
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = (mmap, trim);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_stage_peak_sees_memory_freed_before_the_stage_ends() {
        start_stage();
        let before = stage_peak_mb().unwrap();
        let big = vec![1u8; 300 << 20];
        std::hint::black_box(&big);
        std::thread::sleep(SAMPLE_EVERY * 10);
        drop(big);
        let peak = stage_peak_mb().unwrap();
        assert!(peak >= before + 250.0, "{peak} vs {before}");
        start_stage();
        let next = stage_peak_mb().unwrap();
        assert!(next < peak - 200.0, "{next} vs {peak}");
    }
}
