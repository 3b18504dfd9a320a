"""A small SVG bar chart for bench/run: one horizontal bar per row (the median) with a min-max
whisker. Standard library only, so that the harness runs on a fresh machine."""

from html import escape


def bar_chart(title, unit, rows, path):
    """rows: [(label, median, lo, hi)]; writes an SVG file to path."""
    label_w, bar_w, row_h, top = 330, 420, 26, 48
    height = top + row_h * max(1, len(rows)) + 40
    width = label_w + bar_w + 150
    vmax = max([hi for _, _, _, hi in rows] + [1e-12])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="10" y="40" fill="#555">median of the repetitions, whisker = min..max; unit: '
        f"{escape(unit)}</text>",
    ]
    for i, (label, med, lo, hi) in enumerate(rows):
        y = top + i * row_h
        w = bar_w * med / vmax
        x_lo, x_hi = label_w + bar_w * lo / vmax, label_w + bar_w * hi / vmax
        cy = y + row_h / 2
        out += [
            f'<text x="{label_w - 8}" y="{cy + 4:.1f}" text-anchor="end">{escape(label)}</text>',
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="#4a7ebb"/>',
            f'<line x1="{x_lo:.1f}" y1="{cy:.1f}" x2="{x_hi:.1f}" y2="{cy:.1f}" stroke="black"/>',
            f'<line x1="{x_lo:.1f}" y1="{cy - 5:.1f}" x2="{x_lo:.1f}" y2="{cy + 5:.1f}" stroke="black"/>',
            f'<line x1="{x_hi:.1f}" y1="{cy - 5:.1f}" x2="{x_hi:.1f}" y2="{cy + 5:.1f}" stroke="black"/>',
            f'<text x="{max(x_hi, label_w + w) + 6:.1f}" y="{cy + 4:.1f}">{fmt(med)}</text>',
        ]
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"
