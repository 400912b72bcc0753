//! Least-squares polynomial fits of an activation on observed inputs.
//!
//! Minimises `sum_j (p(x_j) - f(x_j))^2` over the observed inputs `x_j`,
//! so the fit is best where the layer's inputs actually fall. The variable
//! is scaled to `[-1, 1]` first (normal equations on raw powers are badly
//! conditioned), a tiny ridge keeps the system regular when inputs are
//! concentrated, and the coefficients are mapped back to raw powers.

/// Coefficients `a_0..=a_degree` (constant first) of the least-squares fit of
/// `f` on `xs`. With no usable inputs, the fit is taken on `[-1, 1]`.
pub fn least_squares(f: fn(f64) -> f64, xs: &[f64], degree: usize) -> Vec<f64> {
    let finite: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let sample: Vec<f64> = if finite.len() < degree + 1 {
        (0..=64).map(|i| -1.0 + 2.0 * f64::from(i) / 64.0).collect()
    } else {
        finite
    };
    let r = sample.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-6);
    let n = degree + 1;
    // Normal equations A c = b in the scaled variable u = x / r.
    let mut a = vec![vec![0.0f64; n]; n];
    let mut b = vec![0.0f64; n];
    for &x in &sample {
        let u = x / r;
        let mut pw = vec![1.0f64; 2 * n - 1];
        for k in 1..pw.len() {
            pw[k] = pw[k - 1] * u;
        }
        let y = f(x);
        for i in 0..n {
            b[i] += pw[i] * y;
            for j in 0..n {
                a[i][j] += pw[i + j];
            }
        }
    }
    let ridge = 1e-9 * sample.len() as f64;
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += ridge;
    }
    let c = solve(a, b);
    c.iter()
        .enumerate()
        .map(|(i, ci)| ci / r.powi(i as i32))
        .collect()
}

/// Gaussian elimination with partial pivoting; a singular column gives 0.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-300 {
            continue;
        }
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / p;
            for (x, pv) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * pv;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = if a[row][row].abs() < 1e-300 {
            0.0
        } else {
            (b[row] - s) / a[row][row]
        };
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_polynomial_exactly() {
        let xs: Vec<f64> = (0..200)
            .map(|i| -3.0 + 6.0 * f64::from(i) / 199.0)
            .collect();
        let c = least_squares(|x| 0.5 - 2.0 * x + 0.25 * x * x, &xs, 2);
        assert!(
            (c[0] - 0.5).abs() < 1e-6 && (c[1] + 2.0).abs() < 1e-6 && (c[2] - 0.25).abs() < 1e-6,
            "{c:?}"
        );
    }

    #[test]
    fn relu_fit_is_close_on_its_range() {
        let xs: Vec<f64> = (0..400)
            .map(|i| -4.0 + 8.0 * f64::from(i) / 399.0)
            .collect();
        let c = least_squares(|x| x.max(0.0), &xs, 2);
        let p = |x: f64| c[0] + c[1] * x + c[2] * x * x;
        let worst = xs
            .iter()
            .map(|&x| (p(x) - x.max(0.0)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.6, "worst error {worst}");
        assert!(c[2] > 0.0 && (c[1] - 0.5).abs() < 0.05, "{c:?}");
    }
}
