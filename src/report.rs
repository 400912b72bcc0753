//! Reports: the figures a run produces, as a text table, JSON, and SVG
//! line charts (accuracy, HE operations and latency against sparsity).
//!
//! The SVG writer is self-contained (no font or image libraries needed), so
//! reports render on any machine and in any browser.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::he::{OpCounts, OpKind};

/// One evaluated network (dense or pruned at one target).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// A short label, e.g. `dense` or `90%`.
    pub label: String,
    /// Target sparsity asked of the pruner, if pruned.
    pub target: Option<f64>,
    /// Achieved sparsity, `1 - params after / params before` (MOFHEI's definition).
    pub sparsity: f64,
    /// Units (neurons / filters) per prunable layer.
    pub units: Vec<usize>,
    /// Plaintext metric (accuracy, or MSE for autoencoders) on the test set.
    pub metric_plain: f64,
    /// The same metric on decrypted encrypted outputs, if run encrypted.
    pub metric_encrypted: Option<f64>,
    /// Fraction of samples whose encrypted prediction equals the plaintext one.
    pub agreement: Option<f64>,
    /// HE operation counts of one inference.
    pub counts: OpCounts,
    /// Wall time per layer, seconds.
    pub layer_seconds: Vec<(String, f64)>,
    /// Total encrypted inference time, seconds.
    pub seconds: f64,
    /// Peak resident memory during the encrypted inference, bytes.
    pub peak_rss_bytes: u64,
}

impl RunRow {
    /// Homomorphic operations (no encode/encrypt/decrypt).
    pub fn he_ops(&self) -> u64 {
        self.counts.homomorphic_total()
    }
}

/// A report over several runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was run (model, data, backend, parameters).
    pub title: String,
    /// The runs, in order.
    pub rows: Vec<RunRow>,
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A plain-text table of the runs.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.title);
        let _ = writeln!(
            s,
            "{:<10} {:>8} {:>18} {:>8} {:>8} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10}",
            "network",
            "sparsity",
            "units",
            "acc",
            "acc(HE)",
            "agree",
            "ct*pt/sc",
            "ct+ct",
            "ct*ct",
            "rot",
            "time s",
            "peak MB"
        );
        for r in &self.rows {
            let c = &r.counts;
            let units = r
                .units
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join("/");
            let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
            let _ = writeln!(
                s,
                "{:<10} {:>8.3} {:>18} {:>8.4} {:>8} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9.2} {:>10.0}",
                r.label,
                r.sparsity,
                units,
                r.metric_plain,
                opt(r.metric_encrypted),
                opt(r.agreement),
                c.get(OpKind::CtPtMul) + c.get(OpKind::CtScalarMul),
                c.get(OpKind::CtCtAdd),
                c.get(OpKind::CtCtMul),
                c.get(OpKind::Rotation),
                r.seconds,
                r.peak_rss_bytes as f64 / 1e6
            );
        }
        s
    }
}

