//! Fixed-point branches of a circuit under one parameter, by pseudo-arclength continuation,
//! with their stability, folds and Hopf points (docs/model.md#continuation).
//!
//! **Equations.** With the state `x = [y; a]` (dimension m = 2n), a parameter `p`
//! ([`Parameter`]) and `T = diag(τ_y, τ_a)`, the branches are the solution curves of the m
//! equations in m + 1 unknowns `u = (x, p)`
//!
//! ```text
//! G(x, p) = T f(x; p) = 0,
//! ```
//!
//! (same zeros as `f`; the scaling by `T` makes `G` independent of the time constants). `G_x = T J`
//! with `J` the analytic Jacobian of organics-core (docs/model.md#jacobian); `G_p` comes from the
//! vector field by an exact three-point formula (`G` is at most quadratic in each parameter,
//! see `parameter_derivative`). From a point `u_k` with unit tangent `t_k`
//! (`[G_x G_p] t_k = 0`, `‖t_k‖ = 1`, oriented so that `t_k · t_{k−1} > 0`), one step of length `h`
//! predicts `ũ = u_k + h t_k` and corrects by Newton's method on the bordered system
//!
//! ```text
//! G(u) = 0,   t_k · (u − ũ) = 0,        Jacobian [[G_x, G_p], [t_kᵀ]],
//! ```
//!
//! which stays regular at folds (where `G_x` is singular), so the branch turns round them. The
//! step halves when Newton fails (10 iterations, or a correction larger than `h/2`) or the
//! tangent turns by more than ~25°, and grows by 1.5 after an easy step, within
//! [`ContinuationOptions`]' bounds.
//!
//! **Stability** of every point is the verdict of [`crate::linear_stability`] on `J` (the
//! crate's one judge).
//!
//! **Bifurcations.** Between consecutive points three test functions are watched:
//! - the parameter component `t_p` of the tangent changes sign: a **fold** (saddle-node; there
//!   `det G_x = 0` and the branch turns back in `p`);
//! - the parity of the number of real eigenvalues of `J` with positive real part (the sign of
//!   `det J`) changes while `t_p` keeps its sign: a **branch point** (a real eigenvalue crosses
//!   zero without a fold, e.g. a pitchfork);
//! - the largest real part among the eigenvalues with `Im ≠ 0` changes sign: a **Hopf point**
//!   (a complex pair crosses the imaginary axis; its frequency `ω = Im λ` is reported).
//!
//! Each is located by bisection on the arclength `σ ∈ [0, h]` of the step (each trial point
//! corrected onto the branch by the same bordered Newton), until the bracket is shorter than
//! `1e-10 · max(1, h)` in arclength, so that the parameter is located far below the 1e-6 the
//! command line promises (|Δp| ≤ |Δσ| along a unit tangent).
//!
//! **Seeds.** For n = 1, every fixed point at both ends of the interval
//! ([`crate::planar::fixed_points()`], exact) seeds a branch, unless an earlier branch already
//! ended on it; for n > 1, the steady state at the start ([`crate::steady_state()`]).

mod diagram;
mod parameter;

pub use diagram::bifurcation_diagram;
pub use parameter::Parameter;
use parameter::{parameter_derivative, scaled_jacobian, scaled_residual};

use crate::error::LyapunovError;
use crate::planar::fixed_points;
use crate::stability::{LinearStability, Verdict, linear_stability, steady_state};
use faer::Mat;
use faer::linalg::solvers::Solve;
use organics_core::Circuit;
use organics_core::steady_state::Method;

/// Options of [`continuation`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuationOptions {
    /// Largest arclength step; `None`: `|to − from| / 50`.
    pub max_step: Option<f64>,
    /// Smallest arclength step before the branch is abandoned, relative to the largest.
    pub min_step_ratio: f64,
    /// Most points per branch.
    pub max_points: usize,
    /// Where a branch stops.
    pub stop: StopRule,
}

impl Default for ContinuationOptions {
    fn default() -> Self {
        Self {
            max_step: None,
            min_step_ratio: 1e-7,
            max_points: 5000,
            stop: StopRule::Interval,
        }
    }
}

/// Where a branch stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRule {
    /// At the ends of the parameter interval (or when it leaves the model's domain).
    Interval,
    /// Also at the first point that is not stable, after a stable one (the first loss of
    /// stability, [`first_instability`]).
    FirstLossOfStability,
}

