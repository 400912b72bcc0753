//! Compiling an integer-quantised network ([`QuantizedNetwork`]) for exact
//! integer schemes (BFV): the same [`Plan`] instructions as a real network,
//! with integer weights and biases, folded without any pending scale (BFV
//! cannot divide), and the plaintext modulus the accumulators need recorded
//! in the plan ([`IntegerPlan`]) and checked. Design notes: `docs/bfv.md`.

use super::{CompileOptions, to_plan};
use crate::error::{Error, Result};
use crate::lower::{Builder, Elem, Folded, Lowered, Row, Stage};
use crate::packing::Packing;
use crate::plan::{Instr, IntegerPlan, MAX_PLAN_INTEGER, OutputElem, Plan};
use crate::quant::{QLayer, QuantizedNetwork, window_taps};

/// Kind name of a quantised layer (for reports).
fn kind(layer: &QLayer) -> &'static str {
    match layer {
        QLayer::Dense { .. } => "dense",
        QLayer::Conv2d { .. } => "conv2d",
        QLayer::SumPool2d { .. } => "sumpool2d",
        QLayer::Square => "square",
        QLayer::Identity => "identity",
    }
}

/// An element of the current integer vector: a known constant or a stored
/// value (no pending factor: integers are never divided).
#[derive(Clone, Copy)]
enum IntElem {
    Const(i128),
    Stored(u32),
}

/// `v` as an exact plan constant.
fn exact(layer: usize, v: i128) -> Result<f64> {
    let f = v as f64;
    if f.abs() <= MAX_PLAN_INTEGER {
        Ok(f)
    } else {
        Err(Error::InvalidLayer {
            layer,
            what: "integer beyond 2^53 (not exact as a plan constant)",
            value: i64::try_from(v).unwrap_or(i64::MAX),
        })
    }
}

/// A linear quantised layer as integer rows over the flattened input, plus
/// the bias; `None` for layers that are not linear.
#[expect(
    clippy::type_complexity,
    reason = "sparse rows and a bias, local to this module"
)]
fn int_rows(
    layer: &QLayer,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Option<(Vec<Vec<(usize, i64)>>, Vec<i64>)> {
    let dims = |s: &[usize]| -> (usize, usize, usize) {
        (
            s.first().copied().unwrap_or(1),
            s.get(1).copied().unwrap_or(1),
            s.get(2).copied().unwrap_or(1),
        )
    };
    match layer {
        QLayer::Dense {
            weight,
            bias,
            out,
            inp,
        } => {
            let rows = (0..*out)
                .map(|o| {
                    (0..*inp)
                        .filter(|&j| weight[o * inp + j] != 0)
                        .map(|j| (j, weight[o * inp + j]))
                        .collect()
                })
                .collect();
            Some((rows, bias.clone()))
        }
        QLayer::Conv2d {
            weight,
            bias,
            shape: [oc, ic, kh, kw],
            stride,
            padding,
        } => {
            let (_, h, w) = dims(in_shape);
            let (_, oh, ow) = dims(out_shape);
            let mut rows = Vec::with_capacity(oc * oh * ow);
            let mut b = Vec::with_capacity(oc * oh * ow);
            for o in 0..*oc {
                for r in 0..oh {
                    for c in 0..ow {
                        let mut row = Vec::new();
                        for ci in 0..*ic {
                            for (u, k, y, x) in
                                window_taps((r, c), (*kh, *kw), *stride, *padding, (h, w))
                            {
                                let wv = weight[((o * ic + ci) * kh + u) * kw + k];
                                if wv != 0 {
                                    row.push(((ci * h + y) * w + x, wv));
                                }
                            }
                        }
                        row.sort_by_key(|t| t.0);
                        rows.push(row);
                        b.push(bias[o]);
                    }
                }
            }
            Some((rows, b))
        }
        QLayer::SumPool2d {
            kernel,
            stride,
            padding,
        } => {
            let (ch, h, w) = dims(in_shape);
            let (_, oh, ow) = dims(out_shape);
            let mut rows = Vec::with_capacity(ch * oh * ow);
            for k in 0..ch {
                for r in 0..oh {
                    for c in 0..ow {
                        let mut row: Vec<(usize, i64)> =
                            window_taps((r, c), *kernel, *stride, *padding, (h, w))
                                .map(|(_, _, y, x)| ((k * h + y) * w + x, 1))
                                .collect();
                        row.sort_by_key(|t| t.0);
                        rows.push(row);
                    }
                }
            }
            let n = rows.len();
            Some((rows, vec![0; n]))
        }
        QLayer::Square | QLayer::Identity => None,
    }
}

/// Folds a quantised network into integer stages: every linear layer is a
/// [`Stage::Linear`] with its integer weights and bias (dead units become
/// constants absorbed by the next layer), every square a [`Stage::Square`].
/// Unlike [`Folded::new`] nothing stays pending (a pending factor would have
/// to divide, which an integer scheme cannot), so every coefficient and bias
/// is an integer. Outputs are the raw integers (`alpha = 1`).
pub(crate) fn fold_quantized(q: &QuantizedNetwork) -> Result<Folded> {
    let input_dim: usize = q.input_shape().iter().product();
    let mut elems: Vec<IntElem> = (0..input_dim as u32).map(IntElem::Stored).collect();
    let mut stored_dim = input_dim;
    let mut stages = Vec::new();
    let mut in_shape = q.input_shape().to_vec();
    for (i, layer) in q.layers().iter().enumerate() {
        let out_shape = q.shape(i).map(<[usize]>::to_vec).unwrap_or_default();
        if let Some((rows, bias)) = int_rows(layer, &in_shape, &out_shape) {
            let mut folded = Vec::with_capacity(rows.len());
            for (row, b) in rows.iter().zip(&bias) {
                let mut acc = i128::from(*b);
                let mut terms = Vec::with_capacity(row.len());
                for &(j, w) in row {
                    match elems.get(j).copied() {
                        Some(IntElem::Const(v)) => acc += i128::from(w) * v,
                        Some(IntElem::Stored(src)) => terms.push((src, exact(i, i128::from(w))?)),
                        None => {
                            return Err(Error::ShapeMismatch {
                                layer: i,
                                expected: vec![elems.len()],
                                found: vec![j + 1],
                            });
                        }
                    }
                }
                terms.sort_by_key(|t| t.0);
                folded.push(Row {
                    terms,
                    bias: exact(i, acc)?,
                });
            }
            elems = folded
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    if r.terms.is_empty() {
                        IntElem::Const(r.bias as i128)
                    } else {
                        IntElem::Stored(k as u32)
                    }
                })
                .collect();
            let pure_sum = folded
                .iter()
                .all(|r| r.terms.iter().all(|&(_, c)| c == 1.0));
            stages.push(Stage::Linear {
                layer: i,
                in_dim: stored_dim,
                rows: folded,
                pure_sum,
            });
            stored_dim = elems.len();
        } else if let QLayer::Square = layer {
            let mut live = Vec::with_capacity(elems.len());
            for e in &mut elems {
                live.push(matches!(e, IntElem::Stored(_)));
                if let IntElem::Const(v) = e {
                    let sq = v.checked_mul(*v).ok_or(Error::InvalidLayer {
                        layer: i,
                        what: "squared constant (overflows 128 bits)",
                        value: i64::try_from(*v).unwrap_or(i64::MAX),
                    })?;
                    exact(i, sq)?;
                    *v = sq;
                }
            }
            if live.iter().any(|&l| l) {
                stages.push(Stage::Square { layer: i, live });
            }
        }
        in_shape = out_shape;
    }
    let outputs = elems
        .iter()
        .map(|e| match *e {
            IntElem::Const(v) => Elem::Const(v as f64),
            IntElem::Stored(src) => Elem::Var {
                src,
                alpha: 1.0,
                beta: 0.0,
            },
        })
        .collect();
    Ok(Folded {
        input_shape: q.input_shape().to_vec(),
        input_dim,
        stages,
        outputs,
        output_shape: in_shape,
        windows: Vec::new(),
    })
}

