//! Density fits for the baseline rule (Splunk MLTK `DensityFunction`):
//! normal, exponential and Gaussian KDE, their upper thresholds at a tail
//! area, and the `auto` choice between them.
//!
//! The definitions, and which parts follow Splunk and which are ours, are
//! written out in `tests/baseline_reference/README.md` (§3); the numbers are
//! checked against its scipy reference (`expected.json`).

use serde::{Deserialize, Serialize};

/// `std` used when the data have zero variance (MLTK's `REPLACE_ZERO_STD`).
pub const REPLACE_ZERO_STD: f64 = 1e-6;

/// Standard normal CDF.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Inverse standard normal CDF: Acklam's rational approximation refined by
/// Halley steps on the exact CDF (relative error near machine precision).
pub fn norm_ppf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    // Acklam's published coefficients, kept digit for digit.
    #[allow(clippy::excessive_precision)]
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    #[allow(clippy::excessive_precision)]
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    #[allow(clippy::excessive_precision)]
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    #[allow(clippy::excessive_precision)]
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let plow = 0.02425;
    let mut x = if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    for _ in 0..3 {
        let e = norm_cdf(x) - p;
        let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

/// Which density.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    /// Normal (Splunk's shipped baseline uses `dist=norm`).
    Normal,
    /// Exponential.
    Expon,
    /// Gaussian kernel density estimate.
    Kde,
    /// The best of the three by the Wasserstein score.
    Auto,
}

/// A fitted density.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// Normal with population std (0 replaced by 1e-6).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation used.
        std: f64,
    },
    /// Exponential, `loc = min`, `scale = mean - min`.
    Expon {
        /// Location.
        loc: f64,
        /// Scale.
        scale: f64,
    },
    /// Gaussian KDE with Scott's bandwidth.
    Kde {
        /// Sorted samples.
        xs: Vec<f64>,
        /// Kernel standard deviation.
        h: f64,
    },
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn std_ddof(xs: &[f64], ddof: f64) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() as f64 - ddof)).sqrt()
}

fn constant(xs: &[f64]) -> bool {
    xs.iter().all(|x| *x == xs[0])
}

/// Bisection for the root of a monotone-crossing `f` on `[a, b]`.
fn bisect(mut a: f64, mut b: f64, f: impl Fn(f64) -> f64) -> f64 {
    let mut fa = f(a);
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        let fm = f(m);
        if (fm < 0.0) == (fa < 0.0) {
            a = m;
            fa = fm;
        } else {
            b = m;
        }
    }
    0.5 * (a + b)
}

impl Fit {
    /// Fit `dist` (not `Auto`) to the samples; `None` when it cannot be
    /// fitted (empty data; exponential or KDE on constant data; KDE on one point).
    pub fn of(dist: Dist, xs: &[f64]) -> Option<Fit> {
        if xs.is_empty() {
            return None;
        }
        match dist {
            Dist::Normal => {
                let s = std_ddof(xs, 0.0);
                Some(Fit::Normal {
                    mean: mean(xs),
                    std: if s == 0.0 { REPLACE_ZERO_STD } else { s },
                })
            }
            Dist::Expon => {
                if constant(xs) {
                    return None;
                }
                let loc = xs.iter().cloned().fold(f64::INFINITY, f64::min);
                Some(Fit::Expon {
                    loc,
                    scale: mean(xs) - loc,
                })
            }
            Dist::Kde => {
                if xs.len() <= 1 || constant(xs) {
                    return None;
                }
                let h = (xs.len() as f64).powf(-0.2) * std_ddof(xs, 1.0);
                let mut s = xs.to_vec();
                s.sort_by(f64::total_cmp);
                Some(Fit::Kde { xs: s, h })
            }
            Dist::Auto => None,
        }
    }

