//! Folding: a network becomes a chain of sparse linear maps and squarings,
//! with every scalar factor (average-pool divisors, polynomial coefficients,
//! batch-norm, dropped units) moved into neighbouring weights and biases.
//!
//! The pass keeps, for every element of the current activation vector, either
//! a known constant ([`Elem::Const`]: a unit whose weights are all zero) or a
//! *pending affine map* of a stored value ([`Elem::Var`]: the true value is
//! `alpha * s[src] + beta`, where `s` is what the ciphertexts hold). Linear
//! layers absorb the pending map into their weights and biases; a degree-2
//! polynomial `a x^2 + b x + c` becomes `A (s + B/2A)^2 + (C - B^2/4A)`: the
//! shift goes into the previous linear layer's bias, the squaring costs one
//! ct x ct mult and one level, and `A` and the constant stay pending for the
//! next linear layer. Layers whose rows have at most one weight (batch-norm,
//! identity, selections) cost nothing at all. See `docs/compile.md`.

use std::collections::BTreeMap;

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::model::{Activation, Layer, Network};

/// One row of a sparse linear map: `out = sum_j coeff_j * s[src_j] + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `(src, coeff)` pairs, `src` increasing, no zero coefficient.
    pub terms: Vec<(u32, f64)>,
    /// The constant added.
    pub bias: f64,
}

/// A step of the folded network, acting on the vector of stored values.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// A sparse linear map; rows without terms are dead (their value is a
    /// constant the next stages already absorbed).
    Linear {
        /// The network layer this stage came from (the last one folded in).
        layer: usize,
        /// Length of the input vector.
        in_dim: usize,
        /// One row per output.
        rows: Vec<Row>,
        /// Whether every coefficient is exactly 1 (a plain sum, no mult).
        pure_sum: bool,
    },
    /// Element-wise square of every live element.
    Square {
        /// The network layer.
        layer: usize,
        /// Which elements are live (computed).
        live: Vec<bool>,
    },
    /// Element-wise addition of constants to live elements.
    AddConst {
        /// The network layer.
        layer: usize,
        /// The constant per element (0 where nothing is added).
        values: Vec<f64>,
        /// Which elements are live.
        live: Vec<bool>,
    },
}

impl Stage {
    /// The network layer the stage came from.
    pub fn layer(&self) -> usize {
        match self {
            Stage::Linear { layer, .. }
            | Stage::Square { layer, .. }
            | Stage::AddConst { layer, .. } => *layer,
        }
    }

    /// Length of the output vector.
    pub fn out_dim(&self) -> usize {
        match self {
            Stage::Linear { rows, .. } => rows.len(),
            Stage::Square { live, .. } | Stage::AddConst { live, .. } => live.len(),
        }
    }
}

/// What an element of the network's current vector is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Elem {
    /// A constant (its unit's weights are all zero).
    Const(f64),
    /// `alpha * s[src] + beta` of the stored vector `s`.
    Var {
        /// Index into the stored vector.
        src: u32,
        /// Factor.
        alpha: f64,
        /// Offset.
        beta: f64,
    },
}

/// A network folded into linear maps and squarings.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// Per-sample input shape.
    pub input_shape: Vec<usize>,
    /// Flattened input length.
    pub input_dim: usize,
    /// The stages, first to last.
    pub stages: Vec<Stage>,
    /// The network's outputs in terms of the last stored vector.
    pub outputs: Vec<Elem>,
    /// Per-sample output shape.
    pub output_shape: Vec<usize>,
    /// Per network layer, the image geometry of a convolution or average
    /// pool (`None` for other layers, and for every layer of a quantised
    /// network); packings that lay images out spatially (interleaved tiles)
    /// read it, the others ignore it.
    pub windows: Vec<Option<Window>>,
}

/// The image geometry of a convolution or pooling layer: what a packing that
/// keeps images spatial needs to recognise the folded rows as a window
/// operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The layer's kind (`"conv2d"`, `"avgpool2d"`), for errors.
    pub kind: &'static str,
    /// Input `[channels, height, width]`.
    pub in_shape: [usize; 3],
    /// Output `[channels, height, width]`.
    pub out_shape: [usize; 3],
    /// Window `(kh, kw)`.
    pub kernel: (usize, usize),
    /// Stride `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)`.
    pub padding: (usize, usize),
}

