//! Smooth strokes of curves on the figures' pixel grid.
//!
//! plotters hands every backend integer pixel coordinates, and draws a line wider than one
//! pixel as one polygon per segment with its corners truncated to integers; a curve sampled
//! every few pixels then comes out as a staircase. Two remedies, one per format:
//!
//! - **vector (SVG)**: the curve is simplified (Douglas–Peucker, tolerance `ε` pixels: every
//!   dropped point lies within `ε` of the kept chord), so that its vertices are far apart where
//!   it is straight and the ½-pixel rounding of each vertex turns a chord by at most
//!   `arctan(1/ℓ)` for a chord of `ℓ` pixels; the viewer strokes the polyline with
//!   anti-aliasing and joins;
//! - **raster (PNG)**: the stroke is rasterised here with sub-pixel accuracy. A pixel `(i, j)`
//!   (centre `(i + ½, j + ½)`) at distance `d` from the polyline (in floating-point pixel
//!   coordinates) gets the coverage `clamp(r + ½ − d, 0, 1)` of a line of half-width `r` under
//!   a one-pixel box filter, and is blended with the stroke colour at that opacity; each pixel
//!   is painted once, with the largest coverage over all segments, so joins are not darkened.

/// Douglas–Peucker simplification of a polyline in pixel coordinates: keeps both ends and
/// every point needed for each dropped point to lie within `tol` pixels of its chord.
pub(crate) fn simplify(points: &[(f64, f64)], tol: f64) -> Vec<(f64, f64)> {
    if points.len() < 3 {
        return points.to_vec();
    }
    let mut keep = vec![false; points.len()];
    keep[0] = true;
    keep[points.len() - 1] = true;
    let mut stack = vec![(0usize, points.len() - 1)];
    while let Some((lo, hi)) = stack.pop() {
        if hi <= lo + 1 {
            continue;
        }
        let (far, dist) = (lo + 1..hi)
            .map(|k| (k, segment_distance(points[k], points[lo], points[hi])))
            .fold((lo, -1.0), |best, c| if c.1 > best.1 { c } else { best });
        if dist > tol {
            keep[far] = true;
            stack.push((lo, far));
            stack.push((far, hi));
        }
    }
    points
        .iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

/// Cut a polyline (pixel coordinates) into dashes `on` pixels long with gaps of `off` pixels,
/// measured along the curve.
pub(crate) fn dashes(line: &[(f64, f64)], on: f64, off: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    // Position within the current on/off period, and whether the pen is down.
    let (mut pos, mut down) = (0.0, true);
    if let Some(&p) = line.first() {
        cur.push(p);
    }
    for seg in line.windows(2) {
        let (a, b) = (seg[0], seg[1]);
        let len = (b.0 - a.0).hypot(b.1 - a.1);
        let mut done = 0.0;
        while done < len {
            let left = if down { on - pos } else { off - pos };
            let step = left.min(len - done);
            done += step;
            pos += step;
            let t = done / len;
            let p = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            if down {
                cur.push(p);
            }
            if pos >= if down { on } else { off } {
                if down && cur.len() > 1 {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
                down = !down;
                pos = 0.0;
                if down {
                    cur.push(p);
                }
            }
        }
    }
    if down && cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// The distance from `p` to the segment `[a, b]`.
pub(crate) fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
}

/// The pixels covered by a stroke of half-width `r` pixels along `line` (floating-point pixel
/// coordinates), clipped to the pixel rectangle `x ∈ [x0, x1)`, `y ∈ [y0, y1)`: each as
/// `((i, j), coverage)` with coverage in `(0, 1]` (module docs).
pub(crate) fn coverage(
    line: &[(f64, f64)],
    r: f64,
    (x0, x1): (i32, i32),
    (y0, y1): (i32, i32),
) -> Vec<((i32, i32), f64)> {
    if x1 <= x0 || y1 <= y0 || line.is_empty() {
        return Vec::new();
    }
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut cov = vec![0.0f64; w * h];
    let reach = r + 0.5;
    let segments: Vec<((f64, f64), (f64, f64))> = if line.len() == 1 {
        vec![(line[0], line[0])]
    } else {
        line.windows(2).map(|s| (s[0], s[1])).collect()
    };
    for (a, b) in segments {
        if !(a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite()) {
            continue;
        }
        // Pixels whose centre can be within `reach` of the segment.
        let i_lo = ((a.0.min(b.0) - reach - 0.5).floor() as i64).max(i64::from(x0));
        let i_hi = ((a.0.max(b.0) + reach - 0.5).ceil() as i64).min(i64::from(x1) - 1);
        let j_lo = ((a.1.min(b.1) - reach - 0.5).floor() as i64).max(i64::from(y0));
        let j_hi = ((a.1.max(b.1) + reach - 0.5).ceil() as i64).min(i64::from(y1) - 1);
        for j in j_lo..=j_hi {
            for i in i_lo..=i_hi {
                let d = segment_distance((i as f64 + 0.5, j as f64 + 0.5), a, b);
                let c = (reach - d).clamp(0.0, 1.0);
                let k = (j - i64::from(y0)) as usize * w + (i - i64::from(x0)) as usize;
                if c > cov[k] {
                    cov[k] = c;
                }
            }
        }
    }
    cov.iter()
        .enumerate()
        .filter(|(_, c)| **c > 0.0)
        .map(|(k, c)| {
            (
                (x0 + (k % w) as i32, y0 + (k / w) as i32),
                // A pixel fully inside the stroke is painted opaque.
                c.min(1.0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{coverage, dashes, segment_distance, simplify};

    #[test]
    fn dashes_alternate_along_the_arc_length() {
        // A 100-pixel line in dashes of 10 with gaps of 6: dashes start every 16 pixels and
        // are 10 long, the last one cut at the end (96..100).
        let d = dashes(&[(0.0, 0.0), (60.0, 0.0), (60.0, 40.0)], 10.0, 6.0);
        assert_eq!(d.len(), 7, "{d:?}");
        let length = |l: &Vec<(f64, f64)>| -> f64 {
            l.windows(2)
                .map(|s| (s[1].0 - s[0].0).hypot(s[1].1 - s[0].1))
                .sum()
        };
        for (k, dash) in d.iter().enumerate() {
            let want = if k < 6 { 10.0 } else { 4.0 };
            assert!((length(dash) - want).abs() < 1e-9, "{k}: {dash:?}");
        }
    }

    #[test]
    fn simplification_keeps_points_within_the_tolerance() {
        // A quarter circle of radius 100 px sampled every 0.1°: the kept chords stay within
        // the tolerance of every dropped point, and far fewer points remain.
        let pts: Vec<(f64, f64)> = (0..=900)
            .map(|k| {
                let t = (k as f64 * 0.1).to_radians();
                (100.0 * t.cos(), 100.0 * t.sin())
            })
            .collect();
        let tol = 0.2;
        let kept = simplify(&pts, tol);
        assert!(kept.len() < 40 && kept.len() > 4, "{}", kept.len());
        assert_eq!(kept.first(), pts.first());
        assert_eq!(kept.last(), pts.last());
        for p in &pts {
            let d = kept
                .windows(2)
                .map(|s| segment_distance(*p, s[0], s[1]))
                .fold(f64::INFINITY, f64::min);
            assert!(d <= tol + 1e-12, "{p:?} at {d}");
        }
        // A straight line keeps its ends only.
        let line: Vec<(f64, f64)> = (0..50).map(|k| (k as f64, 0.5 * k as f64)).collect();
        assert_eq!(simplify(&line, 0.01).len(), 2);
    }

    #[test]
    fn coverage_is_the_box_filtered_width() {
        // A horizontal stroke of half-width 1.5 along y = 10.5 (a pixel centre row): rows 9–11
        // are fully covered, rows 8 and 12 not at all (centre distance 2 > 1.5 + 0.5 − 0),
        // so each column carries exactly the stroke width 3.
        let cov = coverage(&[(0.0, 10.5), (20.0, 10.5)], 1.5, (0, 20), (0, 20));
        for i in 2..18 {
            let col: f64 = cov.iter().filter(|((x, _), _)| *x == i).map(|c| c.1).sum();
            assert!((col - 3.0).abs() < 1e-12, "column {i}: {col}");
        }
        // Offset by a quarter pixel, the coverage still sums to the width (3) in each column,
        // split unevenly between the edge rows: that is what makes the edge smooth.
        let cov = coverage(&[(0.0, 10.25), (20.0, 10.25)], 1.5, (0, 20), (0, 20));
        for i in 2..18 {
            let col: Vec<f64> = cov
                .iter()
                .filter(|((x, _), _)| *x == i)
                .map(|c| c.1)
                .collect();
            assert!((col.iter().sum::<f64>() - 3.0).abs() < 1e-12, "{col:?}");
            assert!(col.iter().any(|c| *c > 0.0 && *c < 1.0), "{col:?}");
        }
        // Nothing outside the clip rectangle.
        assert!(
            coverage(&[(0.0, 10.5), (20.0, 10.5)], 1.5, (5, 8), (0, 20))
                .iter()
                .all(|((x, _), _)| (5..8).contains(x))
        );
    }
}
