//! Figures as SVG and PNG from one drawing routine (plotters, embedded DejaVu fonts).
//!
//! Three kinds cover the paper's figures: line charts (with optional shaded bands and a log
//! y axis), heatmaps with a diverging colour map, and histograms.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Figure size in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (900, 620);

/// A colour-blind-friendly palette (Okabe–Ito), cycled by series index.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the dejavu crate; failure would be a build bug.
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| ())
            .expect("DejaVu Sans registers");
        plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
            .map_err(|_| ())
            .expect("DejaVu Sans Bold registers");
    });
}

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Draw on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Write `stem.svg` and `stem.png`; returns both paths.
pub fn save<F: Figure>(fig: &F, stem: &Path) -> Result<Vec<PathBuf>> {
    register_fonts();
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        fig.draw(&root)?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    }
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        fig.draw(&root)?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    Ok(vec![svg, png])
}

/// How a series is drawn.
#[derive(Debug, Clone)]
pub enum Style {
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
    /// Markers only.
    Points,
    /// A shaded band between `points` (upper) and these lower values.
    Band(Vec<f64>),
}

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (empty: no legend entry).
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Palette index.
    pub color: usize,
    /// Drawing style.
    pub style: Style,
}

impl Series {
    /// A solid line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            style: Style::Line,
        }
    }
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// x-axis label (with units).
    pub x_label: String,
    /// y-axis label (with units).
    pub y_label: String,
    /// Plot log10(y) with 10^k tick labels (non-positive values are dropped).
    pub log_y: bool,
    /// Fixed y range (in data units); else fitted.
    pub y_range: Option<(f64, f64)>,
    /// Series.
    pub series: Vec<Series>,
}

fn ty(log: bool, v: f64) -> Option<f64> {
    if !log {
        return v.is_finite().then_some(v);
    }
    (v > 0.0 && v.is_finite()).then(|| v.log10())
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = (hi - lo).abs().max(1e-12 * hi.abs().max(1.0));
    (lo - 0.05 * span, hi + 0.05 * span)
}

impl Figure for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let log = self.log_y;
        let pts = || self.series.iter().flat_map(|s| s.points.iter());
        let (xmin, xmax) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
        let ys = self.series.iter().flat_map(|s| {
            let lower = match &s.style {
                Style::Band(l) => l.clone(),
                _ => Vec::new(),
            };
            s.points.iter().map(|p| p.1).chain(lower)
        });
        let (ymin, ymax) = match self.y_range {
            Some((a, b)) => (ty(log, a).unwrap_or(-1.0), ty(log, b).unwrap_or(1.0)),
            None => padded_tuple(
                ys.filter_map(|v| ty(log, v))
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(v), b.max(v))
                    }),
            ),
        };
        let (xmin, xmax) = if xmin < xmax {
            (xmin, xmax)
        } else {
            (xmin - 0.5, xmin + 0.5)
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(xmin..xmax, ymin..ymax)
            .map_err(|e| anyhow!("{e}"))?;
        let fmt_y = |v: &f64| {
            if log { log_label(*v) } else { trim(*v) }
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .y_label_formatter(&fmt_y)
            .x_label_formatter(&|v| trim(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let mut any_label = false;
        for s in &self.series {
            let color = PALETTE[s.color % PALETTE.len()];
            let data: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|&(x, y)| ty(log, y).map(|y| (x, y)))
                .collect();
            let anno = match &s.style {
                Style::Line => chart.draw_series(LineSeries::new(data, color.stroke_width(2))),
                Style::Dashed => {
                    chart.draw_series(DashedLineSeries::new(data, 6, 4, color.stroke_width(2)))
                }
                Style::Points => {
                    chart.draw_series(data.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                }
                Style::Band(lower) => {
                    let mut poly: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .filter_map(|&(x, y)| ty(log, y).map(|y| (x, y)))
                        .collect();
                    let lows: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .zip(lower)
                        .rev()
                        .filter_map(|(&(x, _), &l)| {
                            ty(log, l).or(Some(ymin)).map(|l| (x, l.max(ymin)))
                        })
                        .collect();
                    poly.extend(lows);
                    chart.draw_series(std::iter::once(Polygon::new(
                        poly,
                        color.mix(0.12).filled(),
                    )))
                }
            }
            .map_err(|e| anyhow!("{e}"))?;
            if !s.label.is_empty() {
                any_label = true;
                anno.label(s.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            }
        }
        if any_label {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 16))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    }
}

fn padded_tuple((a, b): (f64, f64)) -> (f64, f64) {
    padded(a, b)
}

/// A tick label on a log10 axis: `1e2` at whole exponents, else the value (`3.2e1`).
fn log_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("1e{:.0}", v.round())
    } else {
        format!("{:.1e}", 10f64.powf(v))
    }
}

