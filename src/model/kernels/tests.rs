use super::*;

fn naive_mm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for l in 0..k {
                c[i * n + j] += a[i * k + l] * b[l * n + j];
            }
        }
    }
    c
}

fn transpose(a: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = a[i * c + j];
        }
    }
    t
}

#[test]
fn gemm_with_transposes_matches_naive() {
    for &(m, k, n) in &[(3, 4, 5), (9, 17, 11), (1, 7, 20), (16, 30, 8)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive_mm(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (aa, bb) in [
            (Mat::n(&a, m, k), Mat::n(&b, k, n)),
            (Mat::t(&at, k, m), Mat::n(&b, k, n)),
            (Mat::n(&a, m, k), Mat::t(&bt, n, k)),
            (Mat::t(&at, k, m), Mat::t(&bt, n, k)),
        ] {
            let mut c = vec![f32::NAN; m * n];
            gemm(aa, bb, 0.0, &mut c);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
            gemm(aa, bb, 1.0, &mut c);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn im2col_matches_direct_indexing() {
    for &(c, h, w, k, s, p) in &[
        (2, 5, 6, 3, 1, 0),
        (1, 7, 7, 3, 2, 1),
        (3, 6, 5, 2, 3, 2),
        (1, 4, 4, 4, 1, 3),
        (2, 9, 7, 3, 2, 0),
        (1, 3, 3, 2, 4, 5),
    ] {
        // also a row stride of 2 with unit column stride (the fast path)
        for sh in [s, 2] {
            let g = Window::new(&[c, h, w], (k, k), (sh, s), (p, p));
            let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
            let mut cols = vec![f32::NAN; g.ckk() * g.p()];
            im2col(&g, 1, &x, &mut cols);
            assert_eq!(cols.len(), g.ckk() * g.p());
            for ci in 0..c {
                for ki in 0..k {
                    for kj in 0..k {
                        let row = (ci * k + ki) * k + kj;
                        for oh in 0..g.oh {
                            for ow in 0..g.ow {
                                let ih = (oh * sh + ki) as isize - p as isize;
                                let iw = (ow * s + kj) as isize - p as isize;
                                let want =
                                    if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                        0.0
                                    } else {
                                        x[ci * h * w + ih as usize * w + iw as usize]
                                    };
                                assert_eq!(cols[row * g.p() + oh * g.ow + ow], want);
                            }
                        }
                    }
                }
            }
            // col2im is the adjoint of im2col: <im2col(x), d> == <x, col2im(d)>.
            let d: Vec<f32> = (0..cols.len()).map(|i| ((i * 7) % 5) as f32).collect();
            let lhs: f32 = cols.iter().zip(&d).map(|(a, b)| a * b).sum();
            let mut dx = vec![0.0; x.len()];
            col2im(&g, &d, g.p(), 0, &mut dx);
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-2 * lhs.abs().max(1.0));
        }
    }
}

#[test]
fn maxpool_paths_match_naive() {
    for &(h, w, k, st, pd) in &[
        (8, 6, 2, 2, 0),
        (7, 9, 2, 2, 0),
        (7, 7, 3, 2, 0),
        (6, 6, 3, 1, 1),
        (5, 4, 2, 3, 1),
    ] {
        let c = 2;
        let n = 2;
        let g = Window::new(&[c, h, w], (k, k), (st, st), (pd, pd));
        let x: Vec<f32> = (0..n * c * h * w)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        let mut am = Vec::new();
        let y = maxpool_forward(&g, n, &x, Some(&mut am));
        for s in 0..n {
            for ci in 0..c {
                for oh in 0..g.oh {
                    for ow in 0..g.ow {
                        let mut best = f32::NEG_INFINITY;
                        for ki in 0..k {
                            for kj in 0..k {
                                let ih = (oh * st + ki) as isize - pd as isize;
                                let iw = (ow * st + kj) as isize - pd as isize;
                                if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < w {
                                    best = best
                                        .max(x[((s * c + ci) * h + ih as usize) * w + iw as usize]);
                                }
                            }
                        }
                        let oi = ((s * c + ci) * g.oh + oh) * g.ow + ow;
                        assert_eq!(y[oi], best);
                        assert_eq!(x[s * c * h * w + am[oi] as usize], best);
                    }
                }
            }
        }
    }
}

#[test]
fn poly_helpers() {
    let a = [1.0, -2.0, 0.5, 3.0];
    let x = 1.5f32;
    assert!((poly_eval(&a, x) - (1.0 - 3.0 + 0.5 * 2.25 + 3.0 * 3.375)).abs() < 1e-5);
    assert!((poly_deriv(&a, x) - (-2.0 + 1.5 + 9.0 * 2.25)).abs() < 1e-5);
    assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    assert!(sigmoid(-100.0) >= 0.0 && sigmoid(100.0) <= 1.0);
}