impl Window {
    /// The geometry of `layer` (a convolution or average pool with 3-D input
    /// and output shapes), else `None`.
    pub fn of(layer: &Layer, in_shape: &[usize], out_shape: &[usize]) -> Option<Window> {
        let (kind, kernel, stride, padding) = match layer {
            Layer::Conv2d(c) => {
                let ws = c.weight.shape();
                ("conv2d", (*ws.get(2)?, *ws.get(3)?), c.stride, c.padding)
            }
            Layer::AvgPool2d(p) => ("avgpool2d", p.kernel, p.stride, p.padding),
            _ => return None,
        };
        let three = |s: &[usize]| -> Option<[usize; 3]> {
            match *s {
                [a, b, c] => Some([a, b, c]),
                _ => None,
            }
        };
        Some(Window {
            kind,
            in_shape: three(in_shape)?,
            out_shape: three(out_shape)?,
            kernel,
            stride,
            padding,
        })
    }
}

impl Folded {
    /// Fold a network. Refuses layers HE cannot evaluate (ReLU, max-pool, ...)
    /// and polynomials of degree above 2 with [`Error::UnsupportedLayer`],
    /// and a network whose folding work exceeds the default [`Budget`]
    /// ([`Error::BudgetExceeded`], see [`Folded::with_budget`]).
    pub fn new(net: &Network) -> Result<Folded> {
        Folded::with_budget(net, &Budget::default())
    }

    /// [`Folded::new`] with the caller's [`Budget`]: before anything is
    /// built, the folding work ([`crate::model::Footprint::compile_terms`])
    /// must be within [`Budget::max_compile_terms`], one sample's
    /// activations within [`Budget::max_tensor_elements`], and every
    /// activation must be addressable by a 32-bit value id.
    pub fn with_budget(net: &Network, budget: &Budget) -> Result<Folded> {
        let shapes = net.shapes()?;
        net.check_budget(1, false, budget)?;
        Budget::check(
            "compile terms",
            net.footprint(1)?.compile_terms,
            budget.max_compile_terms,
        )?;
        let widest = std::iter::once(&net.input_shape)
            .chain(&shapes)
            .map(|s| crate::budget::product(s))
            .max()
            .unwrap_or(0);
        Budget::check(
            "elements of one activation (32-bit ids)",
            widest,
            u64::from(u32::MAX),
        )?;
        let input_dim: usize = net.input_shape.iter().product();
        let mut f = Folder {
            elems: (0..input_dim)
                .map(|j| Elem::Var {
                    src: j as u32,
                    alpha: 1.0,
                    beta: 0.0,
                })
                .collect(),
            stages: Vec::new(),
        };
        for (i, layer) in net.layers.iter().enumerate() {
            let in_shape = if i == 0 {
                net.input_shape.as_slice()
            } else {
                shapes[i - 1].as_slice()
            };
            match layer {
                Layer::Flatten | Layer::Dropout { .. } => {}
                Layer::Dense(_) | Layer::Conv2d(_) | Layer::AvgPool2d(_) | Layer::BatchNorm(_) => {
                    let (rows, bias) = linear_rows(layer, in_shape, &shapes[i]);
                    f.linear(i, rows, bias);
                }
                Layer::Activation(Activation::Square) => {
                    let n = f.elems.len();
                    f.poly(i, &vec![[0.0, 0.0, 1.0]; n])?;
                }
                Layer::Activation(Activation::Poly(p)) => {
                    if p.degree() > 2 {
                        return Err(Error::UnsupportedLayer {
                            layer: i,
                            kind: layer.kind(),
                            by: "compile (polynomials of degree > 2)",
                        });
                    }
                    let n = f.elems.len();
                    let per = n / p.coeffs.len().max(1);
                    let coeffs: Vec<[f64; 3]> = (0..n)
                        .map(|e| {
                            let set = &p.coeffs[if p.coeffs.len() == 1 {
                                0
                            } else {
                                (e / per.max(1)).min(p.coeffs.len() - 1)
                            }];
                            let mut c = [0.0; 3];
                            for (k, v) in set.iter().enumerate() {
                                c[k] = f64::from(*v);
                            }
                            c
                        })
                        .collect();
                    f.poly(i, &coeffs)?;
                }
                Layer::MaxPool2d(_) | Layer::Activation(_) => {
                    return Err(Error::UnsupportedLayer {
                        layer: i,
                        kind: layer.kind(),
                        by: "compile (transform the network to be HE-friendly first)",
                    });
                }
            }
        }
        let windows = net
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let in_shape = if i == 0 {
                    net.input_shape.as_slice()
                } else {
                    shapes[i - 1].as_slice()
                };
                Window::of(l, in_shape, &shapes[i])
            })
            .collect();
        Ok(Folded {
            input_shape: net.input_shape.clone(),
            input_dim,
            stages: f.stages,
            outputs: f.elems,
            output_shape: net.output_shape()?,
            windows,
        })
    }

    /// The same network with consecutive linear stages composed into one
    /// (tile and diagonal packings pay per matrix, not per weight, so a pool
    /// followed by a convolution is cheaper as one matrix).
    pub fn compose_linear(&self) -> Folded {
        let mut stages: Vec<Stage> = Vec::new();
        for s in &self.stages {
            if let (
                Some(Stage::Linear {
                    rows: prev_rows, ..
                }),
                Stage::Linear { layer, rows, .. },
            ) = (stages.last_mut(), s)
            {
                let composed: Vec<Row> = rows
                    .iter()
                    .map(|r| {
                        let mut acc: BTreeMap<u32, f64> = BTreeMap::new();
                        let mut bias = r.bias;
                        for &(k, w) in &r.terms {
                            let p = &prev_rows[k as usize];
                            bias += w * p.bias;
                            for &(j, v) in &p.terms {
                                *acc.entry(j).or_insert(0.0) += w * v;
                            }
                        }
                        Row {
                            terms: acc.into_iter().filter(|(_, c)| *c != 0.0).collect(),
                            bias,
                        }
                    })
                    .collect();
                let pure = all_ones(&composed);
                let in_dim = match stages.last() {
                    Some(Stage::Linear { in_dim, .. }) => *in_dim,
                    _ => 0,
                };
                stages.pop();
                stages.push(Stage::Linear {
                    layer: *layer,
                    in_dim,
                    rows: composed,
                    pure_sum: pure,
                });
                continue;
            }
            stages.push(s.clone());
        }
        Folded {
            stages,
            ..self.clone()
        }
    }
}