/// One point of a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchPoint {
    /// The parameter's value.
    pub param: f64,
    /// Principal-neuron potentials.
    pub y: Vec<f64>,
    /// Modulator potentials.
    pub a: Vec<f64>,
    /// `verdict == Stable`.
    pub stable: bool,
    /// The verdict of [`linear_stability`].
    pub verdict: Verdict,
    /// The spectral abscissa `max Re λ(J)` (1/time unit).
    pub max_real: f64,
}

/// Why a branch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchEnd {
    /// It reached an end of the parameter interval.
    Boundary,
    /// It left the model's domain (a ≤ 0, a non-finite value, or |x| > 1e8).
    LeftDomain,
    /// The step fell below its minimum (Newton kept failing).
    StepUnderflow,
    /// It reached [`ContinuationOptions::max_points`].
    MaxPoints,
    /// [`StopRule::FirstLossOfStability`] stopped it.
    LostStability,
}

impl BranchEnd {
    /// `boundary`, `left-domain`, `step-underflow`, `max-points`, `lost-stability`.
    pub fn name(self) -> &'static str {
        match self {
            BranchEnd::Boundary => "boundary",
            BranchEnd::LeftDomain => "left-domain",
            BranchEnd::StepUnderflow => "step-underflow",
            BranchEnd::MaxPoints => "max-points",
            BranchEnd::LostStability => "lost-stability",
        }
    }
}

/// A followed branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// Its points, in arclength order.
    pub points: Vec<BranchPoint>,
    /// Why it ended.
    pub end: BranchEnd,
}

/// The kind of a bifurcation point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BifurcationKind {
    /// Saddle-node: the branch turns back in the parameter, `det J = 0`.
    Fold,
    /// A complex pair crosses the imaginary axis.
    Hopf,
    /// A real eigenvalue crosses zero without a fold.
    BranchPoint,
}

impl BifurcationKind {
    /// `fold`, `hopf`, `branch-point`.
    pub fn name(self) -> &'static str {
        match self {
            BifurcationKind::Fold => "fold",
            BifurcationKind::Hopf => "hopf",
            BifurcationKind::BranchPoint => "branch-point",
        }
    }
}

/// A located bifurcation point.
#[derive(Debug, Clone, PartialEq)]
pub struct Bifurcation {
    /// Its kind.
    pub kind: BifurcationKind,
    /// The parameter's value.
    pub param: f64,
    /// Principal-neuron potentials.
    pub y: Vec<f64>,
    /// Modulator potentials.
    pub a: Vec<f64>,
    /// Index of the branch it lies on.
    pub branch: usize,
    /// For a Hopf point, the angular frequency `ω = Im λ` of the crossing pair
    /// (rad per time unit; the period of the small oscillations born there is `2π/ω`).
    pub omega: Option<f64>,
    /// The eigenvalues `(Re, Im)` of `J` there, largest real part first.
    pub eigenvalues: Vec<(f64, f64)>,
}

/// The result of [`continuation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Continuation {
    /// The parameter.
    pub param: Parameter,
    /// The branches.
    pub branches: Vec<Branch>,
    /// Every located bifurcation, branch by branch in arclength order.
    pub bifurcations: Vec<Bifurcation>,
}

/// A point of the branch with what the test functions need.
#[derive(Debug, Clone)]
struct Node {
    u: Vec<f64>,
    t: Vec<f64>,
    lin: LinearStability,
}

/// |Im λ| above this (relative to max(1, |λ|)) counts as a complex eigenvalue.
const COMPLEX: f64 = 1e-8;

impl Node {
    fn p(&self) -> f64 {
        *self.u.last().expect("u has m + 1 entries")
    }
    /// The fold test: the sign of `t_p`.
    fn fold_sign(&self) -> bool {
        self.p_tangent() > 0.0
    }
    fn p_tangent(&self) -> f64 {
        *self.t.last().expect("t has m + 1 entries")
    }
    /// The sign of det J, from the parity of the real eigenvalues with Re > 0.
    fn det_sign(&self) -> bool {
        self.lin
            .eigenvalues
            .iter()
            .filter(|&&(re, im)| im.abs() <= COMPLEX * re.hypot(im).max(1.0) && re > 0.0)
            .count()
            % 2
            == 0
    }
    /// The complex eigenvalue with the largest real part (`Im > 0`), if any.
    fn leading_complex(&self) -> Option<(f64, f64)> {
        self.lin
            .eigenvalues
            .iter()
            .copied()
            .filter(|&(re, im)| im > COMPLEX * re.hypot(im).max(1.0))
            .max_by(|u, v| u.0.total_cmp(&v.0))
    }
    fn point(&self, n: usize) -> BranchPoint {
        BranchPoint {
            param: self.p(),
            y: self.u[..n].to_vec(),
            a: self.u[n..2 * n].to_vec(),
            stable: self.lin.verdict == Verdict::Stable,
            verdict: self.lin.verdict,
            max_real: self.lin.max_real,
        }
    }
}

