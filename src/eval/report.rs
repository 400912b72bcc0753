//! What a run cost: [`RunReport`], [`LayerReport`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::he::OpCounts;

/// Time spent in one network layer during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Index of the network layer.
    pub layer: usize,
    /// Its kind.
    pub kind: String,
    /// Instructions run for it.
    pub instructions: usize,
    /// Time spent in its instructions, summed over threads.
    pub busy: Duration,
}

/// What a run cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// CPU time of the whole process (user + system, every thread) during
    /// the run, if readable (`/proc/self/stat`, 10 ms resolution); with
    /// other work in the process it counts that too.
    pub cpu: Option<Duration>,
    /// Per layer (only layers that emitted instructions).
    pub layers: Vec<LayerReport>,
    /// Peak resident set of the process during the run (`VmHWM`, Linux),
    /// when known: the run raised the process's high-water mark (so the new
    /// mark was reached during the run), or the mark was reset before the
    /// run ([`Server::set_peak_rss_reset`](super::Server::set_peak_rss_reset)).
    /// `None` when the run stayed under an earlier peak of the process or
    /// `/proc` is unreadable. The figure covers the whole process.
    pub peak_rss_bytes: Option<u64>,
    /// How much the run raised the process's peak resident set (`Some(0)`
    /// when it stayed under an earlier peak; `None` without `/proc`).
    pub rss_growth_bytes: Option<u64>,
    /// Most ciphertexts alive at once.
    pub peak_live: usize,
    /// Op counts of the run (set by [`Server::run_counted`](super::Server::run_counted)).
    pub counts: Option<OpCounts>,
}