fn all_ones(rows: &[Row]) -> bool {
    rows.iter().all(|r| r.terms.iter().all(|&(_, c)| c == 1.0))
}

struct Folder {
    elems: Vec<Elem>,
    stages: Vec<Stage>,
}

impl Folder {
    fn stored_dim(&self, input_dim: usize) -> usize {
        self.stages.last().map(Stage::out_dim).unwrap_or(input_dim)
    }

    /// Apply a linear layer given as rows over the current elements.
    fn linear(&mut self, layer: usize, rows: Vec<Vec<(usize, f64)>>, bias: Vec<f64>) {
        let in_dim = self.stored_dim(self.elems.len());
        let folded: Vec<Row> = rows
            .iter()
            .zip(&bias)
            .map(|(row, &b)| {
                let mut acc: BTreeMap<u32, f64> = BTreeMap::new();
                let mut bias = b;
                for &(j, w) in row {
                    match self.elems[j] {
                        Elem::Const(v) => bias += w * v,
                        Elem::Var { src, alpha, beta } => {
                            *acc.entry(src).or_insert(0.0) += w * alpha;
                            bias += w * beta;
                        }
                    }
                }
                Row {
                    terms: acc.into_iter().filter(|(_, c)| *c != 0.0).collect(),
                    bias,
                }
            })
            .collect();
        if folded.iter().all(|r| r.terms.len() <= 1) {
            // Batch-norm, identity, selections: absorbed, no stage.
            self.elems = folded
                .iter()
                .map(|r| match r.terms.first() {
                    None => Elem::Const(r.bias),
                    Some(&(src, c)) => Elem::Var {
                        src,
                        alpha: c,
                        beta: r.bias,
                    },
                })
                .collect();
            return;
        }
        let uniform = folded
            .iter()
            .all(|r| r.terms.iter().all(|&(_, c)| c == r.terms[0].1));
        if uniform {
            // Every row is c_i * (plain sum): emit the sum, keep c_i and the
            // bias pending (average pooling costs no multiplication).
            self.elems = folded
                .iter()
                .enumerate()
                .map(|(i, r)| match r.terms.first() {
                    None => Elem::Const(r.bias),
                    Some(&(_, c)) => Elem::Var {
                        src: i as u32,
                        alpha: c,
                        beta: r.bias,
                    },
                })
                .collect();
            let rows = folded
                .into_iter()
                .map(|r| Row {
                    terms: r.terms.into_iter().map(|(j, _)| (j, 1.0)).collect(),
                    bias: 0.0,
                })
                .collect();
            self.stages.push(Stage::Linear {
                layer,
                in_dim,
                rows,
                pure_sum: true,
            });
        } else {
            self.elems = folded
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    if r.terms.is_empty() {
                        Elem::Const(r.bias)
                    } else {
                        Elem::Var {
                            src: i as u32,
                            alpha: 1.0,
                            beta: 0.0,
                        }
                    }
                })
                .collect();
            let pure = all_ones(&folded);
            self.stages.push(Stage::Linear {
                layer,
                in_dim,
                rows: folded,
                pure_sum: pure,
            });
        }
    }

    /// Apply `c0 + c1 x + c2 x^2` element-wise.
    fn poly(&mut self, layer: usize, coeffs: &[[f64; 3]]) -> Result<()> {
        let p = |c: &[f64; 3], x: f64| c[0] + c[1] * x + c[2] * x * x;
        // (A, B, C) of q(s) = p(alpha s + beta) per variable element.
        let quad: Vec<Option<(f64, f64, f64)>> = self
            .elems
            .iter()
            .zip(coeffs)
            .map(|(e, c)| match *e {
                Elem::Const(_) => None,
                Elem::Var { alpha, beta, .. } => Some((
                    c[2] * alpha * alpha,
                    c[1] * alpha + 2.0 * c[2] * alpha * beta,
                    c[0] + c[1] * beta + c[2] * beta * beta,
                )),
            })
            .collect();
        let any_sq = quad.iter().flatten().any(|q| q.0 != 0.0);
        let all_sq = quad.iter().flatten().all(|q| q.0 != 0.0);
        if !any_sq {
            // Affine activation: pending, no work.
            for (e, (q, c)) in self.elems.iter_mut().zip(quad.iter().zip(coeffs)) {
                *e = match (*e, q) {
                    (Elem::Const(v), _) => Elem::Const(p(c, v)),
                    (Elem::Var { src, .. }, Some((_, b, cc))) => Elem::Var {
                        src,
                        alpha: *b,
                        beta: *cc,
                    },
                    (v, None) => v,
                };
            }
            return Ok(());
        }
        if !all_sq {
            return Err(Error::UnsupportedLayer {
                layer,
                kind: "poly",
                by: "compile (quadratic and affine units mixed in one layer)",
            });
        }
        let input_dim = self.elems.len();
        let dim = self.stored_dim(input_dim);
        // The squaring works on stored values: every variable element must be
        // its own stored value (no selection in between), else materialise.
        let identity = self.elems.iter().enumerate().all(|(i, e)| match e {
            Elem::Var { src, .. } => *src as usize == i,
            Elem::Const(_) => true,
        }) && self.elems.len() == dim;
        if !identity {
            let rows: Vec<Row> = self
                .elems
                .iter()
                .map(|e| match *e {
                    Elem::Const(v) => Row {
                        terms: vec![],
                        bias: v,
                    },
                    Elem::Var { src, alpha, beta } => Row {
                        terms: vec![(src, alpha)],
                        bias: beta,
                    },
                })
                .collect();
            self.stages.push(Stage::Linear {
                layer,
                in_dim: dim,
                rows,
                pure_sum: false,
            });
            // Re-express the quadratics on the materialised (alpha 1, beta 0) values.
            for (i, e) in self.elems.iter_mut().enumerate() {
                if let Elem::Var { .. } = e {
                    *e = Elem::Var {
                        src: i as u32,
                        alpha: 1.0,
                        beta: 0.0,
                    };
                }
            }
            return self.poly(layer, coeffs);
        }
        let dim = self.elems.len();
        let live: Vec<bool> = self
            .elems
            .iter()
            .map(|e| matches!(e, Elem::Var { .. }))
            .collect();
        let shifts: Vec<f64> = quad
            .iter()
            .map(|q| q.map(|(a, b, _)| b / (2.0 * a)).unwrap_or(0.0))
            .collect();
        if shifts.iter().any(|s| *s != 0.0) {
            match self.stages.last_mut() {
                Some(Stage::Linear { rows, .. }) => {
                    for (r, s) in rows.iter_mut().zip(&shifts) {
                        r.bias += s;
                    }
                }
                Some(Stage::AddConst { values, .. }) => {
                    for (v, s) in values.iter_mut().zip(&shifts) {
                        *v += s;
                    }
                }
                _ => self.stages.push(Stage::AddConst {
                    layer,
                    values: shifts.clone(),
                    live: live.clone(),
                }),
            }
        }
        self.stages.push(Stage::Square {
            layer,
            live: live.clone(),
        });
        for (i, (e, (q, c))) in self
            .elems
            .iter_mut()
            .zip(quad.iter().zip(coeffs))
            .enumerate()
        {
            *e = match (*e, q) {
                (Elem::Const(v), _) => Elem::Const(p(c, v)),
                (Elem::Var { .. }, Some((a, b, cc))) => Elem::Var {
                    src: i as u32,
                    alpha: *a,
                    beta: cc - b * b / (4.0 * a),
                },
                (v, None) => v,
            };
        }
        debug_assert_eq!(dim, self.elems.len());
        Ok(())
    }
}