fn dot(u: &[f64], v: &[f64]) -> f64 {
    u.iter().zip(v).map(|(a, b)| a * b).sum()
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// The branch follower of one continuation.
struct Tracker<'a> {
    base: &'a Circuit,
    param: Parameter,
    lo: f64,
    hi: f64,
}

impl Tracker<'_> {
    fn m(&self) -> usize {
        2 * self.base.n()
    }

    /// `G(u)` and the m × (m + 1) matrix `[G_x G_p]`.
    fn eval(&self, u: &[f64]) -> Result<(Vec<f64>, Mat<f64>), LyapunovError> {
        let m = self.m();
        let p = u[m];
        let circuit = self.param.circuit_at(self.base, p)?;
        let x = &u[..m];
        let g = scaled_residual(&circuit, x);
        let gx = scaled_jacobian(&circuit, x);
        let gp = parameter_derivative(self.param, self.base, x, p)?;
        let jac = Mat::from_fn(m, m + 1, |i, j| if j < m { gx[(i, j)] } else { gp[i] });
        Ok((g, jac))
    }

    /// The bordered matrix `[[G_x, G_p], [bᵀ]]`.
    fn bordered(jac: &Mat<f64>, b: &[f64]) -> Mat<f64> {
        let m = jac.nrows();
        Mat::from_fn(m + 1, m + 1, |i, j| if i < m { jac[(i, j)] } else { b[j] })
    }

    /// The unit tangent at `u`, oriented along `prev`.
    fn tangent(&self, u: &[f64], prev: &[f64]) -> Result<Option<Vec<f64>>, LyapunovError> {
        let m = self.m();
        let (_, jac) = self.eval(u)?;
        let rhs = Mat::from_fn(m + 1, 1, |i, _| if i == m { 1.0 } else { 0.0 });
        let sol = Self::bordered(&jac, prev).partial_piv_lu().solve(&rhs);
        let t: Vec<f64> = (0..=m).map(|i| sol[(i, 0)]).collect();
        let norm = dot(&t, &t).sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Ok(None);
        }
        let sign = if dot(&t, prev) < 0.0 { -1.0 } else { 1.0 };
        Ok(Some(t.iter().map(|v| sign * v / norm).collect()))
    }

    /// Newton on `G(u) = 0, t·(u − ũ) = 0` from `ũ`; the point and the iterations taken.
    fn correct(
        &self,
        pred: &[f64],
        t: &[f64],
        max_move: f64,
    ) -> Result<Option<(Vec<f64>, usize)>, LyapunovError> {
        let m = self.m();
        let mut u = pred.to_vec();
        for it in 1..=10 {
            if u[m] < self.lo - 0.5 * (self.hi - self.lo)
                || u[m] > self.hi + 0.5 * (self.hi - self.lo)
            {
                return Ok(None);
            }
            if self.param.check(u[m]).is_err() || !self.in_domain(&u) {
                return Ok(None);
            }
            let (g, jac) = self.eval(&u)?;
            let shift: Vec<f64> = u.iter().zip(pred).map(|(a, b)| a - b).collect();
            let rhs = Mat::from_fn(m + 1, 1, |i, _| if i < m { -g[i] } else { -dot(t, &shift) });
            let d = Self::bordered(&jac, t).partial_piv_lu().solve(&rhs);
            let mut step = 0.0f64;
            for (i, ui) in u.iter_mut().enumerate() {
                *ui += d[(i, 0)];
                step = step.max(d[(i, 0)].abs());
            }
            if !step.is_finite() {
                return Ok(None);
            }
            let moved: Vec<f64> = u.iter().zip(pred).map(|(a, b)| a - b).collect();
            if inf_norm(&moved) > max_move {
                return Ok(None);
            }
            // Converged when the update is at rounding level of the state (1e-12 relative,
            // a few hundred ulps) and the residual agrees (G is O(1) per unit of x).
            if step <= 1e-12 * (1.0 + inf_norm(&u)) {
                let (g, _) = self.eval(&u)?;
                if inf_norm(&g) <= 1e-10 * (1.0 + inf_norm(&u)) {
                    return Ok(Some((u, it)));
                }
            }
        }
        Ok(None)
    }

    /// Newton on `G(x, p) = 0` at fixed `p` (to land exactly on an end of the interval).
    fn natural(&self, x0: &[f64], p: f64) -> Result<Option<Vec<f64>>, LyapunovError> {
        let m = self.m();
        let circuit = self.param.circuit_at(self.base, p)?;
        let mut x = x0.to_vec();
        for _ in 0..20 {
            let g = scaled_residual(&circuit, &x);
            let gx = scaled_jacobian(&circuit, &x);
            let rhs = Mat::from_fn(m, 1, |i, _| -g[i]);
            let d = gx.partial_piv_lu().solve(&rhs);
            let mut step = 0.0f64;
            for (i, xi) in x.iter_mut().enumerate() {
                *xi += d[(i, 0)];
                step = step.max(d[(i, 0)].abs());
            }
            if !step.is_finite() {
                return Ok(None);
            }
            if step <= 1e-12 * (1.0 + inf_norm(&x)) {
                let mut u = x;
                u.push(p);
                return Ok(self.in_domain(&u).then_some(u));
            }
        }
        Ok(None)
    }

    fn in_domain(&self, u: &[f64]) -> bool {
        let n = self.base.n();
        u.iter().all(|v| v.is_finite())
            && inf_norm(&u[..2 * n]) <= 1e8
            && u[n..2 * n].iter().all(|&a| a > 0.0)
    }

    fn node(&self, u: Vec<f64>, prev_t: &[f64]) -> Result<Option<Node>, LyapunovError> {
        let Some(t) = self.tangent(&u, prev_t)? else {
            return Ok(None);
        };
        let circuit = self.param.circuit_at(self.base, u[self.m()])?;
        let lin = linear_stability(&circuit.jacobian(&u[..self.m()]))?;
        Ok(Some(Node { u, t, lin }))
    }

    /// The node at arclength `sigma` along the step from `from`.
    fn node_at(&self, from: &Node, sigma: f64) -> Result<Option<Node>, LyapunovError> {
        let pred: Vec<f64> = from
            .u
            .iter()
            .zip(&from.t)
            .map(|(u, t)| u + sigma * t)
            .collect();
        match self.correct(&pred, &from.t, f64::INFINITY)? {
            Some((u, _)) => self.node(u, &from.t),
            None => Ok(None),
        }
    }

    /// Bisection on `sigma ∈ [0, h]` for the change of `sign` between `from` and the end of the
    /// step; `None` when a trial point cannot be corrected or the sign is undefined there.
    fn locate(
        &self,
        from: &Node,
        h: f64,
        sign: &dyn Fn(&Node) -> Option<bool>,
    ) -> Result<Option<Node>, LyapunovError> {
        let Some(s0) = sign(from) else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (0.0, h);
        let mut best: Option<Node> = None;
        while hi - lo > 1e-10 * h.max(1.0) {
            let mid = 0.5 * (lo + hi);
            let Some(node) = self.node_at(from, mid)? else {
                return Ok(None);
            };
            let Some(s) = sign(&node) else {
                return Ok(None);
            };
            if s == s0 {
                lo = mid;
            } else {
                hi = mid;
            }
            best = Some(node);
        }
        match best {
            Some(_) => self.node_at(from, 0.5 * (lo + hi)),
            None => Ok(None),
        }
    }

    /// The bifurcations between `a` and `b` (a step of length `h`), on branch `branch`.
    fn detect(
        &self,
        a: &Node,
        b: &Node,
        h: f64,
        branch: usize,
    ) -> Result<Vec<Bifurcation>, LyapunovError> {
        let n = self.base.n();
        let mut found = Vec::new();
        let mut push = |kind: BifurcationKind, node: &Node, omega: Option<f64>| {
            found.push(Bifurcation {
                kind,
                param: node.p(),
                y: node.u[..n].to_vec(),
                a: node.u[n..2 * n].to_vec(),
                branch,
                omega,
                eigenvalues: node.lin.eigenvalues.clone(),
            });
        };
        let fold = a.fold_sign() != b.fold_sign();
        if fold {
            if let Some(node) = self.locate(a, h, &|nd: &Node| Some(nd.fold_sign()))? {
                push(BifurcationKind::Fold, &node, None);
            }
        } else if a.det_sign() != b.det_sign()
            && let Some(node) = self.locate(a, h, &|nd: &Node| Some(nd.det_sign()))?
        {
            push(BifurcationKind::BranchPoint, &node, None);
        }
        if let (Some(ca), Some(cb)) = (a.leading_complex(), b.leading_complex())
            && (ca.0 > 0.0) != (cb.0 > 0.0)
        {
            let sign = |nd: &Node| nd.leading_complex().map(|c| c.0 > 0.0);
            if let Some(node) = self.locate(a, h, &sign)?
                && let Some(c) = node.leading_complex()
            {
                push(BifurcationKind::Hopf, &node, Some(c.1));
            }
        }
        Ok(found)
    }

    /// Follow the branch from the fixed point `x0` at `p0`, towards `direction` (±1) in `p`.
    fn follow(
        &self,
        x0: &[f64],
        p0: f64,
        direction: f64,
        opts: &ContinuationOptions,
        branch: usize,
    ) -> Result<(Branch, Vec<Bifurcation>), LyapunovError> {
        let m = self.m();
        let n = self.base.n();
        let range = (self.hi - self.lo).abs();
        let h_max = opts.max_step.unwrap_or(range / 50.0);
        let h_min = h_max * opts.min_step_ratio;
        let mut u0 = x0.to_vec();
        u0.push(p0);
        let mut e_p = vec![0.0; m + 1];
        e_p[m] = direction;
        let Some(mut cur) = self.node(u0, &e_p)? else {
            return Err(LyapunovError::NotApplicable {
                what: "continuation",
                reason: "the seed is a singular point of the branch (no tangent)",
            });
        };
        // At a fold seed t_p = 0 and either direction is as good; else go towards `direction`.
        if cur.p_tangent() * direction < 0.0 {
            cur.t.iter_mut().for_each(|v| *v = -*v);
        }
        let mut points = vec![cur.point(n)];
        let mut bifurcations = Vec::new();
        let mut h = 0.25 * h_max;
        let end = loop {
            if points.len() >= opts.max_points {
                break BranchEnd::MaxPoints;
            }
            if h < h_min {
                break BranchEnd::StepUnderflow;
            }
            let pred: Vec<f64> = cur.u.iter().zip(&cur.t).map(|(u, t)| u + h * t).collect();
            let Some((u, iters)) = self.correct(&pred, &cur.t, 0.5 * h)? else {
                if !self.in_domain(&pred) && h <= 2.0 * h_min {
                    break BranchEnd::LeftDomain;
                }
                h *= 0.5;
                continue;
            };
            let Some(next) = self.node(u, &cur.t)? else {
                h *= 0.5;
                continue;
            };
            // cos 25° ≈ 0.9: a sharper turn means the step skipped over structure.
            if dot(&next.t, &cur.t) < 0.9 {
                h *= 0.5;
                continue;
            }
            let p = next.p();
            if p < self.lo || p > self.hi {
                let bound = if p < self.lo { self.lo } else { self.hi };
                let s = (bound - cur.p()) / (p - cur.p());
                let x: Vec<f64> = (0..m)
                    .map(|i| cur.u[i] + s * (next.u[i] - cur.u[i]))
                    .collect();
                if let Some(ub) = self.natural(&x, bound)?
                    && let Some(last) = self.node(ub, &cur.t)?
                {
                    let shift: Vec<f64> = last.u.iter().zip(&cur.u).map(|(a, b)| a - b).collect();
                    let step = dot(&shift, &cur.t);
                    if step > 0.0 {
                        bifurcations.extend(self.detect(&cur, &last, step, branch)?);
                    }
                    points.push(last.point(n));
                }
                break BranchEnd::Boundary;
            }
            bifurcations.extend(self.detect(&cur, &next, h, branch)?);
            let was_stable = cur.lin.verdict == Verdict::Stable;
            points.push(next.point(n));
            let lost = was_stable && next.lin.verdict != Verdict::Stable;
            cur = next;
            if lost && opts.stop == StopRule::FirstLossOfStability {
                break BranchEnd::LostStability;
            }
            if iters <= 3 {
                h = (1.5 * h).min(h_max);
            }
        };
        Ok((Branch { points, end }, bifurcations))
    }
}

