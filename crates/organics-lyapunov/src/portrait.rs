//! Phase portraits of the one-neuron circuit as SVG or PNG figures (plotters).
//!
//! A portrait shows, over a window of the `(y, a)` plane (docs/model.md#figures: `y ∈ [y*−3, y*+3]`,
//! `a ∈ [a*−3, a*+5]` for the main model and `a ∈ [a*−3, a*+3]` for the rectified one, around
//! the primary stable fixed point `(y*, a*)`):
//! - **streamlines** of `(dy/dt, da/dt)`, drawn like matplotlib's `streamplot`: the window is
//!   divided into `30 · density` cells per axis; lines are started from free cells (outer cells
//!   first, spiralling inwards), integrated forwards and backwards along the unit direction field
//!   (midpoint rule, a quarter cell per step, in axes-normalised coordinates), and stopped when
//!   they enter a cell another line (or an earlier part of the same line) already crossed, leave
//!   the window, or would step over a zero of the field (the direction turns back); lines shorter than a tenth of the axes are dropped.
//!   An arrowhead at the middle of each line gives the direction of time;
//! - the y-nullcline (orange) and the a-nullcline (green), [`crate::planar::nullclines()`]
//!   (exact curves, stroked with sub-pixel accuracy: anti-aliased coverage in PNG,
//!   simplified polylines in SVG);
//! - the stable manifolds of saddles (purple), [`crate::planar::stable_manifolds()`], the
//!   separatrices that bound the basins of attraction;
//! - stable fixed points as red stars, saddles as open black diamonds and the other unstable
//!   points as black circles (the legend lists only what is drawn),
//!   [`crate::planar::fixed_points()`];
//! - optional trajectories from chosen initial conditions (RK4), in dark blue.
//!
//! Text uses the DejaVu Sans font bundled with the crate, so figures render on machines without
//! system fonts.

use crate::classify::Kind;
use crate::error::LyapunovError;
use crate::planar::{
    FixedPoint2D, Nullclines, PlaneCircuit, StableManifold, Window, fixed_points, nullclines,
    stable_manifolds, trajectory,
};
use crate::stroke::{coverage, dashes, simplify};
use organics_core::{Circuit, Model};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};

/// Options of [`phase_portrait`].
#[derive(Debug, Clone, PartialEq)]
pub struct PortraitOptions {
    /// The window; `None` picks the paper's window around the primary stable fixed point
    /// ([`Window::around`]).
    pub window: Option<Window>,
    /// Image width in pixels (the SVG's nominal width).
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Streamline density (matplotlib's meaning: 30 · density cells per axis). The paper uses 1.5.
    pub density: f64,
    /// Title; `None` gives the model's name ("main model (Eq. 16)" or "rectified model (Eq. 102)").
    pub title: Option<String>,
    /// Initial conditions `(y, a)` of trajectories to overlay.
    pub trajectories: Vec<[f64; 2]>,
    /// Duration of each overlaid trajectory (time unit of τ).
    pub trajectory_time: f64,
}

impl Default for PortraitOptions {
    fn default() -> Self {
        Self {
            window: None,
            width: 900,
            height: 820,
            density: 1.5,
            title: None,
            trajectories: Vec::new(),
            trajectory_time: 50.0,
        }
    }
}

/// What a portrait shows, returned by [`phase_portrait`].
#[derive(Debug, Clone, PartialEq)]
pub struct Portrait {
    /// The window drawn.
    pub window: Window,
    /// Every fixed point of the circuit (also those outside the window).
    pub fixed_points: Vec<FixedPoint2D>,
    /// Number of streamlines drawn.
    pub streamlines: usize,
    /// The stable manifolds of the saddles in the window (drawn).
    pub stable_manifolds: Vec<StableManifold>,
}

/// The figure format, from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Svg,
    Png,
}

