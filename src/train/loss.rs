//! Losses: softmax cross-entropy, mean squared error, and distillation
//! (KL divergence at a temperature against a teacher's logits, mixed with
//! cross-entropy). Each returns the mean loss over the batch and its
//! gradient with respect to the network output.

/// Which loss to minimise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy over the logits, mean over the batch.
    CrossEntropy,
    /// Mean squared error, mean over every output element.
    Mse,
}

/// Row-wise softmax of `z / t` in f64.
fn softmax_row(z: &[f32], t: f64, out: &mut [f64]) {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
    let mut s = 0.0;
    for (o, v) in out.iter_mut().zip(z) {
        *o = ((f64::from(*v) - f64::from(m)) / t).exp();
        s += *o;
    }
    out.iter_mut().for_each(|o| *o /= s);
}

/// Softmax cross-entropy; `logits` is `[N, K]`.
pub(crate) fn cross_entropy(logits: &[f32], labels: &[usize], k: usize) -> (f32, Vec<f32>) {
    let n = labels.len();
    let mut grad = vec![0.0f32; logits.len()];
    let mut p = vec![0.0f64; k];
    let mut loss = 0.0f64;
    for (i, (row, &y)) in logits.chunks_exact(k).zip(labels).enumerate() {
        softmax_row(row, 1.0, &mut p);
        loss -= p[y].max(1e-300).ln();
        for (j, pj) in p.iter().enumerate() {
            let t = if j == y { 1.0 } else { 0.0 };
            grad[i * k + j] = ((pj - t) / n as f64) as f32;
        }
    }
    ((loss / n.max(1) as f64) as f32, grad)
}

/// Mean squared error over all elements.
pub(crate) fn mse(out: &[f32], target: &[f32]) -> (f32, Vec<f32>) {
    let m = out.len().max(1) as f64;
    let mut loss = 0.0f64;
    let grad = out
        .iter()
        .zip(target)
        .map(|(o, t)| {
            let d = f64::from(*o) - f64::from(*t);
            loss += d * d;
            (2.0 * d / m) as f32
        })
        .collect();
    ((loss / m) as f32, grad)
}

/// Distillation: `alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) +
/// (1 - alpha) * CE(s, labels)`, mean over the batch.
pub(crate) fn distillation(
    logits: &[f32],
    teacher: &[f32],
    labels: &[usize],
    k: usize,
    temperature: f32,
    alpha: f32,
) -> (f32, Vec<f32>) {
    let n = labels.len();
    let (ce, mut grad) = cross_entropy(logits, labels, k);
    let t = f64::from(temperature);
    let a = f64::from(alpha);
    let mut ps = vec![0.0f64; k];
    let mut pt = vec![0.0f64; k];
    let mut kl = 0.0f64;
    for (i, (s, tl)) in logits
        .chunks_exact(k)
        .zip(teacher.chunks_exact(k))
        .enumerate()
    {
        softmax_row(s, t, &mut ps);
        softmax_row(tl, t, &mut pt);
        for j in 0..k {
            if pt[j] > 0.0 {
                kl += pt[j] * (pt[j].ln() - ps[j].max(1e-300).ln());
            }
            let g = &mut grad[i * k + j];
            *g = ((1.0 - a) * f64::from(*g) + a * t * (ps[j] - pt[j]) / n as f64) as f32;
        }
    }
    let kl = kl / n.max(1) as f64;
    (((1.0 - a) * f64::from(ce) + a * t * t * kl) as f32, grad)
}
