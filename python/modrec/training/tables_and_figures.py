"""Tables and figures of the training side's reports: markdown cells, a README's results block,
and matplotlib headless (the Agg backend) on clusters and in CI; the line styles and legend
placement every report's plots share, and the one way they are saved."""

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Line styles and markers in the order lines get them: each one apart from the others at a glance.
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8")


def colours(n):
    """``n`` distinct colours: tab10 up to 10, tab20 up to 20, then evenly spaced along a colormap."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](k) for k in range(n)]
    if n <= 20:
        return [colormaps["tab20"](k) for k in range(n)]
    return [colormaps["gist_rainbow"](k / (n - 1)) for k in range(n)]


def line_styles(keys, panels=None):
    """A matplotlib style (``color``, ``linestyle``, ``marker``, ``markerfacecolor``) per line.

    ``keys[i]`` says what line ``i`` is: (colour key, linestyle key, marker key) and optionally a
    fourth, fill key (the first value seen gets filled markers, any other hollow ones). Each key
    picks its property by first appearance, so lines that share a key share that property (colour
    by architecture, linestyle by method, ...); lines whose keys all coincide still get different
    markers (then line styles), so no two lines look alike. With ``panels`` (a panel per line:
    lines drawn on different axes), only lines of one panel are kept apart, and a key keeps its
    property in every panel.
    """
    keys = [tuple(k) + (None,) * (4 - len(k)) for k in keys]
    panels = [None] * len(keys) if panels is None else list(panels)
    order = [list(dict.fromkeys(k[d] for k in keys)) for d in range(4)]
    palette = colours(len(order[0]))
    styles, used = [], set()
    for k, panel in zip(keys, panels):
        c, ls, m = (order[d].index(k[d]) for d in range(3))
        filled = order[3].index(k[3]) == 0
        ls, m = ls % len(LINESTYLES), m % len(MARKERS)
        for _ in range(len(LINESTYLES) * len(MARKERS)):  # the next free look for a repeated one
            if (panel, c, ls, m, filled) not in used:
                break
            m = (m + 1) % len(MARKERS)
            if m == 0:
                ls = (ls + 1) % len(LINESTYLES)
        used.add((panel, c, ls, m, filled))
        styles.append({"color": palette[c], "linestyle": LINESTYLES[ls], "marker": MARKERS[m],
                       "markerfacecolor": palette[c] if filled else "white"})
    return styles


def legend_beside(ax, **options):
    """The axes' legend to the right of it, outside, so that it hides no curve."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **options)


def save_figure(fig, path, dpi=120):
    """Save ``fig`` with every artist inside the image (legends placed outside the axes
    included: the image grows to hold them), then close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    pyplot().close(fig)


def cell(value, kind):
    """A table cell: ``value`` formatted as ``kind`` (pct, int, mega, float1, float3); n/a for None."""
    if value is None:
        return "n/a"
    return {
        "pct": lambda v: f"{100 * v:.1f} %",
        "int": lambda v: f"{int(round(v)):,}",
        "mega": lambda v: f"{v / 1e6:.2f} M",
        "float1": lambda v: f"{v:.1f}",
        "float3": lambda v: f"{v:.3f}",
    }[kind](value)


BEGIN_MARK = "<!-- results:begin -->"
END_MARK = "<!-- results:end -->"


def write_markdown(path, table):
    """Replace the text between the results markers of ``path`` (a README with prose around
    the table), or write the table alone when the file has no markers or does not exist."""
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    if BEGIN_MARK in text and END_MARK in text:
        head, rest = text.split(BEGIN_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        text = f"{head}{BEGIN_MARK}\n{table}\n{END_MARK}{tail}"
    else:
        text = table + "\n"
    path.write_text(text)
