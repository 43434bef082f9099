//! Render the paper's phase portraits (Figs. 1–3, and the negative-drive counterparts of
//! Fig. 1) as SVG and PNG.
//!
//! `cargo run --release -p organics-lyapunov --example portraits [DIR]` (default
//! `target/repro/portraits`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/repro/portraits".into());
    for f in organics_lyapunov::render_paper_figures(std::path::Path::new(&dir))? {
        println!("{}", f.display());
    }
    Ok(())
}