/// A short decimal label: integers without decimals, else up to 3 significant digits.
pub fn trim(v: f64) -> String {
    // Tick positions like 0.1 − 0.1 come out as ±1e-16: show them as 0.
    if v.abs() < 1e-12 {
        return "0".into();
    }
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else if v.abs() >= 0.01 && v.abs() < 1e4 {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// A matrix shown with a diverging blue–white–red colour map centred on zero.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// Title.
    pub title: String,
    /// Row-major values.
    pub values: Vec<f64>,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

fn diverging(t: f64) -> RGBColor {
    // t in [-1, 1]: blue (−) through white (0) to red (+).
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        let s = -t;
        (1.0 - 0.8 * s, 1.0 - 0.6 * s, 1.0 - 0.1 * s)
    } else {
        (1.0 - 0.1 * t, 1.0 - 0.8 * t, 1.0 - 0.8 * t)
    };
    RGBColor((255.0 * r) as u8, (255.0 * g) as u8, (255.0 * b) as u8)
}

impl Figure for Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let vmax = self
            .values
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-300);
        let (main, bar) = root.split_horizontally(SIZE.0 - 150);
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..self.cols as f64, self.rows as f64..0.0)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("column j")
            .y_desc("row i")
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(
                (0..self.rows)
                    .flat_map(|i| (0..self.cols).map(move |j| (i, j)))
                    .map(|(i, j)| {
                        let v = self.values[i * self.cols + j];
                        Rectangle::new(
                            [(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)],
                            diverging(v / vmax).filled(),
                        )
                    }),
            )
            .map_err(|e| anyhow!("{e}"))?;
        // Colour bar.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(60)
            .margin_bottom(60)
            .margin_right(20)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, -vmax..vmax)
            .map_err(|e| anyhow!("{e}"))?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .label_style(("sans-serif", 15))
            .y_label_formatter(&|v| trim(*v))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let steps = 100;
        cb.draw_series((0..steps).map(|k| {
            let lo = -vmax + 2.0 * vmax * k as f64 / steps as f64;
            let hi = lo + 2.0 * vmax / steps as f64;
            Rectangle::new(
                [(0.0, lo), (1.0, hi)],
                diverging((lo + hi) / (2.0 * vmax)).filled(),
            )
        }))
        .map_err(|e| anyhow!("{e}"))?;
        Ok(())
    }
}

/// A histogram of values in equal-width bins.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// The values.
    pub values: Vec<f64>,
    /// Number of bins.
    pub bins: usize,
    /// Palette index.
    pub color: usize,
}

impl Figure for Histogram {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = self
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo < hi {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        };
        let width = (hi - lo) / self.bins as f64;
        let mut counts = vec![0usize; self.bins];
        for &v in &self.values {
            let k = (((v - lo) / width) as usize).min(self.bins - 1);
            counts[k] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(lo - width..hi + width, 0.0..top)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc("count")
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .x_label_formatter(&|v| trim(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let color = PALETTE[self.color % PALETTE.len()];
        chart
            .draw_series(counts.iter().enumerate().map(|(k, &c)| {
                let x0 = lo + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], color.mix(0.8).filled())
            }))
            .map_err(|e| anyhow!("{e}"))?;
        Ok(())
    }
}
