//! Phase-portrait files: both formats, the paper's panels, and bad input.

use organics_core::{Model, ensemble};
use organics_lyapunov::panels::paper_panels;
use organics_lyapunov::{LyapunovError, PortraitOptions, phase_portrait, render_paper_figures};
use std::path::PathBuf;

/// A fresh scratch directory, removed when dropped.
struct Scratch(PathBuf);
impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("organics-lyapunov-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn svg_and_png_are_written_with_text_and_fixed_points() {
    let dir = Scratch::new("formats");
    let p = &paper_panels()[1]; // fig1b: one stable and two unstable fixed points
    let opts = PortraitOptions {
        trajectories: vec![[-1.5, 3.0]],
        ..PortraitOptions::default()
    };
    let svg = dir.0.join("b.svg");
    let info = phase_portrait(&p.circuit, &opts, &svg).unwrap();
    assert_eq!(info.fixed_points.len(), 3);
    assert!(info.streamlines > 30);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    for needle in [
        "main model",
        "y-nullcline",
        "stable f.p.",
        // fig1b's unstable points are a focus and a saddle, each with its own legend entry,
        // and the overlaid trajectory is listed.
        "unstable node/focus",
        "saddle",
        "trajectory",
        // Its saddle's stable manifold is drawn, so the legend lists it.
        "separatrix",
        "modulator membrane potential",
        "ms",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    let png = dir.0.join("b.PNG");
    phase_portrait(&p.circuit, &opts, &png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // 900 x 820 in the IHDR chunk.
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 900);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 820);
}

#[test]
fn every_paper_panel_is_rendered() {
    let dir = Scratch::new("paper");
    let files = render_paper_figures(&dir.0).unwrap();
    assert_eq!(files.len(), 2 * 15);
    // The legend lists the separatrix only where a saddle's stable manifold is drawn: fig1b
    // has a saddle, fig1a has one stable focus and nothing else.
    let svg = |stem: &str| std::fs::read_to_string(dir.0.join(format!("{stem}.svg"))).unwrap();
    assert!(svg("fig1b").contains("separatrix"));
    assert!(!svg("fig1a").contains("separatrix"));
    for stem in ["fig1a", "fig1f", "fig2a", "fig2f", "fig3a", "fig3c"] {
        for ext in ["svg", "png"] {
            let f = dir.0.join(format!("{stem}.{ext}"));
            assert!(
                std::fs::metadata(&f).unwrap().len() > 10_000,
                "{}",
                f.display()
            );
        }
    }
}

#[test]
fn bad_requests_are_errors() {
    let dir = Scratch::new("bad");
    let p = &paper_panels()[0];
    let opts = PortraitOptions::default();
    assert!(matches!(
        phase_portrait(&p.circuit, &opts, &dir.0.join("x.jpg")),
        Err(LyapunovError::FigureFormat { .. })
    ));
    let big = ensemble::theorem(Model::Main, 2, 0).unwrap();
    assert!(matches!(
        phase_portrait(&big, &opts, &dir.0.join("x.svg")),
        Err(LyapunovError::NotPlanar { n: 2, .. })
    ));
    let dense = PortraitOptions {
        density: 0.0,
        ..PortraitOptions::default()
    };
    assert!(matches!(
        phase_portrait(&p.circuit, &dense, &dir.0.join("x.svg")),
        Err(LyapunovError::BadOption {
            option: "density",
            ..
        })
    ));
    // A directory that does not exist: the backend's error names the file.
    let missing = dir.0.join("no/such/dir/x.png");
    let err = phase_portrait(&p.circuit, &opts, &missing).unwrap_err();
    assert!(matches!(err, LyapunovError::Draw { .. }), "{err:?}");
    assert!(err.to_string().contains("x.png"));
}