    /// The `auto` choice: the fitted candidate with the smallest Wasserstein
    /// score, in the order normal, exponential, KDE (first wins ties).
    pub fn auto(xs: &[f64]) -> Option<Fit> {
        let mut best: Option<(f64, Fit)> = None;
        for d in [Dist::Normal, Dist::Expon, Dist::Kde] {
            if let Some(f) = Fit::of(d, xs) {
                let s = f.score(xs);
                if best.as_ref().is_none_or(|(b, _)| s < *b) {
                    best = Some((s, f));
                }
            }
        }
        best.map(|(_, f)| f)
    }

    /// Fit by `dist`, including `Auto`.
    pub fn fit_by(dist: Dist, xs: &[f64]) -> Option<Fit> {
        match dist {
            Dist::Auto => Fit::auto(xs),
            d => Fit::of(d, xs),
        }
    }

    /// Which density this is.
    pub fn dist(&self) -> Dist {
        match self {
            Fit::Normal { .. } => Dist::Normal,
            Fit::Expon { .. } => Dist::Expon,
            Fit::Kde { .. } => Dist::Kde,
        }
    }

    fn kde_pdf(xs: &[f64], h: f64, s: f64) -> f64 {
        xs.iter().map(|x| norm_pdf((s - x) / h)).sum::<f64>() / (xs.len() as f64 * h)
    }

    fn kde_cdf(xs: &[f64], h: f64, s: f64) -> f64 {
        xs.iter().map(|x| norm_cdf((s - x) / h)).sum::<f64>() / xs.len() as f64
    }

    /// Quantile function.
    pub fn ppf(&self, p: f64) -> f64 {
        match self {
            Fit::Normal { mean, std } => mean + std * norm_ppf(p),
            Fit::Expon { loc, scale } => loc - scale * (1.0 - p).ln(),
            Fit::Kde { xs, h } => {
                let (a, b) = (xs[0] - 10.0 * h, xs[xs.len() - 1] + 10.0 * h);
                bisect(a, b, |s| Fit::kde_cdf(xs, *h, s) - p)
            }
        }
    }

    /// W1 distance between the sorted samples and the fit's quantiles at
    /// `(i - 1/2) / n`.
    pub fn score(&self, xs: &[f64]) -> f64 {
        let mut s = xs.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        s.iter()
            .enumerate()
            .map(|(i, x)| (x - self.ppf((i as f64 + 0.5) / n)).abs())
            .sum::<f64>()
            / n
    }

    /// Upper boundary of the lowest-density region of mass `tail`: for the
    /// normal `tail/2` in each tail, for the exponential `tail` on the right,
    /// for the KDE the last crossing of the density level that leaves mass
    /// `tail` below it.
    pub fn upper(&self, tail: f64) -> f64 {
        match self {
            Fit::Normal { mean, std } => mean + norm_ppf(1.0 - tail / 2.0) * std,
            Fit::Expon { loc, scale } => loc + scale * (-tail.ln()),
            Fit::Kde { xs, h } => kde_upper(xs, *h, tail),
        }
    }
}

/// Crossings of `pdf = c` on the grid, refined by bisection.
fn crossings(xs: &[f64], h: f64, grid: &[f64], c: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut prev = Fit::kde_pdf(xs, h, grid[0]) - c;
    for w in grid.windows(2) {
        let next = Fit::kde_pdf(xs, h, w[1]) - c;
        if (prev < 0.0) != (next < 0.0) {
            out.push(bisect(w[0], w[1], |s| Fit::kde_pdf(xs, h, s) - c));
        }
        prev = next;
    }
    out
}

fn kde_upper(xs: &[f64], h: f64, tail: f64) -> f64 {
    let (a, b) = (xs[0] - 10.0 * h, xs[xs.len() - 1] + 10.0 * h);
    let m = ((b - a) / (h / 20.0)).ceil() as usize + 1;
    let grid: Vec<f64> = (0..m)
        .map(|i| a + (b - a) * i as f64 / (m - 1) as f64)
        .collect();
    let fmax = grid
        .iter()
        .map(|s| Fit::kde_pdf(xs, h, *s))
        .fold(0.0, f64::max);
    // Mass where the density is below c; increasing in c.
    let mass = |c: f64| -> f64 {
        let r = crossings(xs, h, &grid, c);
        if r.is_empty() {
            return 0.0;
        }
        let cdf = |s: f64| Fit::kde_cdf(xs, h, s);
        let mut m = cdf(r[0]) + (1.0 - cdf(r[r.len() - 1]));
        let mut j = 1;
        while j + 1 < r.len() {
            m += cdf(r[j + 1]) - cdf(r[j]);
            j += 2;
        }
        m
    };
    let c = bisect(1e-12 * fmax, (1.0 - 1e-12) * fmax, |c| mass(c) - tail);
    crossings(xs, h, &grid, c).last().copied().unwrap_or(b)
}