/// Whether `x` at `p` is already a point (within `1e-6` relative) at an end of a found branch.
fn covered(branches: &[Branch], x: &[f64], p: f64, n: usize) -> bool {
    branches.iter().any(|b| {
        [b.points.first(), b.points.last()]
            .into_iter()
            .flatten()
            .any(|q| {
                let scale = 1.0 + inf_norm(x);
                (q.param - p).abs() <= 1e-9 * (1.0 + p.abs())
                    && (0..n).all(|i| {
                        (q.y[i] - x[i]).abs() <= 1e-6 * scale
                            && (q.a[i] - x[n + i]).abs() <= 1e-6 * scale
                    })
            })
    })
}

/// Follow the fixed-point branches of `circuit` as `param` moves from `from` to `to` (module
/// docs): for n = 1 every branch through a fixed point at either end, for n > 1 the branch
/// through the steady state at `from`.
///
/// # Errors
/// [`LyapunovError::BadOption`] for a bad interval, the errors of the seeding (n > 1: no steady
/// state at `from`), and circuit / eigensolver errors.
pub fn continuation(
    circuit: &Circuit,
    param: Parameter,
    from: f64,
    to: f64,
    opts: &ContinuationOptions,
) -> Result<Continuation, LyapunovError> {
    param.check(from)?;
    param.check(to)?;
    if (from - to).abs() == 0.0 {
        return Err(LyapunovError::BadOption {
            option: "to",
            value: to,
            reason: "must differ from --from",
        });
    }
    let tracker = Tracker {
        base: circuit,
        param,
        lo: from.min(to),
        hi: from.max(to),
    };
    let n = circuit.n();
    let mut seeds: Vec<(Vec<f64>, f64, f64)> = Vec::new();
    let toward = (to - from).signum();
    if n == 1 {
        for (p, dir) in [(from, toward), (to, -toward)] {
            for fp in fixed_points(&param.circuit_at(circuit, p)?)? {
                seeds.push((vec![fp.y, fp.a], p, dir));
            }
        }
    } else {
        let at = param.circuit_at(circuit, from)?;
        let ss = steady_state(&at, Method::Auto)?;
        let report = ss.report.into_result(1e-9)?;
        seeds.push((report.state(), from, toward));
    }
    let mut branches = Vec::new();
    let mut bifurcations = Vec::new();
    for (x, p, dir) in seeds {
        if covered(&branches, &x, p, n) {
            continue;
        }
        let (b, bif) = tracker.follow(&x, p, dir, opts, branches.len())?;
        branches.push(b);
        bifurcations.extend(bif);
    }
    Ok(Continuation {
        param,
        branches,
        bifurcations,
    })
}

