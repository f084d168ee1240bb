#!/usr/bin/env python3
"""Reference numbers for reconwatch rule 5 (Splunk ESCU "Abnormally High Number
Of Cloud Infrastructure API Calls", MLTK DensityFunction baseline).

Computes, with numpy + scipy, for a fixed list of sample vectors (one vector =
the past hourly call counts of one (user, HourOfDay bucket, isWeekend) group):

  * the Normal fit exactly as MLTK does it (scipy.stats.norm.fit -> MLE, ddof=0;
    std == 0 replaced by 1e-6) and its upper boundary for `threshold=0.005`
    (two-sided: tail/2 in each tail -> z = norm.ppf(1 - tail/2));
  * the Exponential fit exactly as MLTK does it (scipy.stats.expon.fit ->
    loc = min, scale = mean - min) and its upper boundary (one-sided:
    expon.ppf(1 - tail));
  * the Gaussian KDE as MLTK builds it (scipy.stats.gaussian_kde, Scott's rule,
    kernel sd = n**(-1/5) * std(ddof=1)) and its upper boundary, defined as the
    start of the right-hand part of the lowest-density region of total
    probability mass `tail` (what MLTK's grid search approximates), solved
    exactly here;
  * the dist=auto goodness-of-fit score of each candidate (Wasserstein-1, the
    MLTK default metric) and the auto choice (smallest score wins; ties go to
    the earlier of normal, expon, kde).

MLTK scores candidates against a *random* sample drawn from each fitted
distribution. That is not reproducible, so the normative score here replaces
the random sample by the deterministic quasi-sample q_i = F^-1((i - 0.5) / n),
i = 1..n, and score = mean_i |x_(i) - q_i| (W1 between two n-point samples).
The README documents every choice and which parts are Splunk behaviour.

Usage:  python reference.py            # prints JSON, writes expected.json
        python reference.py --check    # exit 1 if expected.json differs
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.stats as st
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

TAIL = 0.005  # `apply ... threshold=0.005` in the ESCU detection search
MIN_SAMPLES = 16  # `where cardinality >= 16` in the ESCU detection search
NUMERIC_PRECISION = 4  # MLTK rounds BoundaryRanges to 4 decimals
REPLACE_ZERO_STD = 1e-6  # MLTK ProbabilityDistribution.REPLACE_ZERO_STD
KDE_SPAN_BANDWIDTHS = 10.0  # KDE search interval: [min - 10h, max + 10h]
KDE_GRID_STEPS_PER_BANDWIDTH = 20  # level-crossing scan step = h / 20
MC_SEEDS = 200  # informational Monte Carlo of MLTK's stochastic auto choice
MC_SEED_BASE = 1000  # informational Monte Carlo of MLTK's stochastic auto choice
DIST_ORDER = ("normal", "expon", "kde")  # MLTK AutoSelectDistribution order

# Each vector: past hourly counts of successful API calls of ONE group
# (user, HourOfDay bucket, isWeekend); only hours with >= 1 call exist, because
# `tstats count ... span=1h` emits no row for an empty hour.
CASES = [
    {
        "name": "normal_n16",
        "description": "normal-ish counts, exactly the minimum 16 samples",
        "samples": [33, 33, 36, 42, 30, 39, 46, 44, 32, 44, 40, 46, 39, 44, 37, 41],
    },
    {
        "name": "normal_n24",
        "description": "normal-ish counts around 120",
        "samples": [136, 123, 131, 121, 120, 146, 130, 131, 138, 97, 129, 144,
                    121, 102, 117, 130, 105, 146, 115, 94, 104, 111, 117, 110],
    },
    {
        "name": "normal_n50",
        "description": "normal-ish counts around 25, 50 samples",
        "samples": [23, 28, 19, 22, 29, 31, 27, 27, 24, 22, 22, 24, 25, 24, 20,
                    27, 30, 37, 18, 22, 27, 26, 22, 18, 23, 24, 20, 28, 23, 26,
                    21, 26, 27, 25, 28, 25, 26, 29, 20, 28, 28, 20, 24, 25, 27,
                    23, 25, 19, 23, 27],
    },
    {
        "name": "exponential_n30",
        "description": "right-skewed, exponential-looking counts",
        "samples": [40, 16, 6, 14, 24, 4, 9, 5, 21, 16, 9, 7, 3, 2, 4, 2, 5, 2,
                    14, 11, 11, 2, 14, 6, 19, 8, 12, 1, 7, 1],
    },
    {
        "name": "constant_n20",
        "description": "zero variance: every hour had exactly 5 calls",
        "samples": [5] * 20,
    },
    {
        "name": "bimodal_n24",
        "description": "two clusters (around 10 and around 60)",
        "samples": [10, 11, 9, 13, 13, 10, 11, 7, 8, 9, 15, 12,
                    62, 55, 58, 63, 59, 59, 62, 62, 64, 57, 65, 70],
    },
    {
        "name": "big_outlier_n20",
        "description": "counts around 30 plus one burst of 400 in the baseline",
        "samples": [26, 29, 25, 28, 30, 30, 22, 34, 32, 30, 29, 26, 32, 29, 27,
                    31, 32, 28, 34, 400],
    },
    {
        "name": "low_cardinality_n18",
        "description": "sparse user: mostly 1 call per active hour",
        "samples": [1] * 12 + [2] * 5 + [3],
    },
    {
        "name": "tiny_n3",
        "description": "3 samples: below the 16-sample minimum, never judged",
        "samples": [4, 7, 5],
    },
]


def mltk_round(x: float) -> float:
    """MLTK: round(value, NUMERIC_PRECISION) (Python round, half-to-even on the
    exact binary value)."""
    return round(float(x), NUMERIC_PRECISION)


# --------------------------------------------------------------------------
# Normal (MLTK NormalDistribution)
# --------------------------------------------------------------------------
def fit_normal(x: np.ndarray) -> dict:
    mean, std = st.norm.fit(x)  # MLE: mean, sqrt(mean((x-mean)^2)) -> ddof=0
    std = float(std)
    replaced = std == 0.0
    std_used = REPLACE_ZERO_STD if replaced else std
    z = float(ndtri(1.0 - TAIL / 2.0))
    return {
        "mean": float(mean),
        "std": std,
        "std_used": std_used,
        "std_replaced": replaced,
        "lower": float(mean) - z * std_used,
        "upper": float(mean) + z * std_used,
    }


def normal_quantile(fit: dict, p: np.ndarray) -> np.ndarray:
    return fit["mean"] + fit["std_used"] * ndtri(p)


# --------------------------------------------------------------------------
# Exponential (MLTK ExponentialDistribution)
# --------------------------------------------------------------------------
def fit_expon(x: np.ndarray) -> dict | None:
    if np.all(x == x[0]):
        return None  # MLTK raises DistributionFitError -> skipped by auto
    loc, scale = st.expon.fit(x)  # MLE: loc = min(x), scale = mean(x) - min(x)
    loc, scale = float(loc), float(scale)
    return {
        "loc": loc,
        "scale": scale,
        # expon.ppf(1 - tail) = loc - scale * ln(tail); whole tail on the right
        "upper": loc + scale * (-math.log(TAIL)),
    }


def expon_quantile(fit: dict, p: np.ndarray) -> np.ndarray:
    return fit["loc"] - fit["scale"] * np.log1p(-p)


# --------------------------------------------------------------------------
# Gaussian KDE (MLTK KDEDistribution = scipy.stats.gaussian_kde defaults)
# --------------------------------------------------------------------------
class Kde:
    def __init__(self, x: np.ndarray):
        self.x = np.asarray(x, dtype=float)
        self.n = self.x.size
        self.factor = self.n ** (-1.0 / 5.0)  # Scott's rule, d = 1
        self.h = self.factor * float(np.std(self.x, ddof=1))  # kernel sd
        # cross-check against scipy's own object
        k = st.gaussian_kde(self.x)
        assert math.isclose(k.factor, self.factor, rel_tol=1e-15)
        assert math.isclose(math.sqrt(k.covariance[0, 0]), self.h, rel_tol=1e-12)
        self.lo = float(self.x.min()) - KDE_SPAN_BANDWIDTHS * self.h
        self.hi = float(self.x.max()) + KDE_SPAN_BANDWIDTHS * self.h

    def pdf(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        z = (t[:, None] - self.x[None, :]) / self.h
        return np.exp(-0.5 * z * z).sum(axis=1) / (self.n * self.h * math.sqrt(2 * math.pi))

    def cdf(self, t: float) -> float:
        return float(np.mean(ndtr((t - self.x) / self.h)))

    def quantile(self, p: float) -> float:
        return brentq(lambda t: self.cdf(t) - p, self.lo, self.hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500)

    def _grid(self):
        step = self.h / KDE_GRID_STEPS_PER_BANDWIDTH
        m = int(math.ceil((self.hi - self.lo) / step)) + 1
        g = np.linspace(self.lo, self.hi, m)
        return g, self.pdf(g)

    def _crossings(self, level: float, g, dens):
        """x where pdf(x) == level, ascending, refined with brentq."""
        s = dens - level
        out = []
        for i in np.nonzero(np.sign(s[:-1]) != np.sign(s[1:]))[0]:
            a, b = g[i], g[i + 1]
            if s[i] == 0.0:
                out.append(float(a))
                continue
            out.append(brentq(lambda t: float(self.pdf(t)[0]) - level, a, b, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500))
        return out

    def _low_mass(self, level: float, g, dens):
        """Probability mass of {x : pdf(x) < level} and the crossing points."""
        xs = self._crossings(level, g, dens)
        # pdf < level at both ends of the real line, so crossings alternate
        # (below -> above -> below ...) and there is an even number of them.
        if len(xs) % 2 != 0:
            raise RuntimeError("odd number of level crossings")
        pts = [-math.inf] + xs + [math.inf]
        mass = 0.0
        for a, b in zip(pts[0::2], pts[1::2]):
            fa = 0.0 if a == -math.inf else self.cdf(a)
            fb = 1.0 if b == math.inf else self.cdf(b)
            mass += fb - fa
        return mass, xs

    def hdr_upper(self, tail: float) -> dict:
        """Lowest-density region of total mass `tail` (the principle MLTK's
        _find_anomaly_ranges approximates). Returns the level, the crossing
        points and the upper boundary (start of the right-most low region)."""
        g, dens = self._grid()
        top = float(dens.max())
        level = brentq(lambda c: self._low_mass(c, g, dens)[0] - tail,
                       top * 1e-12, top * (1 - 1e-12), xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000)
        mass, xs = self._low_mass(level, g, dens)
        return {"level": level, "mass": mass, "crossings": xs, "upper": xs[-1], "lower": xs[0]}

    def equal_tail_upper(self, tail: float) -> float:
        """Informational: right tail mass tail/2 (normal-style split)."""
        return brentq(lambda t: (1.0 - self.cdf(t)) - tail / 2.0, self.lo, self.hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500)


def fit_kde(x: np.ndarray) -> Kde | None:
    if x.size <= 1 or np.all(x == x[0]):
        return None  # MLTK raises DistributionFitError -> skipped by auto
    return Kde(x)


def mltk_grid_kde_upper(x: np.ndarray, tail: float) -> float | None:
    """Informational: literal port of MLTK KDEDistribution._find_anomaly_ranges
    / _get_auc for `threshold=` (not lower/upper_threshold); returns the first
    number of the last BoundaryRanges entry, which is what the ESCU search
    reads as expected_upper_threshold. None if MLTK would report no range."""
    data = np.asarray(x, dtype=float)
    kde = st.gaussian_kde(data)
    dmin, dmax = data.min(), data.max()
    x_range = np.linspace(dmin * 0.9, dmax * 1.1, 1000)
    densities = kde.pdf(x_range)

    def get_auc(max_density):
        idx = densities < max_density
        begin = None
        prev = None
        items = []
        for f, i in zip(idx, x_range):
            if f and not begin:
                begin = i
            elif not f and begin:
                items.append([begin, i, kde.integrate_box_1d(begin, (prev + i) / 2)])
                begin = None
            prev = i
        if begin:
            items.append([begin, i, kde.integrate_box_1d(begin, i)])
        return items

    upper, lower, prev_area, items = densities.max(), 0.0, None, []
    for _ in range(1000):
        middle = (upper + lower) / 2
        items = get_auc(middle)
        area = sum(it[2] for it in items)
        rounded = round(area, NUMERIC_PRECISION)
        if rounded == prev_area:
            break
        prev_area = rounded
        if tail * 0.999 < area < tail * 1.001:
            break
        elif area < tail:
            lower = middle
        else:
            upper = middle
    if not items:
        return None
    if items[-1][1] >= dmax:
        items[-1][1] = math.inf
    return mltk_round(items[-1][0])


# --------------------------------------------------------------------------
# dist=auto scoring
# --------------------------------------------------------------------------
def plotting_positions(n: int) -> np.ndarray:
    return (np.arange(1, n + 1) - 0.5) / n


def w1_quasi(x_sorted: np.ndarray, q: np.ndarray) -> float:
    """W1 between two equal-size samples = mean |x_(i) - q_(i)|."""
    return float(np.mean(np.abs(x_sorted - np.sort(q))))


def mltk_auto_monte_carlo(x: np.ndarray, fits: dict) -> dict:
    """Informational: how often MLTK's own (random-sample) Wasserstein scoring
    picks each candidate, over MC_SEEDS seeds (np.random.seed like MLTK's
    random_state)."""
    wins = {d: 0 for d in DIST_ORDER}
    n = x.size
    for s in range(MC_SEED_BASE, MC_SEED_BASE + MC_SEEDS):
        np.random.seed(s)
        scores = []
        for d in DIST_ORDER:
            f = fits[d]
            if f is None:
                continue
            if d == "normal":
                smp = st.norm(loc=f["mean"], scale=f["std_used"]).rvs(n)
            elif d == "expon":
                smp = st.expon(loc=f["loc"], scale=f["scale"]).rvs(n)
            else:
                smp = st.gaussian_kde(x).resample(n)[0]
            scores.append((st.wasserstein_distance(x, smp), d))
        best = min(scores, key=lambda t: t[0])  # first minimum, like itemgetter
        wins[best[1]] += 1
    return wins


def run_case(case: dict) -> dict:
    x = np.asarray(case["samples"], dtype=float)
    n = x.size
    xs = np.sort(x)
    p = plotting_positions(n)

    nf = fit_normal(x)
    ef = fit_expon(x)
    kf = fit_kde(x)

    scores = {"normal": w1_quasi(xs, normal_quantile(nf, p))}
    scores["expon"] = None if ef is None else w1_quasi(xs, expon_quantile(ef, p))
    kde_hdr = None
    if kf is not None:
        scores["kde"] = w1_quasi(xs, np.array([kf.quantile(float(pi)) for pi in p]))
        kde_hdr = kf.hdr_upper(TAIL)
    else:
        scores["kde"] = None

    uppers = {
        "normal": nf["upper"],
        "expon": None if ef is None else ef["upper"],
        "kde": None if kde_hdr is None else kde_hdr["upper"],
    }
    candidates = [(scores[d], d) for d in DIST_ORDER if scores[d] is not None]
    auto = min(candidates, key=lambda t: t[0])[1]
    auto_upper = uppers[auto]

    def probe(v: float) -> dict:
        out = {"api_calls": v}
        for label, u in (("normal", nf["upper"]), ("auto", auto_upper)):
            r = mltk_round(u)
            out[f"alert_{label}"] = bool(v > u and v > r)
            out[f"distance_from_threshold_{label}"] = v - r
        return out

    probe_values = sorted({float(max(0, math.floor(nf["upper"]))), float(math.floor(nf["upper"]) + 1),
                           float(max(0, math.floor(auto_upper))), float(math.floor(auto_upper) + 1),
                           float(x.max())})

    fits_for_mc = {"normal": nf, "expon": ef, "kde": kf}
    return {
        "name": case["name"],
        "description": case["description"],
        "samples": [int(v) for v in case["samples"]],
        "n": n,
        "judged": n >= MIN_SAMPLES,
        "mean": nf["mean"],
        "std": nf["std"],
        "ddof": 0,
        "std_replaced": nf["std_replaced"],
        "std_used": nf["std_used"],
        "normal_lower": nf["lower"],
        "normal_upper": nf["upper"],
        "normal_upper_rounded": mltk_round(nf["upper"]),
        "expon_loc": None if ef is None else ef["loc"],
        "expon_scale": None if ef is None else ef["scale"],
        "expon_upper": uppers["expon"],
        "expon_upper_rounded": None if ef is None else mltk_round(ef["upper"]),
        "kde_factor": None if kf is None else kf.factor,
        "kde_bandwidth": None if kf is None else kf.h,
        "kde_density_level": None if kde_hdr is None else kde_hdr["level"],
        "kde_low_density_crossings": None if kde_hdr is None else kde_hdr["crossings"],
        "kde_upper": uppers["kde"],
        "kde_upper_rounded": None if kde_hdr is None else mltk_round(kde_hdr["upper"]),
        "scores": scores,
        "auto": auto,
        "auto_upper": auto_upper,
        "auto_upper_rounded": mltk_round(auto_upper),
        "probes": [probe(v) for v in probe_values],
        "info": {
            "mltk_reported_kde_bandwidth": None if kf is None else kf.factor * float(np.std(x, ddof=0)),
            "kde_upper_equal_tail": None if kf is None else kf.equal_tail_upper(TAIL),
            "kde_upper_mltk_grid": None if kf is None else mltk_grid_kde_upper(x, TAIL),
            "mltk_auto_random_sample_wins": mltk_auto_monte_carlo(x, fits_for_mc),
        },
    }


def build() -> dict:
    z = float(ndtri(1.0 - TAIL / 2.0))
    return {
        "generator": "tests/baseline_reference/reference.py",
        "versions": {
            "python": ".".join(map(str, sys.version_info[:3])),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "tail": TAIL,
        "min_samples": MIN_SAMPLES,
        "numeric_precision": NUMERIC_PRECISION,
        "replace_zero_std": REPLACE_ZERO_STD,
        "z_normal": z,
        "expon_upper_multiplier": -math.log(TAIL),
        "conventions": {
            "std": "population std (ddof=0), as scipy.stats.norm.fit (MLE) returns; 0 is replaced by 1e-6",
            "normal_upper": "mean + z_normal * std_used, z_normal = Phi^-1(1 - tail/2) (two-sided split, MLTK threshold=)",
            "expon": "loc = min, scale = mean - min (scipy.stats.expon.fit MLE); expon_upper = loc + scale * (-ln tail) (one-sided)",
            "kde_bandwidth": "kernel sd h = n^(-1/5) * std(ddof=1) (scipy gaussian_kde, Scott's rule)",
            "kde_upper": "largest x with pdf(x) = c, where c solves P(pdf(X) < c) = tail (lowest-density region of mass tail)",
            "scores": "W1 between sorted samples and the fitted quantiles F^-1((i-0.5)/n): mean |x_(i) - q_i|; null = distribution not fitted",
            "auto": "argmin score over [normal, expon, kde] (first wins ties); expon and kde are skipped for constant data",
            "rounded": "round(value, 4): what Splunk shows as expected_upper_threshold",
            "alert": "api_calls > upper (unrounded) and api_calls > upper_rounded; distance = api_calls - upper_rounded",
            "judged": "n >= min_samples",
            "info": "informational only (MLTK look-alikes); do not assert on these in Rust",
        },
        "cases": [run_case(c) for c in CASES],
    }


def main() -> int:
    doc = build()
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    out = Path(__file__).resolve().with_name("expected.json")
    if "--check" in sys.argv[1:]:
        old = out.read_text() if out.exists() else ""
        if old != text:
            sys.stderr.write(f"{out} is out of date; re-run reference.py\n")
            return 1
        sys.stdout.write(f"{out} is up to date\n")
        return 0
    sys.stdout.write(text)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
