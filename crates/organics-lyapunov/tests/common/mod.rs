//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// The largest distance between two eigenvalue lists under a greedy nearest matching: each
/// value of `a` is paired with the nearest unused value of `b`.
pub fn matching_distance(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    assert_eq!(a.len(), b.len(), "eigenvalue lists differ in length");
    let mut used = vec![false; b.len()];
    let mut worst: f64 = 0.0;
    for &(ar, ai) in a {
        let (k, d) = b
            .iter()
            .enumerate()
            .filter(|(k, _)| !used[*k])
            .map(|(k, &(br, bi))| (k, (ar - br).hypot(ai - bi)))
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .expect("lists have equal length");
        used[k] = true;
        worst = worst.max(d);
    }
    worst
}

/// The largest eigenvalue modulus of a list.
pub fn spectral_radius(v: &[(f64, f64)]) -> f64 {
    v.iter().fold(0.0, |m: f64, &(r, i)| m.max(r.hypot(i)))
}
