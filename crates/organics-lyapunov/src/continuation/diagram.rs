//! The bifurcation diagram of a [`Continuation`]: the parameter across, `y` (n = 1) or `‖y‖₂`
//! (n > 1) up; stable stretches of a branch solid, the others dashed; folds as black
//! triangles, Hopf points as red squares, branch points as blue diamonds.

use super::{BifurcationKind, Continuation};
use crate::error::LyapunovError;
use crate::portrait::{Format, format_of, register_fonts};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const BRANCH: RGBColor = RGBColor(20, 60, 140);
const FOLD: RGBColor = RGBColor(0, 0, 0);
const HOPF: RGBColor = RGBColor(210, 30, 30);
const BP: RGBColor = RGBColor(0, 130, 200);

/// The vertical coordinate of a state.
fn height(y: &[f64]) -> f64 {
    if y.len() == 1 {
        y[0]
    } else {
        y.iter().map(|v| v * v).sum::<f64>().sqrt()
    }
}

/// Split a branch into runs of equal stability (each run shares its end point with the next,
/// so the drawn curve is continuous).
fn runs(points: &[(f64, f64, bool)]) -> Vec<(bool, Vec<(f64, f64)>)> {
    let mut out: Vec<(bool, Vec<(f64, f64)>)> = Vec::new();
    for &(x, y, stable) in points {
        match out.last_mut() {
            Some((s, run)) if *s == stable => run.push((x, y)),
            Some((_, run)) => {
                let joint = *run.last().expect("runs are never empty");
                out.push((stable, vec![joint, (x, y)]));
            }
            None => out.push((stable, vec![(x, y)])),
        }
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &Continuation,
    n: usize,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let pts: Vec<Vec<(f64, f64, bool)>> = c
        .branches
        .iter()
        .map(|b| {
            b.points
                .iter()
                .map(|q| (q.param, height(&q.y), q.stable))
                .collect()
        })
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y, _) in pts.iter().flatten() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |lo: f64, hi: f64| {
        let d = (hi - lo).max(1e-9 * (1.0 + hi.abs())) * 0.06;
        (lo - d, hi + d)
    };
    let (x0, x1) = pad(x0, x1);
    let (y0, y1) = pad(y0, y1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("fixed-point branches in {}", c.param.name()),
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let y_desc = if n == 1 {
        "y at the fixed point"
    } else {
        "‖y‖₂ at the fixed point"
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(c.param.name())
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .draw()?;
    let (mut stable_drawn, mut unstable_drawn) = (false, false);
    for branch in &pts {
        for (stable, run) in runs(branch) {
            if stable {
                let s = chart.draw_series(LineSeries::new(run, BRANCH.stroke_width(3)))?;
                if !std::mem::replace(&mut stable_drawn, true) {
                    s.label("stable").legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], BRANCH.stroke_width(3))
                    });
                }
            } else {
                let s =
                    chart.draw_series(DashedLineSeries::new(run, 8, 6, BRANCH.stroke_width(2)))?;
                if !std::mem::replace(&mut unstable_drawn, true) {
                    s.label("unstable").legend(|(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (10, 0)], BRANCH.stroke_width(2))
                            + PathElement::new(vec![(15, 0), (24, 0)], BRANCH.stroke_width(2))
                    });
                }
            }
        }
    }
    for kind in [
        BifurcationKind::Fold,
        BifurcationKind::Hopf,
        BifurcationKind::BranchPoint,
    ] {
        let at: Vec<(f64, f64)> = c
            .bifurcations
            .iter()
            .filter(|b| b.kind == kind)
            .map(|b| (b.param, height(&b.y)))
            .collect();
        if at.is_empty() {
            continue;
        }
        let color = match kind {
            BifurcationKind::Fold => FOLD,
            BifurcationKind::Hopf => HOPF,
            BifurcationKind::BranchPoint => BP,
        };
        let marker = move |p: (f64, f64)| match kind {
            BifurcationKind::Fold => {
                EmptyElement::at(p) + Polygon::new(vec![(0, -9), (-8, 6), (8, 6)], color.filled())
            }
            BifurcationKind::Hopf => {
                EmptyElement::at(p)
                    + Polygon::new(vec![(-7, -7), (7, -7), (7, 7), (-7, 7)], color.filled())
            }
            BifurcationKind::BranchPoint => {
                EmptyElement::at(p)
                    + Polygon::new(vec![(0, -9), (8, 0), (0, 9), (-8, 0)], color.filled())
            }
        };
        chart
            .draw_series(at.into_iter().map(marker))?
            .label(kind.name())
            .legend(move |(x, y)| marker_legend(kind, color, (x + 12, y)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn marker_legend(kind: BifurcationKind, color: RGBColor, at: (i32, i32)) -> Polygon<(i32, i32)> {
    let (x, y) = at;
    let pts = match kind {
        BifurcationKind::Fold => vec![(x, y - 7), (x - 6, y + 5), (x + 6, y + 5)],
        BifurcationKind::Hopf => vec![
            (x - 6, y - 6),
            (x + 6, y - 6),
            (x + 6, y + 6),
            (x - 6, y + 6),
        ],
        BifurcationKind::BranchPoint => vec![(x, y - 7), (x + 6, y), (x, y + 7), (x - 6, y)],
    };
    Polygon::new(pts, color.filled())
}

/// Draw the bifurcation diagram of `c` (a circuit with `n` neurons) to `out` (SVG or PNG by
/// extension).
///
/// # Errors
/// [`LyapunovError::FigureFormat`] for another extension, [`LyapunovError::Draw`] when the
/// file cannot be written.
pub fn bifurcation_diagram(c: &Continuation, n: usize, out: &Path) -> Result<(), LyapunovError> {
    let format = format_of(out)?;
    register_fonts();
    let size = (900, 640);
    let err = |e: String| LyapunovError::Draw {
        path: out.to_path_buf(),
        message: e,
    };
    match format {
        Format::Svg => draw(SVGBackend::new(out, size).into_drawing_area(), c, n)
            .map_err(|e| err(e.to_string())),
        Format::Png => draw(BitMapBackend::new(out, size).into_drawing_area(), c, n)
            .map_err(|e| err(e.to_string())),
    }
}