/// One named series of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// An SVG line chart with axes, ticks, labels and a legend.
pub fn svg_line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h) = (640.0, 400.0);
    let (left, right, top, bottom) = (70.0, 150.0, 40.0, 50.0);
    let pts = series.iter().flat_map(|s| s.points.iter().copied());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if (x1 - x0).abs() < 1e-12 {
        x1 = x0 + 1.0;
    }
    if (y1 - y0).abs() < 1e-12 {
        y1 = y0 + 1.0;
    }
    let pad = 0.05 * (y1 - y0);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    let (ax0, ay0, ax1, ay1) = (left, h - bottom, w - right, top);
    let _ = write!(
        s,
        r#"<path d="M{ax0} {ay1} L{ax0} {ay0} L{ax1} {ay0}" stroke="black" fill="none"/>"#
    );
    for i in 0..=5 {
        let fx = x0 + (x1 - x0) * f64::from(i) / 5.0;
        let fy = y0 + (y1 - y0) * f64::from(i) / 5.0;
        let (tx, ty) = (px(fx), py(fy));
        let _ = write!(
            s,
            r#"<line x1="{tx}" y1="{ay0}" x2="{tx}" y2="{}" stroke="black"/>"#,
            ay0 + 5.0
        );
        let _ = write!(
            s,
            r#"<text x="{tx}" y="{}" text-anchor="middle">{}</text>"#,
            ay0 + 18.0,
            tick(fx)
        );
        let _ = write!(
            s,
            r##"<line x1="{ax0}" y1="{ty}" x2="{ax1}" y2="{ty}" stroke="#ddd"/>"##
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            ax0 - 6.0,
            ty + 4.0,
            tick(fy)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (ax0 + ax1) / 2.0,
        h - 12.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        (ay0 + ay1) / 2.0,
        (ay0 + ay1) / 2.0,
        escape(y_label)
    );
    for (k, ser) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let path: Vec<String> = ser
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .enumerate()
            .map(|(i, &(x, y))| {
                format!(
                    "{}{:.1} {:.1}",
                    if i == 0 { "M" } else { "L" },
                    px(x),
                    py(y)
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<path d="{}" stroke="{color}" stroke-width="2" fill="none"/>"#,
            path.join(" ")
        );
        for &(x, y) in ser
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
        {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                px(x),
                py(y)
            );
        }
        let ly = top + 10.0 + 18.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{color}"/>"#,
            ax1 + 12.0,
            ly - 10.0
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{ly}">{}</text>"#,
            ax1 + 30.0,
            escape(&ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The three standard charts of a sparsity sweep: metric, HE operations and
/// latency against sparsity. Returns `(file stem, svg)` pairs.
pub fn sweep_charts(report: &Report) -> Vec<(&'static str, String)> {
    let pts = |f: &dyn Fn(&RunRow) -> f64| -> Vec<(f64, f64)> {
        report.rows.iter().map(|r| (r.sparsity, f(r))).collect()
    };
    let mut metric = vec![Series {
        name: "plaintext".into(),
        points: pts(&|r| r.metric_plain),
    }];
    if report.rows.iter().all(|r| r.metric_encrypted.is_some()) {
        metric.push(Series {
            name: "encrypted".into(),
            points: pts(&|r| r.metric_encrypted.unwrap_or(f64::NAN)),
        });
    }
    vec![
        (
            "metric",
            svg_line_chart(
                &format!("{}: metric", report.title),
                "sparsity",
                "metric",
                &metric,
            ),
        ),
        (
            "he_ops",
            svg_line_chart(
                &format!("{}: HE operations", report.title),
                "sparsity",
                "operations per inference",
                &[Series {
                    name: "HE ops".into(),
                    points: pts(&|r| r.he_ops() as f64),
                }],
            ),
        ),
        (
            "latency",
            svg_line_chart(
                &format!("{}: latency", report.title),
                "sparsity",
                "seconds per batch",
                &[Series {
                    name: "latency".into(),
                    points: pts(&|r| r.seconds),
                }],
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::he::Level;

    #[test]
    fn table_json_and_svg() {
        let mut counts = OpCounts::default();
        counts.record(OpKind::CtScalarMul, Level(3), 100);
        counts.record(OpKind::CtCtAdd, Level(3), 90);
        let report = Report {
            title: "test <net>".into(),
            rows: vec![
                RunRow {
                    label: "dense".into(),
                    sparsity: 0.0,
                    metric_plain: 0.98,
                    counts: counts.clone(),
                    seconds: 2.0,
                    ..Default::default()
                },
                RunRow {
                    label: "90%".into(),
                    target: Some(0.9),
                    sparsity: 0.95,
                    metric_plain: 0.97,
                    seconds: 0.5,
                    ..Default::default()
                },
            ],
        };
        let t = report.table();
        assert!(t.contains("dense") && t.contains("100"), "{t}");
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);
        let charts = sweep_charts(&report);
        assert_eq!(charts.len(), 3);
        assert!(charts[0].1.starts_with("<svg") && charts[0].1.contains("&lt;net&gt;"));
        assert!(charts[1].1.contains("<circle"));
    }
}