/// Where the steady state of `circuit` first loses stability as `param` moves from `from`
/// towards `to`: the branch through the steady state at `from`, stopped at its first point that
/// is not stable ([`StopRule::FirstLossOfStability`]). Returns the branch and the bifurcation
/// located in its last step (`None` when the branch stays stable to `to`, or when stability was
/// lost without a located fold, Hopf or branch point — e.g. a marginal verdict).
///
/// # Errors
/// As [`continuation`].
pub fn first_instability(
    circuit: &Circuit,
    param: Parameter,
    from: f64,
    to: f64,
    opts: &ContinuationOptions,
) -> Result<(Branch, Option<Bifurcation>), LyapunovError> {
    param.check(from)?;
    param.check(to)?;
    let tracker = Tracker {
        base: circuit,
        param,
        lo: from.min(to),
        hi: from.max(to),
    };
    let at = param.circuit_at(circuit, from)?;
    let ss = steady_state(&at, Method::Auto)?;
    let report = ss.report.into_result(1e-9)?;
    let opts = ContinuationOptions {
        stop: StopRule::FirstLossOfStability,
        ..opts.clone()
    };
    let (branch, bifs) = tracker.follow(&report.state(), from, (to - from).signum(), &opts, 0)?;
    let first = if branch.end == BranchEnd::LostStability {
        bifs.into_iter().last()
    } else {
        None
    };
    Ok((branch, first))
}
