"""Tables and figures of the training side's reports: markdown cells, a README's results block,
and matplotlib headless (the Agg backend) on clusters and in CI."""

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
