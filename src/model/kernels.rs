//! Hand-written compute kernels shared by the plaintext forward pass and the
//! training engine: a safe strided `sgemm` (nalgebra views over
//! `matrixmultiply`), im2col / col2im, pooling. All buffers are row-major.
//!
//! Callers check shapes before calling; the kernels index slices and would
//! only panic on an internal bug, never on user input.

use nalgebra::{DMatrixView, DMatrixViewMut};

/// A matrix operand: row-major data of a `[rows, cols]` matrix, optionally
/// used transposed (the transposition is a change of strides, not a copy).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    /// Row-major storage of the stored (untransposed) matrix.
    pub data: &'a [f32],
    /// Rows of the stored matrix.
    pub rows: usize,
    /// Columns of the stored matrix.
    pub cols: usize,
    /// Use the transpose.
    pub t: bool,
}

impl<'a> Mat<'a> {
    /// A stored `[rows, cols]` matrix, used as is.
    pub fn n(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            t: false,
        }
    }

    /// A stored `[rows, cols]` matrix, used transposed (`[cols, rows]`).
    pub fn t(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            t: true,
        }
    }

    fn shape(&self) -> (usize, usize) {
        if self.t {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (row stride, column stride) of the used (possibly transposed) matrix.
    fn strides(&self) -> (usize, usize) {
        if self.t {
            (1, self.cols)
        } else {
            (self.cols, 1)
        }
    }

    fn view(&self) -> DMatrixView<'a, f32, nalgebra::Dyn, nalgebra::Dyn> {
        let (r, c) = self.shape();
        // row-major [rows, cols]: element (i, j) at i * cols + j.
        let (rs, cs) = self.strides();
        DMatrixView::from_slice_with_strides(&self.data[..self.rows * self.cols], r, c, rs, cs)
    }
}

/// Below this size in any dimension, products use plain loops.
const SMALL: usize = 5;

/// `c = a * b + beta * c` where `c` is row-major `[m, n]`.
///
/// Dispatches to `matrixmultiply::sgemm` (through nalgebra) with strides, so
/// transposed operands are never copied.
pub(crate) fn gemm(a: Mat<'_>, b: Mat<'_>, beta: f32, c: &mut [f32]) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    debug_assert_eq!(k, k2);
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if beta == 0.0 {
            c.fill(0.0);
        } else {
            c.iter_mut().for_each(|v| *v *= beta);
        }
        return;
    }
    if m <= SMALL || n <= SMALL || k <= SMALL {
        // nalgebra only dispatches to matrixmultiply above 5 in every
        // dimension; its own fallback mishandles strided views, so small
        // products are done here.
        let (ars, acs) = a.strides();
        let (brs, bcs) = b.strides();
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for l in 0..k {
                    acc += a.data[i * ars + l * acs] * b.data[l * brs + j * bcs];
                }
                let cij = &mut c[i * n + j];
                *cij = if beta == 0.0 { acc } else { acc + beta * *cij };
            }
        }
        return;
    }
    let mut cv = DMatrixViewMut::from_slice_with_strides_mut(c, m, n, n, 1);
    cv.gemm(1.0, &a.view(), &b.view(), beta);
}

/// Geometry of a sliding-window operation over one `[C, H, W]` sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Window {
    /// Geometry for a validated layer (`input` = `[C, H, W]`).
    pub fn new(
        input: &[usize],
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Window {
        let (c, h, w) = (input[0], input[1], input[2]);
        let oh = (h + 2 * padding.0 - kernel.0) / stride.0 + 1;
        let ow = (w + 2 * padding.1 - kernel.1) / stride.1 + 1;
        Window {
            c,
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            sh: stride.0,
            sw: stride.1,
            ph: padding.0,
            pw: padding.1,
            oh,
            ow,
        }
    }

    /// Output pixels per channel.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the im2col matrix (`C * kh * kw`).
    pub fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Input elements per sample.
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The input row for output row `o` and kernel row `k`, if inside.
    #[inline]
    fn in_row(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.sh + k)
            .checked_sub(self.ph)
            .filter(|&i| i < self.h)
    }

    /// The input column for output column `o` and kernel column `k`, if inside.
    #[inline]
    fn in_col(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.sw + k)
            .checked_sub(self.pw)
            .filter(|&i| i < self.w)
    }
}