/// A linear layer as sparse rows over the flattened input, plus the bias.
fn linear_rows(
    layer: &Layer,
    in_shape: &[usize],
    out_shape: &[usize],
) -> (Vec<Vec<(usize, f64)>>, Vec<f64>) {
    match layer {
        Layer::Dense(d) => {
            let ws = d.weight.shape();
            let (o, n) = (ws[0], ws[1]);
            let w = d.weight.data();
            let rows = (0..o)
                .map(|i| {
                    (0..n)
                        .filter(|&j| w[i * n + j] != 0.0)
                        .map(|j| (j, f64::from(w[i * n + j])))
                        .collect()
                })
                .collect();
            (rows, d.bias.iter().map(|&b| f64::from(b)).collect())
        }
        Layer::Conv2d(c) => {
            let ws = c.weight.shape();
            let (oc, ic, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
            let (h, w) = (in_shape[1], in_shape[2]);
            let (oh, ow) = (out_shape[1], out_shape[2]);
            let wd = c.weight.data();
            let mut rows = Vec::with_capacity(oc * oh * ow);
            let mut bias = Vec::with_capacity(oc * oh * ow);
            for o in 0..oc {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut row = Vec::new();
                        for ci in 0..ic {
                            for ky in 0..kh {
                                let iy = (y * c.stride.0 + ky) as isize - c.padding.0 as isize;
                                if iy < 0 || iy as usize >= h {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let ix = (x * c.stride.1 + kx) as isize - c.padding.1 as isize;
                                    if ix < 0 || ix as usize >= w {
                                        continue;
                                    }
                                    let wv = wd[((o * ic + ci) * kh + ky) * kw + kx];
                                    if wv != 0.0 {
                                        row.push((
                                            (ci * h + iy as usize) * w + ix as usize,
                                            f64::from(wv),
                                        ));
                                    }
                                }
                            }
                        }
                        row.sort_by_key(|t| t.0);
                        rows.push(row);
                        bias.push(f64::from(c.bias[o]));
                    }
                }
            }
            (rows, bias)
        }
        Layer::AvgPool2d(p) => {
            let (ch, h, w) = (in_shape[0], in_shape[1], in_shape[2]);
            let (oh, ow) = (out_shape[1], out_shape[2]);
            let inv = 1.0 / (p.kernel.0 * p.kernel.1) as f64;
            let mut rows = Vec::with_capacity(ch * oh * ow);
            for c in 0..ch {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut row = Vec::new();
                        for ky in 0..p.kernel.0 {
                            let iy = (y * p.stride.0 + ky) as isize - p.padding.0 as isize;
                            if iy < 0 || iy as usize >= h {
                                continue;
                            }
                            for kx in 0..p.kernel.1 {
                                let ix = (x * p.stride.1 + kx) as isize - p.padding.1 as isize;
                                if ix < 0 || ix as usize >= w {
                                    continue;
                                }
                                row.push(((c * h + iy as usize) * w + ix as usize, inv));
                            }
                        }
                        row.sort_by_key(|t| t.0);
                        rows.push(row);
                    }
                }
            }
            let n = rows.len();
            (rows, vec![0.0; n])
        }
        Layer::BatchNorm(b) => {
            let n: usize = in_shape.iter().product();
            let per = n / b.gamma.len().max(1);
            let mut rows = Vec::with_capacity(n);
            let mut bias = Vec::with_capacity(n);
            for i in 0..n {
                let c = (i / per.max(1)).min(b.gamma.len().saturating_sub(1));
                let (g, h) = b.affine(c);
                rows.push(if g != 0.0 { vec![(i, g)] } else { vec![] });
                bias.push(h);
            }
            (rows, bias)
        }
        _ => (Vec::new(), Vec::new()),
    }
}