/// Whether `v` is an integer a plan stores exactly.
fn is_plan_integer(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() <= MAX_PLAN_INTEGER
}

/// Refuses instructions with a non-integer constant (a packing that scaled
/// something): an integer scheme would round it silently.
fn check_integer_steps(b: &Lowered) -> Result<()> {
    let bad = |layer: u32, v: f64| Error::InvalidLayer {
        layer: layer as usize,
        what: "non-integer constant in an integer plan",
        value: v as i64,
    };
    for s in &b.steps {
        let values: Vec<f64> = match &s.instr {
            Instr::DotScalar { weights, bias, .. } => {
                weights.iter().copied().chain([*bias]).collect()
            }
            Instr::Sum { bias, .. } => vec![*bias],
            Instr::AddScalar { value, .. } => vec![*value],
            other => other
                .plains()
                .iter()
                .filter_map(|&p| b.plains.get(p as usize))
                .flat_map(|p| p.values.iter().copied())
                .collect(),
        };
        if let Some(v) = values.into_iter().find(|v| !is_plan_integer(*v)) {
            return Err(bad(s.layer, v));
        }
    }
    for e in &b.output_map {
        match *e {
            OutputElem::Const(v) if !is_plan_integer(v) => return Err(bad(0, v)),
            OutputElem::Slot { alpha, beta, .. } if alpha != 1.0 || !is_plan_integer(beta) => {
                return Err(bad(0, alpha));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Compile a quantised network with a packing into a [`Plan`] for an exact
/// integer scheme (BFV).
///
/// The plan runs the network on integers: the client encrypts
/// `round(x * input_scale)` (clipped to the calibrated range), every
/// instruction has integer weights and biases (`DotScalar` at scale
/// `rescale_divisor = 1` under BFV, so the rescale is a pure modulus switch),
/// squares stay squares, and [`crate::eval::Client::decrypt`] divides each
/// output by its scale ([`crate::eval::Client::decrypt_values`] returns the
/// integers themselves). The plan's [`IntegerPlan`] records every layer's
/// worst-case integer magnitude.
///
/// Refuses, before anything is encrypted: a plaintext modulus
/// (`opts.plaintext_modulus`) that a layer's accumulators could exceed
/// ([`Error::AccumulatorOverflow`] naming the layer; the evaluator checks the
/// backend's own modulus again), integers a plan cannot store exactly, and
/// what [`crate::compile::compile`] refuses. Without
/// `opts.plaintext_modulus` nothing is checked here; use
/// [`IntegerPlan::min_plaintext_modulus`] to choose one. The plan's CKKS
/// parameter choice ([`Plan::params`]) follows `opts.params` as given (raise
/// its `integer_bits` to run the plan on the simulator or CKKS).
pub fn compile_quantized(
    q: &QuantizedNetwork,
    packing: &dyn Packing,
    opts: &CompileOptions,
) -> Result<Plan> {
    let integer = IntegerPlan::new(q)?;
    if let Some(t) = opts.plaintext_modulus {
        integer.check_plaintext_modulus(t)?;
    }
    let folded = fold_quantized(q)?;
    let mut b = Builder::new();
    packing.lower(&folded, &mut b)?;
    let lowered = b.finish()?;
    check_integer_steps(&lowered)?;
    let kinds = q.layers().iter().map(|l| kind(l).to_string()).collect();
    to_plan(lowered, kinds, packing.kind(), &folded, opts, Some(integer))
}