/// `round(v, 4)` as Splunk displays `expected_upper_threshold`.
pub fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECTED: &str = include_str!("../../tests/baseline_reference/expected.json");

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1.0)
    }

    #[test]
    fn normal_quantiles() {
        assert!(close(norm_ppf(1.0 - 0.0025), 2.807033768343811, 1e-12));
        assert!(close(norm_ppf(0.5), 0.0, 1e-15));
        assert!(close(norm_ppf(0.025), -1.959963984540054, 1e-12));
        assert!(close(norm_cdf(1.0), 0.8413447460685429, 1e-14));
    }

    /// Every case of the scipy reference: fits, thresholds, scores, choice.
    #[test]
    fn matches_scipy_reference() {
        let v: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
        let tail = v["tail"].as_f64().unwrap();
        for c in v["cases"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let xs: Vec<f64> = c["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let n = Fit::of(Dist::Normal, &xs).unwrap();
            let Fit::Normal { mean, std } = n else {
                panic!()
            };
            assert!(
                close(mean, c["mean"].as_f64().unwrap(), 1e-12),
                "{name} mean"
            );
            assert!(
                close(std, c["std_used"].as_f64().unwrap(), 1e-12),
                "{name} std"
            );
            assert!(
                close(n.upper(tail), c["normal_upper"].as_f64().unwrap(), 1e-10),
                "{name} normal_upper"
            );
            match Fit::of(Dist::Expon, &xs) {
                Some(e) => {
                    assert!(
                        close(e.upper(tail), c["expon_upper"].as_f64().unwrap(), 1e-10),
                        "{name} expon_upper"
                    );
                    assert!(
                        close(e.score(&xs), c["scores"]["expon"].as_f64().unwrap(), 1e-9),
                        "{name} expon score"
                    );
                }
                None => assert!(c["expon_upper"].is_null(), "{name}: expon should fit"),
            }
            match Fit::of(Dist::Kde, &xs) {
                Some(k) => {
                    let Fit::Kde { h, .. } = &k else { panic!() };
                    assert!(
                        close(*h, c["kde_bandwidth"].as_f64().unwrap(), 1e-12),
                        "{name} h"
                    );
                    let u = k.upper(tail);
                    assert!(
                        close(u, c["kde_upper"].as_f64().unwrap(), 1e-8),
                        "{name} kde_upper {u} vs {}",
                        c["kde_upper"]
                    );
                    assert!(
                        close(k.score(&xs), c["scores"]["kde"].as_f64().unwrap(), 1e-8),
                        "{name} kde score"
                    );
                }
                None => assert!(c["kde_upper"].is_null(), "{name}: kde should fit"),
            }
            assert!(
                close(n.score(&xs), c["scores"]["normal"].as_f64().unwrap(), 1e-9),
                "{name} normal score"
            );
            let auto = Fit::auto(&xs).unwrap();
            let want = match c["auto"].as_str().unwrap() {
                "normal" => Dist::Normal,
                "expon" => Dist::Expon,
                _ => Dist::Kde,
            };
            assert_eq!(auto.dist(), want, "{name} auto");
            assert!(
                close(auto.upper(tail), c["auto_upper"].as_f64().unwrap(), 1e-8),
                "{name} auto_upper"
            );
            assert!(close(
                round4(n.upper(tail)),
                c["normal_upper_rounded"].as_f64().unwrap(),
                1e-12
            ));
        }
    }
}
