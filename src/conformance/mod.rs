//! A plan-level conformance suite for [`HeScheme`](crate::he::HeScheme)
//! backends, written once and run on every backend of the crate (the
//! simulator, `Counted<Sim>`, CKKS, BFV), and available to a third-party
//! backend from its own tests (cargo feature `conformance`).
//!
//! [`PlanSuite`] compiles small networks of every layer kind under every
//! packing, runs them through [`Client`](crate::eval::Client) and
//! [`Server`](crate::eval::Server) on the backend under test, and checks:
//!
//! - **encrypted vs plaintext**: the decrypted outputs agree with an `f64`
//!   reference forward pass ([`reference`](mod@reference)) within the backend's tolerance
//!   (real-number backends), or equal the quantised network's integer
//!   forward pass exactly (integer backends, on quantised plans);
//! - **exact op counts**: the operations the backend performs are exactly
//!   the plan's estimate ([`Plan::counts`](crate::plan::Plan::counts)),
//!   and the server encodes exactly the plan's plaintexts;
//! - **exact skipping**: zeroing one block of the packing's shape (a weight,
//!   a neuron, a tile, a diagonal) removes exactly the operations the
//!   packing says it saves ([`Packing::zero_block_saves`](crate::packing::Packing::zero_block_saves)),
//!   dense vs pruned.
//!
//! A backend is described by a factory: given a plan and the slots it
//! needs, return a backend able to run it (enough levels, at least that
//! many slots). The suite wraps it in [`Counted`](crate::he::Counted) itself
//! to count.
//!
//! ```
//! use mofhei::conformance::PlanSuite;
//! use mofhei::he::sim::Sim;
//!
//! let suite = PlanSuite::new(
//!     |plan: &mofhei::plan::Plan, slots: usize| Ok(Sim::new(plan.params().sim_params(slots)?)),
//!     1e-6,
//! );
//! suite.mlp_under_every_packing();
//! ```
//!
//! Or every case as its own `#[test]`, with the
//! [`plan_conformance_suite!`](crate::plan_conformance_suite) macro.
//!
//! The scheme-level laws (one operation at a time, misuse, wrong keys) are
//! in `tests/conformance/mod.rs` of the repository.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a failed check panics with its message"
)]

mod plan;
pub mod reference;

#[cfg(test)]
pub(crate) use plan::quantised_net;
pub use plan::{Outcome, PlanSuite, diff, mlp, packings, zero_blocks};

/// Instantiates the plan-level suite as one `#[test]` per case:
///
/// ```
/// use mofhei::plan::Plan;
/// use mofhei::he::sim::Sim;
///
/// fn make(plan: &Plan, slots: usize) -> mofhei::Result<Sim> {
///     Ok(Sim::new(plan.params().sim_params(slots)?))
/// }
/// mofhei::plan_conformance_suite!(make, tolerance = 1e-6);
/// # fn main() {}
/// ```
///
/// For an integer backend (one with a plaintext modulus) the float cases
/// return at once and the quantised cases run; for a real-number backend,
/// the other way round.
#[macro_export]
macro_rules! plan_conformance_suite {
    ($make:expr, tolerance = $tol:expr) => {
        #[test]
        fn plan_layer_kinds_under_every_packing() {
            $crate::conformance::PlanSuite::new($make, $tol).layer_kinds_under_every_packing();
        }
        #[test]
        fn plan_mlp_under_every_packing() {
            $crate::conformance::PlanSuite::new($make, $tol).mlp_under_every_packing();
        }
        #[test]
        fn plan_batch_zero_weight_saves_one_mult_and_add() {
            $crate::conformance::PlanSuite::new($make, $tol).batch_zero_weight();
        }
        #[test]
        fn plan_batch_culled_neuron_removes_its_work() {
            $crate::conformance::PlanSuite::new($make, $tol).batch_culled_neuron();
        }
        #[test]
        fn plan_tile_zero_tile_saves_what_the_packing_says() {
            $crate::conformance::PlanSuite::new($make, $tol).tile_zero_tile();
        }
        #[test]
        fn plan_diagonal_zero_diagonal_saves_what_the_packing_says() {
            $crate::conformance::PlanSuite::new($make, $tol).diagonal_zero_diagonal();
        }
        #[test]
        fn plan_quantised_under_every_packing() {
            $crate::conformance::PlanSuite::new($make, $tol).quantised_under_every_packing();
        }
    };
}
