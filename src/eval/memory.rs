//! Process probes read from `/proc` (Linux only; `None` elsewhere): the
//! resident-set high-water mark (`VmHWM`), CPU time, and the peak of one
//! run ([`PeakProbe`]). Crate-private: the public figures are the fields of
//! [`RunReport`](super::RunReport).

use std::time::Duration;

/// Reads a `kB` field of `/proc/self/status` in bytes.
pub(crate) fn proc_status_bytes(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// CPU time (user + system, all threads) of the process so far, from
/// `/proc/self/stat` (Linux; clock ticks of 10 ms).
pub(crate) fn process_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace();
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(Duration::from_millis(
        utime.checked_add(stime)?.checked_mul(10)?,
    ))
}

/// Resets the process's peak-RSS mark to the current resident set (writing
/// `5` to `/proc/self/clear_refs`, Linux 4.0 or later); `true` when the
/// kernel accepted it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident set during one run.
///
/// By default the process-wide mark is left alone: the probe records
/// `VmHWM` before the run, and after it reports the mark only when the run
/// raised it (then the new mark was reached during the run), with the
/// growth. With `reset`, the mark is first reset to the current resident
/// set (this changes what every other reader of `VmHWM` in the process
/// sees), so the figure after the run is always the run's peak.
pub(crate) struct PeakProbe {
    before: Option<u64>,
    reset: bool,
}

impl PeakProbe {
    /// Starts measuring (resetting the mark first when `reset`).
    pub(crate) fn start(reset: bool) -> PeakProbe {
        let reset = reset && reset_peak_rss();
        PeakProbe {
            before: proc_status_bytes("VmHWM:"),
            reset,
        }
    }

    /// `(peak, growth)`: the peak during the run when known (the mark was
    /// reset, or the run raised it), and how much the run raised the mark
    /// it started from (`Some(0)` when it did not).
    pub(crate) fn finish(&self) -> (Option<u64>, Option<u64>) {
        outcome(self.before, proc_status_bytes("VmHWM:"), self.reset)
    }
}

/// `(peak, growth)` from the marks before and after a run.
fn outcome(before: Option<u64>, after: Option<u64>, reset: bool) -> (Option<u64>, Option<u64>) {
    let growth = after.zip(before).map(|(a, b)| a.saturating_sub(b));
    let peak = match growth {
        _ if reset => after,
        Some(g) if g > 0 => after,
        _ => None,
    };
    (peak, growth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_reported_only_when_known() {
        // The run raised the mark: the new mark is the run's peak.
        assert_eq!(outcome(Some(100), Some(150), false), (Some(150), Some(50)));
        // It stayed under an earlier peak: unknown, no growth.
        assert_eq!(outcome(Some(100), Some(100), false), (None, Some(0)));
        // After a reset the mark is the run's peak, even when lower than the
        // mark before the reset.
        assert_eq!(outcome(Some(100), Some(80), true), (Some(80), Some(0)));
        // No /proc.
        assert_eq!(outcome(None, None, false), (None, None));
        assert_eq!(outcome(None, Some(5), true), (Some(5), None));
    }

    #[test]
    fn probe_does_not_lower_the_mark() {
        let Some(before) = proc_status_bytes("VmHWM:") else {
            return; // no /proc on this system
        };
        let probe = PeakProbe::start(false);
        let _ = probe.finish();
        assert!(proc_status_bytes("VmHWM:").is_some_and(|after| after >= before));
    }

    #[test]
    fn cpu_time_is_monotone() {
        if let (Some(a), Some(b)) = (process_cpu_time(), process_cpu_time()) {
            assert!(b >= a);
        }
    }
}
