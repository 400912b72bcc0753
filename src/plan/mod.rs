//! The plan: the intermediate representation between the compiler and the
//! evaluator. A [`Plan`] is the exact list of HE instructions ([`Instr`])
//! one inference runs, grouped into parallel [`Wave`]s, with the levels of
//! every value, the stored plaintexts ([`Plain`]), where the client puts
//! inputs ([`InputLayout`]) and reads outputs ([`OutputElem`]), the keys
//! and CKKS parameters it needs ([`CkksChoice`]), its op counts (priced by
//! a [`CostModel`]) and, for integer schemes, its accumulator bounds
//! ([`IntegerPlan`]).
//!
//! [`crate::compile`] produces plans, [`crate::eval`] runs them; neither
//! needs the other. A plan is serialisable ([`Plan::to_bytes`],
//! [`Plan::from_bytes`]) and checked for consistency ([`Plan::validate`])
//! wherever it enters.

mod backends;
mod ckks_choice;
mod cost_model;
mod display;
mod format;
mod instr;
mod integer;
mod layout;
mod packing_kind;
mod plain;
mod program;
mod validate;

pub use ckks_choice::{CkksChoice, noise_bits};
pub use cost_model::CostModel;
pub use format::PLAN_BYTES_LIMIT;
pub use instr::{Instr, PlainId, Step, ValueId, Wave};
pub use integer::{IntegerPlan, MAX_PLAN_INTEGER};
pub use layout::{InputLayout, OutputElem};
pub use packing_kind::{PackingKind, TileShape};
pub use plain::{Plain, PlainUse};
pub use program::Plan;