/// Output columns `lo..hi` whose input column (for kernel column `kj`) is
/// inside the image.
#[inline]
fn valid_cols(g: &Window, kj: usize) -> (usize, usize) {
    let lo = (g.pw.saturating_sub(kj)).div_ceil(g.sw).min(g.ow);
    let hi = if g.w + g.pw > kj {
        ((g.w + g.pw - kj - 1) / g.sw + 1).min(g.ow)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// Writes the im2col matrix of `n` samples `x` (`[N, C, H, W]`) into `cols`
/// as `[C*kh*kw, N*P]` row-major (row `(c*kh + ki)*kw + kj`, column
/// `s*P + oh*OW + ow`), every element once, in order.
pub(crate) fn im2col(g: &Window, n: usize, x: &[f32], cols: &mut [f32]) {
    let (in_len, p, hw) = (g.in_len(), g.p(), g.h * g.w);
    let ld = n * p;
    if ld == 0 {
        return;
    }
    for c in 0..g.c {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let (lo, hi) = valid_cols(g, kj);
                let start = (lo * g.sw + kj).saturating_sub(g.pw);
                let dst_row = &mut cols[row * ld..(row + 1) * ld];
                if g.sw == 1 && g.ph == 0 && g.pw == 0 {
                    // no padding, unit column stride: output row oh of this
                    // im2col row is input row oh*sh + ki from column kj
                    let first = ki * g.w + kj;
                    for (s, dst) in dst_row.chunks_exact_mut(p).enumerate() {
                        let plane = &x[s * in_len + c * hw..s * in_len + (c + 1) * hw];
                        for (oh, d) in dst.chunks_exact_mut(g.ow).enumerate() {
                            let at = first + oh * g.sh * g.w;
                            copy_row(d, &plane[at..at + g.ow]);
                        }
                    }
                    continue;
                }
                for (s, dst) in dst_row.chunks_exact_mut(p).enumerate() {
                    let plane = &x[s * in_len + c * hw..s * in_len + (c + 1) * hw];
                    for (oh, d) in dst.chunks_exact_mut(g.ow).enumerate() {
                        let Some(ih) = g.in_row(oh, ki) else {
                            d.fill(0.0);
                            continue;
                        };
                        let src = &plane[ih * g.w..(ih + 1) * g.w];
                        if lo > 0 {
                            d[..lo].fill(0.0);
                        }
                        if hi < g.ow {
                            d[hi..].fill(0.0);
                        }
                        if hi > lo {
                            if g.sw == 1 {
                                copy_row(&mut d[lo..hi], &src[start..start + (hi - lo)]);
                            } else {
                                d[lo..hi]
                                    .iter_mut()
                                    .zip(src[start..].iter().step_by(g.sw))
                                    .for_each(|(d, v)| *d = *v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst = src` for short rows (10-30 elements in LeNet), inlined and
/// vectorised: blocks of 8 with a last block that overlaps the previous
/// one, so no scalar remainder loop. A plain copy loop is turned into a
/// `memcpy` call by the compiler, and hundreds of thousands of short calls
/// per training step cost more than the copies; adding `+0.0` (exact for
/// every value except that `-0.0` becomes `+0.0`; a product with a zero is
/// a zero either way) keeps the copies inline.
#[inline]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let len = dst.len().min(src.len());
    if len < 8 {
        for (d, v) in dst[..len].iter_mut().zip(&src[..len]) {
            *d = *v + 0.0;
        }
        return;
    }
    let mut i = 0;
    loop {
        let at = i.min(len - 8);
        let d: &mut [f32; 8] = match (&mut dst[at..at + 8]).try_into() {
            Ok(d) => d,
            Err(_) => return,
        };
        let v: &[f32; 8] = match (&src[at..at + 8]).try_into() {
            Ok(v) => v,
            Err(_) => return,
        };
        *d = v.map(|x| x + 0.0);
        if at + 8 >= len {
            return;
        }
        i += 8;
    }
}

/// Adds the im2col-shaped gradient in columns `off .. off + P` of `dcols`
/// back onto one sample's input gradient `dx` (`[C, H, W]`).
pub(crate) fn col2im(g: &Window, dcols: &[f32], ld: usize, off: usize, dx: &mut [f32]) {
    let p = g.p();
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &dcols[row * ld + off..row * ld + off + p];
                let (lo, hi) = valid_cols(g, kj);
                if hi <= lo {
                    continue;
                }
                let start = lo * g.sw + kj - g.pw;
                if g.sw == 1 && g.sh == 1 && g.ph == 0 {
                    // every output row oh maps to input row oh + ki
                    let dst = &mut plane[ki * g.w + start..];
                    for (d, sr) in dst.chunks_mut(g.w).zip(src.chunks_exact(g.ow)) {
                        d.iter_mut().zip(&sr[lo..hi]).for_each(|(d, v)| *d += *v);
                    }
                    continue;
                }
                for oh in 0..g.oh {
                    let Some(ih) = g.in_row(oh, ki) else {
                        continue;
                    };
                    let s = &src[oh * g.ow + lo..oh * g.ow + hi];
                    let d = &mut plane[ih * g.w + start..(ih + 1) * g.w];
                    if g.sw == 1 {
                        d.iter_mut().zip(s).for_each(|(d, v)| *d += *v);
                    } else {
                        d.iter_mut()
                            .step_by(g.sw)
                            .zip(s)
                            .for_each(|(d, v)| *d += *v);
                    }
                }
            }
        }
    }
}

/// The sum of `v` in eight interleaved partial sums (vectorised; a fixed
/// order, so deterministic), added pairwise at the end.
pub(crate) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += *x;
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)) + rest
}

/// Whether the window covers the whole (unpadded) input once: the
/// convolution is then a dense layer over the flattened sample (no im2col).
fn is_dense(g: &Window) -> bool {
    g.oh == 1 && g.ow == 1 && g.kh == g.h && g.kw == g.w && g.ph == 0 && g.pw == 0
}

/// Samples per convolution product: one when a sample has enough output
/// pixels to fill the product's columns (the product then reads and writes
/// NCHW directly), else enough samples for about 400 columns (LeNet's
/// second convolution: 4 samples of 100 pixels; measured faster than 1 or
/// 8). Working a few samples at a time keeps the im2col matrix in cache.
pub(crate) fn conv_chunk(p: usize, n: usize) -> usize {
    const COLS: usize = 400;
    if p >= COLS {
        1
    } else {
        COLS.div_ceil(p.max(1)).clamp(1, n.max(1))
    }
}

/// Batched convolution: `x` is `[N, C, H, W]`, `weight` `[O, C*kh*kw]`;
/// returns `y` as `[N, O, P]`. The im2col matrix is built a few samples at
/// a time in a per-thread scratch buffer (it stays in cache); the backward
/// pass rebuilds it from `x` ([`conv_backward`]).
pub(crate) fn conv_forward(
    g: &Window,
    n: usize,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let (ckk, p, o, in_len) = (g.ckk(), g.p(), bias.len(), g.in_len());
    // the bias first; the products accumulate onto it (beta = 1)
    let mut y = Vec::with_capacity(n * o * p);
    for _ in 0..n {
        for b in bias {
            y.extend(std::iter::repeat_n(*b, p));
        }
    }
    if n == 0 || p == 0 || o == 0 {
        return y;
    }
    if is_dense(g) {
        gemm(Mat::n(x, n, ckk), Mat::t(weight, o, ckk), 1.0, &mut y);
        return y;
    }
    let cs = conv_chunk(p, n);
    with_scratch(&SCRATCH_A, ckk * cs * p, |cols| {
        with_scratch(&SCRATCH_C, o * cs * p, |yt| {
            for s0 in (0..n).step_by(cs) {
                let m = cs.min(n - s0);
                let ld = m * p;
                let cols = &mut cols[..ckk * ld];
                im2col(g, m, &x[s0 * in_len..(s0 + m) * in_len], cols);
                let yc = &mut y[s0 * o * p..(s0 + m) * o * p];
                if m == 1 {
                    gemm(Mat::n(weight, o, ckk), Mat::n(cols, ckk, ld), 1.0, yc);
                    continue;
                }
                let yt = &mut yt[..o * ld];
                gemm(Mat::n(weight, o, ckk), Mat::n(cols, ckk, ld), 0.0, yt);
                // [O, m*P] -> [m, O, P], onto the bias
                for (j, ys) in yc.chunks_exact_mut(o * p).enumerate() {
                    for (oc, row) in ys.chunks_exact_mut(p).enumerate() {
                        let src = &yt[oc * ld + j * p..oc * ld + (j + 1) * p];
                        row.iter_mut().zip(src).for_each(|(v, t)| *v += *t);
                    }
                }
            }
        })
    });
    y
}

/// Backward pass of [`conv_forward`] over `n` samples: `x` is the layer's
/// input `[N, C, H, W]`, `dy` the output gradient `[N, O, P]`. Writes the
/// weight gradient `[O, C*kh*kw]` and the bias gradient `[O]` when `params`
/// is given, and returns the input gradient when `want_dx`.
pub(crate) fn conv_backward(
    g: &Window,
    n: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    params: Option<(&mut [f32], &mut [f32])>,
    want_dx: bool,
) -> Option<Vec<f32>> {
    let (ckk, p, in_len) = (g.ckk(), g.p(), g.in_len());
    let o = weight.len().checked_div(ckk).unwrap_or(0);
    let mut dx = want_dx.then(|| vec![0.0f32; n * in_len]);
    let mut dw = None;
    if let Some((w, b)) = params {
        b.fill(0.0);
        if p > 0 && o > 0 {
            for ys in dy.chunks_exact(o * p) {
                for (db, row) in b.iter_mut().zip(ys.chunks_exact(p)) {
                    *db += sum(row);
                }
            }
        }
        w.fill(0.0);
        dw = Some(w);
    }
    if n == 0 || p == 0 || o == 0 {
        return dx;
    }
    if is_dense(g) {
        if let Some(w) = dw {
            gemm(Mat::t(dy, n, o), Mat::n(x, n, ckk), 0.0, w);
        }
        if let Some(d) = dx.as_mut() {
            gemm(Mat::n(dy, n, o), Mat::n(weight, o, ckk), 0.0, d);
        }
        return dx;
    }
    let cs = conv_chunk(p, n);
    with_scratch(&SCRATCH_A, ckk * cs * p, |cols| {
        with_scratch(&SCRATCH_B, ckk * cs * p, |dcols| {
            with_scratch(&SCRATCH_C, o * cs * p, |dyt| {
                for (ci, s0) in (0..n).step_by(cs).enumerate() {
                    let m = cs.min(n - s0);
                    let ld = m * p;
                    let dyc = &dy[s0 * o * p..(s0 + m) * o * p];
                    // the chunk's output gradient as [O, m*P]
                    let dyc: &[f32] = if m == 1 {
                        dyc
                    } else {
                        let t = &mut dyt[..o * ld];
                        for (j, ys) in dyc.chunks_exact(o * p).enumerate() {
                            for (oc, row) in ys.chunks_exact(p).enumerate() {
                                copy_row(&mut t[oc * ld + j * p..oc * ld + (j + 1) * p], row);
                            }
                        }
                        t
                    };
                    if let Some(w) = dw.as_deref_mut() {
                        let cols = &mut cols[..ckk * ld];
                        im2col(g, m, &x[s0 * in_len..(s0 + m) * in_len], cols);
                        let beta = if ci == 0 { 0.0 } else { 1.0 };
                        gemm(Mat::n(dyc, o, ld), Mat::t(cols, ckk, ld), beta, w);
                    }
                    if let Some(d) = dx.as_mut() {
                        let dcols = &mut dcols[..ckk * ld];
                        gemm(Mat::t(weight, o, ckk), Mat::n(dyc, o, ld), 0.0, dcols);
                        for j in 0..m {
                            let ds = &mut d[(s0 + j) * in_len..(s0 + j + 1) * in_len];
                            col2im(g, dcols, ld, j * p, ds);
                        }
                    }
                }
            })
        })
    });
    dx
}

thread_local! {
    /// Per-thread scratch for the convolution's im2col matrix `[C*kh*kw, N*P]`.
    pub(crate) static SCRATCH_A: std::cell::RefCell<Vec<f32>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread scratch for the convolution's `[C*kh*kw, N*P]` gradient.
    pub(crate) static SCRATCH_B: std::cell::RefCell<Vec<f32>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread scratch for a convolution output (gradient) as `[O, N*P]`.
    pub(crate) static SCRATCH_C: std::cell::RefCell<Vec<f32>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a per-thread scratch buffer of `len` elements whose contents
/// are unspecified (`f` must overwrite what it reads, e.g. a `beta = 0`
/// gemm). Reusing the buffer saves an allocation and a zero-fill per call.
pub(crate) fn with_scratch<R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // re-entered (not expected): use a fresh buffer
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Dense layer: `x` `[N, in]`, `weight` `[out, in]`; returns `[N, out]`.
pub(crate) fn dense_forward(n: usize, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let out = bias.len();
    let inp = weight.len().checked_div(out).unwrap_or(0);
    let mut y = vec![0.0f32; n * out];
    gemm(Mat::n(x, n, inp), Mat::t(weight, out, inp), 0.0, &mut y);
    for row in y.chunks_exact_mut(out.max(1)) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += *b;
        }
    }
    y
}

/// Evaluates `sum_i a_i x^i` (Horner).
#[inline]
pub(crate) fn poly_eval(a: &[f32], x: f32) -> f32 {
    a.iter().rev().fold(0.0f32, |acc, c| acc * x + *c)
}

/// Derivative of `sum_i a_i x^i` at `x`.
#[inline]
pub(crate) fn poly_deriv(a: &[f32], x: f32) -> f32 {
    let mut acc = 0.0f32;
    for (i, c) in a.iter().enumerate().skip(1).rev() {
        acc = acc * x + *c * i as f32;
    }
    acc
}

/// Logistic sigmoid.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

mod pool;

pub(crate) use pool::{avgpool_backward, avgpool_forward, maxpool_forward};

#[cfg(test)]
mod tests;
