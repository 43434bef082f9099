//! The conjecture experiment's bookkeeping, on a few seeded circuits.

use organics_core::Model;
use organics_lyapunov::LyapunovError;
use organics_lyapunov::conjecture::{
    ConjectureOptions, TrialOutcome, conjecture_experiment, conjecture_table, conjecture_trial,
};

#[test]
fn rows_count_every_trial_and_stable_points_have_negative_abscissa() {
    let opts = ConjectureOptions {
        trials: 6,
        norms: vec![1.0, 3.0],
        ..ConjectureOptions::default()
    };
    let rows = conjecture_experiment(&opts).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(
            r.stable + r.stable_late + r.unstable + r.not_settled,
            r.trials
        );
        assert!((r.fraction_stable - r.stable as f64 / 6.0).abs() < 1e-15);
        if r.stable + r.stable_late > 0 {
            assert!(r.worst_stable_abscissa < 0.0);
        }
    }
    // Each trial is reproducible from its seed.
    let a = conjecture_trial(Model::Main, 10, 1.0, opts.seed).unwrap();
    let b = conjecture_trial(Model::Main, 10, 1.0, opts.seed).unwrap();
    assert_eq!(a, b);
    assert!(matches!(a, TrialOutcome::Stable { abscissa, .. } if abscissa < 0.0));
    let table = conjecture_table(&rows);
    assert_eq!(table.lines().count(), 4);
}

#[test]
fn bad_options_are_errors() {
    let bad = ConjectureOptions {
        norms: vec![-1.0],
        ..ConjectureOptions::default()
    };
    assert!(matches!(
        conjecture_experiment(&bad),
        Err(LyapunovError::BadOption {
            option: "wr_norm",
            ..
        })
    ));
    let none = ConjectureOptions {
        trials: 0,
        ..ConjectureOptions::default()
    };
    assert!(conjecture_experiment(&none).is_err());
}
