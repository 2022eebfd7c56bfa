"""One colour per GPU, the same in every plot, legend, readout and export.

A GPU's colour depends only on its index (GPU 2 is green on every host), so
"the green one" means the same thing all over the window. MIG devices take
lighter shades of their GPU's colour. Plain hex strings: no Qt needed.
"""

from __future__ import annotations

# Tableau 10, with grey moved last: it reads as "no data" and most hosts have <= 8 GPUs.
PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#17becf",  # cyan
    "#bcbd22",  # olive
    "#7f7f7f",  # grey
)
FREE_COLOUR = "#1a7f37"  # the free-GPU count
TOTAL_COLOUR = "#8a8a8a"  # how many units there are
IDLE_COLOUR = "#8a8a8a"  # held-idle shading of a unit with no colour yet
IDLE_ALPHA = 45  # of 255: the shading sits behind the curves


def _mix(hex_colour: str, towards: int, amount: float) -> str:
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (towards - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def unit_colour(gpu_index: int, mig_index: int | None = None) -> str:
    base = PALETTE[gpu_index % len(PALETTE)]
    if mig_index is None:
        return base
    # MIG 0 darker, then lighter and lighter: distinct, yet visibly the same GPU.
    if mig_index == 0:
        return _mix(base, 0, 0.35)
    return _mix(base, 255, min(0.2 + 0.18 * (mig_index - 1), 0.75))
