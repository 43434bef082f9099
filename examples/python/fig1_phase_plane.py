"""Fig. 1b of the paper (one neuron, main model, w_r = 2, b0 sigma = 0.05): the phase plane
drawn with matplotlib from `Circuit.phase_plane()` data. Every number comes from the Rust
crates; this script only draws.

    pip install ./crates/organics-py matplotlib
    python examples/python/fig1_phase_plane.py [OUT.png]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import organics

here = Path(__file__).resolve().parent
circuit = organics.Circuit.from_file(here.parent / "circuits" / "fig1b.json")
pp = circuit.phase_plane(ny=60, na=60)

fig, ax = plt.subplots(figsize=(6, 5.5))
ax.streamplot(pp.y, pp.a, pp.dy_dt, pp.da_dt, density=1.5, color="0.6", linewidth=0.7)
for k, line in enumerate(pp.y_nullcline):
    ax.plot(line[:, 0], line[:, 1], color="tab:blue", lw=2, label="dy/dt = 0" if k == 0 else None)
for k, line in enumerate(pp.a_nullcline):
    ax.plot(line[:, 0], line[:, 1], color="tab:orange", lw=2, label="da/dt = 0" if k == 0 else None)
for f in pp.fixed_points:
    ax.plot(f.y, f.a, "o", ms=9, mec="k", mfc="k" if f.stable else "w", label=f"{f.kind} ({f.y:.2f}, {f.a:.2f})")
y_min, y_max, a_min, a_max = pp.window
ax.set(xlim=(y_min, y_max), ylim=(a_min, a_max), xlabel="y", ylabel="a")
ax.set_title("ORGaNICs, main model (Eq. 16): $w_r$ = 2, $b_0\\sigma$ = 0.05, z = 1")
ax.legend(loc="upper right", fontsize=8)
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("fig1b_phase_plane.png")
fig.savefig(out, dpi=120, bbox_inches="tight")
print(f"wrote {out}: {len(pp.fixed_points)} fixed points,", ", ".join(f.kind for f in pp.fixed_points))