pub(crate) fn format_of(path: &Path) -> Result<Format, LyapunovError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => Ok(Format::Svg),
        Some("png") => Ok(Format::Png),
        _ => Err(LyapunovError::FigureFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Register the bundled DejaVu Sans as plotters' `sans-serif` (once per process).
pub(crate) fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bundled font is a valid TrueType file; a failure would leave text undrawable and
        // is reported by the drawing calls themselves.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Everything drawn, computed before touching a backend.
struct Scene {
    window: Window,
    fixed_points: Vec<FixedPoint2D>,
    nullclines: Nullclines,
    streamlines: Vec<Vec<(f64, f64)>>,
    /// Arrowheads: position and direction, in data coordinates.
    arrows: Vec<((f64, f64), (f64, f64))>,
    trajectories: Vec<Vec<(f64, f64)>>,
    manifolds: Vec<StableManifold>,
    title: String,
    subtitle: String,
}

/// The primary stable fixed point: the stable one with the largest `a` (for the paper's
/// panels, the only stable one), else the first.
fn primary(fps: &[FixedPoint2D]) -> Option<&FixedPoint2D> {
    fps.iter()
        .filter(|f| f.stable)
        .max_by(|u, v| u.a.total_cmp(&v.a))
        .or_else(|| fps.first())
}

/// The window a portrait draws when none is given: the paper's window ([`Window::around`])
/// around the primary stable fixed point of `fixed_points` (the stable one with the largest
/// `a`, else the first; the origin when there is none).
pub fn default_window(model: Model, fixed_points: &[FixedPoint2D]) -> Window {
    let (y, a) = primary(fixed_points).map_or((0.0, 0.0), |f| (f.y, f.a));
    Window::around(y, a, model)
}

/// A short decimal: up to four significant decimals, trailing zeros removed.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

fn parameters(circuit: &Circuit, plane: &PlaneCircuit<'_>) -> String {
    format!(
        "w_r = {}, w = {}, b = {}, b0 = {}, σ = {}, z = {}, τ_y = {} ms, τ_a = {} ms",
        num(plane.w_r()),
        num(plane.w()),
        num(circuit.b()[0]),
        num(circuit.b0()[0]),
        num(circuit.sigma()[0]),
        num(circuit.z()[0]),
        num(circuit.tau_y()[0]),
        num(circuit.tau_a()[0]),
    )
}

/// Streamlines of a planar field over `window` (module docs). Returns the lines and one
/// arrowhead per line, in data coordinates.
#[allow(clippy::type_complexity)]
fn streamlines(
    field: &dyn Fn(f64, f64) -> (f64, f64),
    window: &Window,
    density: f64,
) -> (Vec<Vec<(f64, f64)>>, Vec<((f64, f64), (f64, f64))>) {
    let cells = ((30.0 * density).round() as usize).clamp(4, 400);
    let (w, h) = (window.y_max - window.y_min, window.a_max - window.a_min);
    let to_data = |(u, v): (f64, f64)| (window.y_min + u * w, window.a_min + v * h);
    // Unit direction of the field in axes-normalised coordinates, or None at a zero.
    let dir = |u: f64, v: f64| -> Option<(f64, f64)> {
        let (y, a) = to_data((u, v));
        let (fy, fa) = field(y, a);
        let (du, dv) = (fy / w, fa / h);
        let s = du.hypot(dv);
        (s.is_finite() && s > 1e-14).then(|| (du / s, dv / s))
    };
    let cell_of = |u: f64, v: f64| -> Option<usize> {
        if !(0.0..1.0).contains(&u) || !(0.0..1.0).contains(&v) {
            return None;
        }
        let i = ((u * cells as f64) as usize).min(cells - 1);
        let j = ((v * cells as f64) as usize).min(cells - 1);
        Some(j * cells + i)
    };
    let ds = 0.25 / cells as f64;
    let mut occupied = vec![false; cells * cells];
    let mut lines = Vec::new();
    let mut arrows = Vec::new();

    // Seed cells from the boundary inwards (as matplotlib does), so lines enter from the edges.
    let mut order = Vec::with_capacity(cells * cells);
    let (mut lo, mut hi) = (0usize, cells - 1);
    while lo <= hi {
        for i in lo..=hi {
            order.push((i, lo));
        }
        for j in lo + 1..=hi {
            order.push((hi, j));
        }
        if hi > lo {
            for i in (lo..hi).rev() {
                order.push((i, hi));
            }
            for j in (lo + 1..hi).rev() {
                order.push((lo, j));
            }
        }
        lo += 1;
        if hi == 0 {
            break;
        }
        hi -= 1;
    }

    for (i, j) in order {
        let seed_cell = j * cells + i;
        if occupied[seed_cell] {
            continue;
        }
        let start = (
            (i as f64 + 0.5) / cells as f64,
            (j as f64 + 0.5) / cells as f64,
        );
        let mut mine = vec![seed_cell];
        occupied[seed_cell] = true;
        let mut halves: [Vec<(f64, f64)>; 2] = [vec![start], vec![start]];
        for (half, sign) in halves.iter_mut().zip([1.0, -1.0]) {
            let (mut u, mut v) = start;
            let mut cell = seed_cell;
            for _ in 0..(40 * cells) {
                let Some((d1u, d1v)) = dir(u, v) else { break };
                let (mu, mv) = (u + 0.5 * sign * ds * d1u, v + 0.5 * sign * ds * d1v);
                let Some((d2u, d2v)) = dir(mu, mv) else { break };
                let (nu, nv) = (u + sign * ds * d2u, v + sign * ds * d2v);
                // Stop before stepping over a zero of the field (the direction turns back).
                match dir(nu, nv) {
                    Some((d3u, d3v)) if d3u * d2u + d3v * d2v > 0.0 => {}
                    _ => break,
                }
                let Some(next) = cell_of(nu, nv) else { break };
                if next != cell {
                    if occupied[next] {
                        break;
                    }
                    occupied[next] = true;
                    mine.push(next);
                    cell = next;
                }
                u = nu;
                v = nv;
                half.push((u, v));
            }
        }
        let [forward, backward] = halves;
        let mut line: Vec<(f64, f64)> = backward.into_iter().rev().collect();
        line.extend(forward.into_iter().skip(1));
        let length: f64 = line
            .windows(2)
            .map(|p| (p[1].0 - p[0].0).hypot(p[1].1 - p[0].1))
            .sum();
        if length < 0.1 {
            for c in mine {
                occupied[c] = false;
            }
            occupied[seed_cell] = true;
            continue;
        }
        // Arrowhead at half the arc length, pointing forward in time.
        let mut acc = 0.0;
        for p in line.windows(2) {
            acc += (p[1].0 - p[0].0).hypot(p[1].1 - p[0].1);
            if acc >= 0.5 * length {
                let a = to_data(p[0]);
                let b = to_data(p[1]);
                arrows.push((b, (b.0 - a.0, b.1 - a.1)));
                break;
            }
        }
        lines.push(line.into_iter().map(to_data).collect());
    }
    (lines, arrows)
}

fn scene(circuit: &Circuit, opts: &PortraitOptions) -> Result<Scene, LyapunovError> {
    let plane = PlaneCircuit::new(circuit)?;
    if !(opts.density.is_finite() && opts.density > 0.0) {
        return Err(LyapunovError::BadOption {
            option: "density",
            value: opts.density,
            reason: "must be a finite number > 0",
        });
    }
    if opts.width < 200 || opts.height < 200 {
        return Err(LyapunovError::BadOption {
            option: "width/height",
            value: f64::from(opts.width.min(opts.height)),
            reason: "a readable portrait needs at least 200 x 200 pixels",
        });
    }
    let fps = fixed_points(circuit)?;
    let window = opts
        .window
        .unwrap_or_else(|| default_window(circuit.model(), &fps));
    let nc = nullclines(circuit, &window, 400)?;
    let manifolds = stable_manifolds(circuit, &window, &fps)?;
    let field = |y: f64, a: f64| {
        let mut f = [0.0; 2];
        circuit.rhs(&[y, a], &mut f);
        (f[0], f[1])
    };
    let (lines, arrows) = streamlines(&field, &window, opts.density);
    let mut trajectories = Vec::new();
    for start in &opts.trajectories {
        let tau_min = circuit.tau_y()[0].min(circuit.tau_a()[0]);
        let t = trajectory(circuit, *start, opts.trajectory_time, 0.01 * tau_min)?;
        trajectories.push(t.y.into_iter().zip(t.a).collect());
    }
    let model = match circuit.model() {
        Model::Main => "main model (Eq. 16)",
        Model::Rectified => "rectified model (Eq. 102)",
    };
    Ok(Scene {
        window,
        fixed_points: fps,
        nullclines: nc,
        streamlines: lines,
        arrows,
        trajectories,
        manifolds,
        title: opts.title.clone().unwrap_or_else(|| model.to_string()),
        subtitle: parameters(circuit, &plane),
    })
}

/// A five-pointed star of outer radius `r` pixels, as offsets around its centre.
fn star(r: f64) -> Vec<(i32, i32)> {
    (0..10)
        .map(|k| {
            let rad = if k % 2 == 0 { r } else { 0.42 * r };
            let t = std::f64::consts::PI * (k as f64 / 5.0 - 0.5);
            (
                (rad * t.cos()).round() as i32,
                (rad * t.sin()).round() as i32,
            )
        })
        .collect()
}

/// The polygon's vertices with the first repeated at the end (an outline path).
fn closed(mut pts: Vec<(i32, i32)>) -> Vec<(i32, i32)> {
    if let Some(&p) = pts.first() {
        pts.push(p);
    }
    pts
}

/// Clip a polyline to the window (Liang–Barsky on each segment); the pieces inside.
fn clip(line: &[(f64, f64)], w: &Window) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for seg in line.windows(2) {
        let (p, q) = (seg[0], seg[1]);
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let mut visible = true;
        for (den, num) in [
            (-dx, p.0 - w.y_min),
            (dx, w.y_max - p.0),
            (-dy, p.1 - w.a_min),
            (dy, w.a_max - p.1),
        ] {
            if den == 0.0 {
                if num < 0.0 {
                    visible = false;
                }
            } else {
                let t = num / den;
                if den < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
        if !visible || t0 > t1 {
            if cur.len() > 1 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        let a = (p.0 + t0 * dx, p.1 + t0 * dy);
        let b = (p.0 + t1 * dx, p.1 + t1 * dy);
        if cur.is_empty() || t0 > 0.0 {
            if cur.len() > 1 {
                out.push(std::mem::take(&mut cur));
            }
            cur = vec![a];
        }
        cur.push(b);
        if t1 < 1.0 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// The legend's entries.
#[derive(Clone, Copy)]
enum Entry {
    Stream,
    YNull,
    ANull,
    Trajectory,
    Manifold,
    Stable,
    Unstable,
    Saddle,
}

impl Entry {
    fn label(self) -> &'static str {
        match self {
            Entry::Stream => "streamlines",
            Entry::YNull => "y-nullcline",
            Entry::ANull => "a-nullcline",
            Entry::Trajectory => "trajectory",
            Entry::Manifold => "separatrix (stable manifold of a saddle)",
            Entry::Stable => "stable f.p.",
            Entry::Unstable => "unstable node/focus",
            Entry::Saddle => "saddle",
        }
    }
}

/// A saddle: an open diamond (an unstable node or focus is a filled circle).
fn saddle_marker() -> Vec<(i32, i32)> {
    vec![(0, -9), (9, 0), (0, 9), (-9, 0)]
}

const STREAM: RGBColor = RGBColor(90, 120, 170);
const Y_NULL: RGBColor = RGBColor(230, 120, 0);
const A_NULL: RGBColor = RGBColor(0, 150, 80);
const STABLE: RGBColor = RGBColor(220, 20, 30);
const TRAJ: RGBColor = RGBColor(20, 30, 110);
const MANIFOLD: RGBColor = RGBColor(130, 40, 160);

/// Data-to-pixel map of the chart in floating point (plotters rounds to whole pixels): the
/// window's corners land on the same pixels as plotters puts them.
struct PixelMap {
    window: Window,
    /// Pixel x of `y_min` and `y_max`.
    x: (f64, f64),
    /// Pixel y of `a_min` and `a_max`.
    y: (f64, f64),
    /// The plotting area's pixel rectangle, `[x0, x1) × [y0, y1)`.
    clip: ((i32, i32), (i32, i32)),
}

impl PixelMap {
    fn to_pixel(&self, (y, a): (f64, f64)) -> (f64, f64) {
        let w = &self.window;
        (
            self.x.0 + (self.x.1 - self.x.0) * (y - w.y_min) / (w.y_max - w.y_min),
            self.y.0 + (self.y.1 - self.y.0) * (a - w.a_min) / (w.a_max - w.a_min),
        )
    }
    fn to_data(&self, (px, py): (f64, f64)) -> (f64, f64) {
        let w = &self.window;
        (
            w.y_min + (w.y_max - w.y_min) * (px - self.x.0) / (self.x.1 - self.x.0),
            w.a_min + (w.a_max - w.a_min) * (py - self.y.0) / (self.y.1 - self.y.0),
        )
    }
}

/// Stroke a curve (data coordinates, already clipped to the window) `width` pixels wide,
/// smoothly in either format ([`crate::stroke`]).
fn stroke_curve<DB: DrawingBackend>(
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    map: &PixelMap,
    line: &[(f64, f64)],
    color: RGBColor,
    width: u32,
    format: Format,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB::ErrorType: 'static,
{
    let px: Vec<(f64, f64)> = line.iter().map(|&p| map.to_pixel(p)).collect();
    match format {
        Format::Svg => {
            // A quarter pixel: below what a viewer shows at 100 % zoom.
            let kept = simplify(&px, 0.25);
            let pts: Vec<(f64, f64)> = kept.into_iter().map(|p| map.to_data(p)).collect();
            chart
                .plotting_area()
                .draw(&PathElement::new(pts, color.stroke_width(width)))?;
        }
        Format::Png => {
            let screen = chart.plotting_area().use_screen_coord();
            for ((i, j), c) in coverage(&px, 0.5 * f64::from(width), map.clip.0, map.clip.1) {
                screen.draw_pixel((i, j), &color.mix(c))?;
            }
        }
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: &Scene,
    format: Format,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    let w = s.window;
    let inside =
        |f: &&FixedPoint2D| f.y >= w.y_min && f.y <= w.y_max && f.a >= w.a_min && f.a <= w.a_max;
    let stable: Vec<&FixedPoint2D> = s
        .fixed_points
        .iter()
        .filter(inside)
        .filter(|f| f.stable)
        .collect();
    let unstable: Vec<&FixedPoint2D> = s
        .fixed_points
        .iter()
        .filter(inside)
        .filter(|f| !f.stable && f.kind != Kind::Saddle)
        .collect();
    let saddles: Vec<&FixedPoint2D> = s
        .fixed_points
        .iter()
        .filter(inside)
        .filter(|f| !f.stable && f.kind == Kind::Saddle)
        .collect();
    let manifold_pieces: Vec<Vec<(f64, f64)>> = s
        .manifolds
        .iter()
        .flat_map(|m| m.branches.iter().flat_map(|b| clip(&b.points, &w)))
        .collect();
    // The legend lists only what is drawn: trajectories, separatrices and each kind of fixed
    // point when present. It is laid out in rows that fit the width.
    let mut entries = vec![Entry::Stream, Entry::YNull, Entry::ANull];
    if !s.trajectories.is_empty() {
        entries.push(Entry::Trajectory);
    }
    if !manifold_pieces.is_empty() {
        entries.push(Entry::Manifold);
    }
    if !stable.is_empty() {
        entries.push(Entry::Stable);
    }
    if !unstable.is_empty() {
        entries.push(Entry::Unstable);
    }
    if !saddles.is_empty() {
        entries.push(Entry::Saddle);
    }
    let font = ("sans-serif", 16).into_font().color(&BLACK);
    let mut placed = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (16i32, 0i32);
    for entry in entries {
        let (tw, _) = root.estimate_text_size(entry.label(), &font)?;
        let span = 32 + tw as i32 + 18;
        if x > 16 && x + span - 18 > width as i32 - 8 {
            x = 16;
            row += 1;
        }
        placed.push((entry, x, 22 + 28 * row));
        x += span;
    }
    let (head, rest) = root.split_vertically(70);
    let (_, height) = rest.dim_in_pixel();
    let (body, foot) = rest.split_vertically(height.saturating_sub(44 + 28 * row as u32));
    head.draw(&Text::new(
        s.title.clone(),
        (24, 10),
        ("sans-serif", 26).into_font().color(&BLACK),
    ))?;
    head.draw(&Text::new(
        s.subtitle.clone(),
        (24, 44),
        ("sans-serif", if width < 800 { 14 } else { 17 })
            .into_font()
            .color(&RGBColor(60, 60, 60)),
    ))?;
    let mut chart = ChartBuilder::on(&body)
        .margin_left(10)
        .margin_right(24)
        .margin_bottom(10)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(w.y_min..w.y_max, w.a_min..w.a_max)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("y  (principal-neuron membrane potential, dimensionless)")
        .y_desc("a  (modulator membrane potential, dimensionless)")
        .axis_desc_style(("sans-serif", 19))
        .label_style(("sans-serif", 16))
        .x_labels(8)
        .y_labels(8)
        .draw()?;

    let (px, py) = chart.plotting_area().dim_in_pixel();
    let (sx, sy) = (
        f64::from(px) / (w.y_max - w.y_min),
        f64::from(py) / (w.a_max - w.a_min),
    );
    let stream = STREAM.mix(0.85).stroke_width(1);
    for line in &s.streamlines {
        chart.draw_series(std::iter::once(PathElement::new(line.clone(), stream)))?;
    }
    // Arrowheads: triangles in pixel space, pointing along the data direction.
    chart.draw_series(s.arrows.iter().map(|&(at, (dy, da))| {
        let (ux, uy) = (dy * sx, -da * sy);
        let n = ux.hypot(uy).max(1e-12);
        let (ux, uy) = (ux / n, uy / n);
        let (len, half) = (11.0, 4.5);
        let tip = (0i32, 0i32);
        let l = (
            (-len * ux - half * uy).round() as i32,
            (-len * uy + half * ux).round() as i32,
        );
        let r = (
            (-len * ux + half * uy).round() as i32,
            (-len * uy - half * ux).round() as i32,
        );
        EmptyElement::at(at) + Polygon::new(vec![tip, l, r], STREAM.filled())
    }))?;

    let (x0, y0) = chart.backend_coord(&(w.y_min, w.a_min));
    let (x1, y1) = chart.backend_coord(&(w.y_max, w.a_max));
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let map = PixelMap {
        window: w,
        x: (f64::from(x0), f64::from(x1)),
        y: (f64::from(y0), f64::from(y1)),
        clip: ((xr.start, xr.end), (yr.start, yr.end)),
    };
    for line in s.nullclines.y_nullcline.iter().flat_map(|l| clip(l, &w)) {
        stroke_curve(&chart, &map, &line, Y_NULL, 3, format)?;
    }
    for line in s.nullclines.a_nullcline.iter().flat_map(|l| clip(l, &w)) {
        stroke_curve(&chart, &map, &line, A_NULL, 3, format)?;
    }
    // Dashed, so that a nullcline it runs along stays visible.
    for line in &manifold_pieces {
        let px: Vec<(f64, f64)> = line.iter().map(|&p| map.to_pixel(p)).collect();
        for dash in dashes(&px, 10.0, 6.0) {
            let data: Vec<(f64, f64)> = dash.into_iter().map(|p| map.to_data(p)).collect();
            stroke_curve(&chart, &map, &data, MANIFOLD, 3, format)?;
        }
    }
    for t in &s.trajectories {
        for line in clip(t, &w) {
            stroke_curve(&chart, &map, &line, TRAJ, 2, format)?;
        }
        if let Some(&p) = t.first() {
            chart.draw_series(std::iter::once(Circle::new(p, 4, TRAJ.filled())))?;
        }
    }
    chart.draw_series(stable.iter().map(|f| {
        EmptyElement::at((f.y, f.a))
            + Polygon::new(star(13.0), STABLE.filled())
            + PathElement::new(closed(star(13.0)), BLACK.stroke_width(1))
    }))?;
    chart.draw_series(
        unstable
            .iter()
            .map(|f| EmptyElement::at((f.y, f.a)) + Circle::new((0, 0), 7, BLACK.filled())),
    )?;
    chart.draw_series(saddles.iter().map(|f| {
        EmptyElement::at((f.y, f.a))
            + Polygon::new(saddle_marker(), WHITE.filled())
            + PathElement::new(closed(saddle_marker()), BLACK.stroke_width(2))
    }))?;

    // The legend, in its own band below the axes so that it never hides the flow.
    for (entry, x, y) in placed {
        let label = entry.label();
        let line =
            |c: RGBColor, w: u32| PathElement::new(vec![(x, y), (x + 26, y)], c.stroke_width(w));
        match entry {
            Entry::Stream => foot.draw(&line(STREAM, 2))?,
            Entry::YNull => foot.draw(&line(Y_NULL, 3))?,
            Entry::ANull => foot.draw(&line(A_NULL, 3))?,
            Entry::Trajectory => foot.draw(&line(TRAJ, 2))?,
            Entry::Manifold => {
                for k in 0..2 {
                    let x0 = x + 16 * k;
                    foot.draw(&PathElement::new(
                        vec![(x0, y), (x0 + 10, y)],
                        MANIFOLD.stroke_width(3),
                    ))?;
                }
            }
            Entry::Stable => foot.draw(
                &(EmptyElement::at((x + 13, y)) + Polygon::new(star(11.0), STABLE.filled())),
            )?,
            Entry::Unstable => foot.draw(&Circle::new((x + 13, y), 6, BLACK.filled()))?,
            Entry::Saddle => foot.draw(
                &(EmptyElement::at((x + 13, y))
                    + Polygon::new(saddle_marker(), WHITE.filled())
                    + PathElement::new(closed(saddle_marker()), BLACK.stroke_width(2))),
            )?,
        }
        foot.draw(&Text::new(label.to_string(), (x + 32, y - 9), font.clone()))?;
    }
    root.present()?;
    Ok(())
}

/// Draw the phase portrait of a one-neuron circuit to `out`; the format (SVG or PNG) follows
/// the file extension.
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1, [`LyapunovError::FigureFormat`] for another
/// extension, [`LyapunovError::BadOption`] for a bad density or size, and
/// [`LyapunovError::Draw`] when the file cannot be written.
pub fn phase_portrait(
    circuit: &Circuit,
    opts: &PortraitOptions,
    out: &Path,
) -> Result<Portrait, LyapunovError> {
    let format = format_of(out)?;
    let s = scene(circuit, opts)?;
    register_fonts();
    let size = (opts.width, opts.height);
    let err = |e: String| LyapunovError::Draw {
        path: out.to_path_buf(),
        message: e,
    };
    match format {
        Format::Svg => draw(SVGBackend::new(out, size).into_drawing_area(), &s, format)
            .map_err(|e| err(e.to_string()))?,
        Format::Png => draw(
            BitMapBackend::new(out, size).into_drawing_area(),
            &s,
            format,
        )
        .map_err(|e| err(e.to_string()))?,
    }
    Ok(Portrait {
        window: s.window,
        fixed_points: s.fixed_points,
        streamlines: s.streamlines.len(),
        stable_manifolds: s.manifolds,
    })
}

/// Render every panel of the paper's Figs. 1–3 ([`crate::panels::paper_panels`]: fig1a–f,
/// fig2a–f with negative drive, fig3a–c) into `dir` as `NAME.svg` and `NAME.png`; returns the
/// files written.
///
/// # Errors
/// [`LyapunovError::Io`] if `dir` cannot be created, and the errors of [`phase_portrait`].
pub fn render_paper_figures(dir: &Path) -> Result<Vec<PathBuf>, LyapunovError> {
    std::fs::create_dir_all(dir).map_err(|source| LyapunovError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for panel in crate::panels::paper_panels() {
        let opts = PortraitOptions {
            title: Some(format!("{}: {}", panel.name, model_title(&panel.circuit))),
            ..PortraitOptions::default()
        };
        for ext in ["svg", "png"] {
            let path = dir.join(format!("{}.{ext}", panel.name));
            phase_portrait(&panel.circuit, &opts, &path)?;
            files.push(path);
        }
    }
    Ok(files)
}

fn model_title(c: &Circuit) -> &'static str {
    match c.model() {
        Model::Main => "main model (Eq. 16)",
        Model::Rectified => "rectified model (Eq. 102)",
    }
}

#[cfg(test)]
mod tests {
    use super::{Window, clip, streamlines};

    #[test]
    fn streamlines_follow_the_field_and_fill_the_window() {
        // A stable node (−y, −2a) at the origin: every streamline runs towards it.
        let field = |y: f64, a: f64| (-y, -2.0 * a);
        let w = Window {
            y_min: -1.0,
            y_max: 1.0,
            a_min: -1.0,
            a_max: 1.0,
        };
        let (lines, arrows) = streamlines(&field, &w, 1.0);
        assert!(lines.len() > 20, "{} lines", lines.len());
        assert_eq!(lines.len(), arrows.len());
        for line in &lines {
            for p in line.windows(2) {
                let (fy, fa) = field(p[0].0, p[0].1);
                let (dy, da) = (p[1].0 - p[0].0, p[1].1 - p[0].1);
                // Consecutive points advance along the field (positive projection).
                assert!(fy * dy + fa * da >= 0.0, "{p:?}");
                assert!(p[1].0.abs() <= 1.0 && p[1].1.abs() <= 1.0);
            }
        }
        // Arrowheads point along the flow.
        for &((y, a), (dy, da)) in &arrows {
            let (fy, fa) = field(y, a);
            assert!(fy * dy + fa * da > 0.0);
        }
    }

    #[test]
    fn clipping_keeps_the_inside_pieces() {
        let w = Window {
            y_min: 0.0,
            y_max: 1.0,
            a_min: 0.0,
            a_max: 1.0,
        };
        // In, out through the top, back in: two pieces, cut exactly at the boundary.
        let line = [(0.5, 0.5), (0.5, 1.5), (0.8, 0.5)];
        let pieces = clip(&line, &w);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!((pieces[0][1].1 - 1.0).abs() < 1e-15 && (pieces[1][0].1 - 1.0).abs() < 1e-15);
        assert!(clip(&[(2.0, 2.0), (3.0, 3.0)], &w).is_empty());
    }
}
