//! Lowering: the interface a packing implements. **Implement
//! [`crate::packing::Packing`] to add a packing**: its
//! [`lower`](crate::packing::Packing::lower) receives the network folded into
//! sparse linear maps and squarings ([`Folded`]: [`Stage`]s of [`Row`]s
//! over a stored vector, the outputs as [`Elem`]s, the image geometry of
//! each window layer as a [`Window`]) and emits plan instructions
//! ([`crate::plan::Instr`]) through a [`Builder`], which tracks levels and
//! keys. The compiler ([`crate::compile::compile`]) then schedules what was
//! emitted into a [`crate::plan::Plan`]. A packing needs this module and
//! [`crate::plan`], nothing of the compiler.
//!
//! A zero weight, tile or diagonal should emit nothing: that is what pruning
//! saves. Design notes in `docs/compile.md`.
//!
//! # Example
//!
//! A packing with one ciphertext per element and one sample per slot (the
//! batch packing without its refinements):
//!
//! ```
//! use mofhei::compile::{CompileOptions, compile};
//! use mofhei::he::{OpCounts, OpKind};
//! use mofhei::lower::{Builder, Elem, Folded, Stage};
//! use mofhei::model::{Activation, Dense, Layer, Network, Tensor};
//! use mofhei::packing::{BlockShape, Packing};
//! use mofhei::plan::{InputLayout, OutputElem, PackingKind, ValueId};
//!
//! struct PerElement;
//!
//! impl Packing for PerElement {
//!     fn name(&self) -> &'static str {
//!         "per-element packing"
//!     }
//!     fn kind(&self) -> PackingKind {
//!         PackingKind::Batch
//!     }
//!     fn block_shape(&self, _: &Network, _: usize) -> Option<BlockShape> {
//!         Some(BlockShape::Weight)
//!     }
//!     fn zero_block_saves(&self) -> OpCounts {
//!         OpCounts::default()
//!     }
//!     fn lower(&self, folded: &Folded, b: &mut Builder) -> mofhei::Result<()> {
//!         let layout = InputLayout {
//!             cts: (0..folded.input_dim as u32).map(|e| vec![(0, e)]).collect(),
//!         };
//!         let mut cur: Vec<Option<ValueId>> = b.inputs(layout).into_iter().map(Some).collect();
//!         for stage in &folded.stages {
//!             b.set_layer(stage.layer());
//!             cur = match stage {
//!                 Stage::Linear { rows, .. } => rows
//!                     .iter()
//!                     .map(|r| {
//!                         let (ins, w): (Vec<ValueId>, Vec<f64>) = r
//!                             .terms
//!                             .iter()
//!                             .filter_map(|&(j, c)| Some((cur.get(j as usize).copied()??, c)))
//!                             .unzip();
//!                         (!ins.is_empty()).then(|| b.dot_scalar(&ins, w, r.bias))
//!                     })
//!                     .collect(),
//!                 Stage::Square { live, .. } => cur
//!                     .iter()
//!                     .zip(live)
//!                     .map(|(v, &l)| v.filter(|_| l).map(|v| b.square(v)))
//!                     .collect(),
//!                 Stage::AddConst { values, .. } => cur
//!                     .iter()
//!                     .zip(values)
//!                     .map(|(v, &c)| v.map(|v| if c == 0.0 { v } else { b.add_scalar(v, c) }))
//!                     .collect(),
//!             };
//!         }
//!         let mut cts = Vec::new();
//!         let map = folded
//!             .outputs
//!             .iter()
//!             .map(|e| match *e {
//!                 Elem::Const(v) => OutputElem::Const(v),
//!                 Elem::Var { src, alpha, beta } => match cur.get(src as usize).copied().flatten() {
//!                     None => OutputElem::Const(beta),
//!                     Some(v) => {
//!                         cts.push(v);
//!                         OutputElem::Slot { ct: cts.len() as u32 - 1, slot: 0, alpha, beta }
//!                     }
//!                 },
//!             })
//!             .collect();
//!         b.set_outputs(cts, map);
//!         Ok(())
//!     }
//! }
//!
//! let dense = |out: usize, inp: usize| {
//!     let w = (0..out * inp).map(|i| if i % 3 == 0 { 0.0 } else { 0.1 }).collect();
//!     Layer::Dense(Dense { weight: Tensor::new(vec![out, inp], w).unwrap(), bias: vec![0.5; out] })
//! };
//! let net = Network::new(
//!     vec![6],
//!     vec![dense(4, 6), Layer::Activation(Activation::Square), dense(2, 4)],
//! )
//! .unwrap();
//! let plan = compile(&net, &PerElement, &CompileOptions::default()).unwrap();
//! assert_eq!(plan.depth(), 3);
//! // 24 weights of which 8 are zero, then 8 of which 3 are zero.
//! assert_eq!(plan.counts().get(OpKind::CtScalarMul), 16 + 5);
//! ```

mod builder;
mod folded;

pub use builder::Builder;
pub(crate) use builder::Lowered;
pub use folded::{Elem, Folded, Row, Stage, Window};
