//! Max and average pooling over `[N, C, H, W]` batches, forward and (for
//! the average) backward; the max-pooling gradient scatters through the
//! `argmax` indices in the training engine.

use super::Window;

/// Max pooling over `[N, C, H, W]` (padding never wins). When `argmax` is
/// given it receives, per output, the flat index of the winner inside its
/// sample (`c*H*W + ih*W + iw`), or `u32::MAX` for an all-padding window.
pub(crate) fn maxpool_forward(
    g: &Window,
    n: usize,
    x: &[f32],
    mut argmax: Option<&mut Vec<u32>>,
) -> Vec<f32> {
    let (p, in_len) = (g.p(), g.in_len());
    let mut y = vec![0.0f32; n * g.c * p];
    if let Some(a) = argmax.as_deref_mut() {
        a.clear();
        a.resize(n * g.c * p, u32::MAX);
    }
    for s in 0..n {
        let xs = &x[s * in_len..(s + 1) * in_len];
        for c in 0..g.c {
            let plane = &xs[c * g.h * g.w..(c + 1) * g.h * g.w];
            if (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (2, 2, 2, 2, 0, 0) {
                // the common 2x2 / stride 2 case: a pair of input rows at a
                // time, selects instead of branches (ties keep the first)
                let base = (c * g.h * g.w) as u32;
                for oh in 0..g.oh {
                    let (i0, i1) = (2 * oh * g.w, (2 * oh + 1) * g.w);
                    let r0 = &plane[i0..i0 + 2 * g.ow];
                    let r1 = &plane[i1..i1 + 2 * g.ow];
                    let row = (s * g.c + c) * p + oh * g.ow;
                    let yr = &mut y[row..row + g.ow];
                    let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
                    match argmax.as_deref_mut() {
                        Some(am) => {
                            let ar = &mut am[row..row + g.ow];
                            for (ow, ((yv, av), (t, b))) in
                                yr.iter_mut().zip(ar.iter_mut()).zip(pairs).enumerate()
                            {
                                let (top, ti) = if t[1] > t[0] {
                                    (t[1], i0 + 2 * ow + 1)
                                } else {
                                    (t[0], i0 + 2 * ow)
                                };
                                let (bot, bi) = if b[1] > b[0] {
                                    (b[1], i1 + 2 * ow + 1)
                                } else {
                                    (b[0], i1 + 2 * ow)
                                };
                                let (v, at) = if bot > top { (bot, bi) } else { (top, ti) };
                                *yv = v;
                                *av = base + at as u32;
                            }
                        }
                        None => {
                            for (yv, (t, b)) in yr.iter_mut().zip(pairs) {
                                let top = if t[1] > t[0] { t[1] } else { t[0] };
                                let bot = if b[1] > b[0] { b[1] } else { b[0] };
                                *yv = if bot > top { bot } else { top };
                            }
                        }
                    }
                }
                continue;
            }
            if g.ph == 0 && g.pw == 0 {
                // no padding: every window is inside the image
                for oh in 0..g.oh {
                    for ow in 0..g.ow {
                        let base = oh * g.sh * g.w + ow * g.sw;
                        let mut at = base;
                        for ki in 0..g.kh {
                            let r = base + ki * g.w;
                            for (kj, v) in plane[r..r + g.kw].iter().enumerate() {
                                if *v > plane[at] {
                                    at = r + kj;
                                }
                            }
                        }
                        let oi = (s * g.c + c) * p + oh * g.ow + ow;
                        y[oi] = plane[at];
                        if let Some(a) = argmax.as_deref_mut() {
                            a[oi] = (c * g.h * g.w + at) as u32;
                        }
                    }
                }
                continue;
            }
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    let mut best = f32::NEG_INFINITY;
                    let mut at = u32::MAX;
                    for ki in 0..g.kh {
                        let Some(ih) = g.in_row(oh, ki) else { continue };
                        for kj in 0..g.kw {
                            let Some(iw) = g.in_col(ow, kj) else { continue };
                            let v = plane[ih * g.w + iw];
                            if v > best || at == u32::MAX {
                                best = v;
                                at = (c * g.h * g.w + ih * g.w + iw) as u32;
                            }
                        }
                    }
                    let oi = (s * g.c + c) * p + oh * g.ow + ow;
                    y[oi] = if at == u32::MAX { 0.0 } else { best };
                    if let Some(a) = argmax.as_deref_mut() {
                        a[oi] = at;
                    }
                }
            }
        }
    }
    y
}

/// Average pooling over `[N, C, H, W]`, dividing by the full window
/// (padding counted as zeros).
pub(crate) fn avgpool_forward(g: &Window, n: usize, x: &[f32]) -> Vec<f32> {
    let (p, in_len) = (g.p(), g.in_len());
    let inv = 1.0 / (g.kh * g.kw) as f32;
    let mut y = vec![0.0f32; n * g.c * p];
    for s in 0..n {
        let xs = &x[s * in_len..(s + 1) * in_len];
        for c in 0..g.c {
            let plane = &xs[c * g.h * g.w..(c + 1) * g.h * g.w];
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    let mut acc = 0.0f32;
                    for ki in 0..g.kh {
                        let Some(ih) = g.in_row(oh, ki) else { continue };
                        for kj in 0..g.kw {
                            if let Some(iw) = g.in_col(ow, kj) {
                                acc += plane[ih * g.w + iw];
                            }
                        }
                    }
                    y[(s * g.c + c) * p + oh * g.ow + ow] = acc * inv;
                }
            }
        }
    }
    y
}

/// Gradient of average pooling: spreads `dy` back over the windows.
pub(crate) fn avgpool_backward(g: &Window, n: usize, dy: &[f32]) -> Vec<f32> {
    let (p, in_len) = (g.p(), g.in_len());
    let inv = 1.0 / (g.kh * g.kw) as f32;
    let mut dx = vec![0.0f32; n * in_len];
    for s in 0..n {
        let dxs = &mut dx[s * in_len..(s + 1) * in_len];
        for c in 0..g.c {
            let plane = &mut dxs[c * g.h * g.w..(c + 1) * g.h * g.w];
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    let v = dy[(s * g.c + c) * p + oh * g.ow + ow] * inv;
                    for ki in 0..g.kh {
                        let Some(ih) = g.in_row(oh, ki) else { continue };
                        for kj in 0..g.kw {
                            if let Some(iw) = g.in_col(ow, kj) {
                                plane[ih * g.w + iw] += v;
                            }
                        }
                    }
                }
            }
        }
    }
    dx
}
