"""apps/quantization_study.py's table: a run with --only replaces those models' rows and keeps the rest."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("quantization_study", ROOT / "apps" / "quantization_study.py")
qs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(qs)


def row(name, speed):
    return f"| {name} | 2d | 1,000 | 2,000 | {speed} | 70.00 % | 69.90 % | -0.10 | 47.0 / 46.9 % | 200 / 80 | no |"


def test_the_shipped_table_reads_back_one_row_per_model():
    page = (ROOT / "models" / "QUANTIZATION.md").read_text()
    table = page.split(qs.BEGIN, 1)[1].split(qs.END, 1)[0]
    rows = qs.table_rows(table)
    assert "cnn3" in rows and "mobilenet1d-skd" in rows
    assert len(rows) == sum(line.startswith("| ") for line in table.splitlines()) - 1  # the header is no row
    assert all(line.startswith(f"| {name} |") for name, line in rows.items())


def test_only_the_remeasured_rows_change_and_a_new_one_takes_its_place_in_name_order():
    old = "\n".join([*qs.HEADER, row("a", "1.00x"), row("c", "2.00x"), row("d", "3.00x")])
    merged = qs.merged_rows(qs.table_rows(old), {"c": row("c", "9.00x"), "b": row("b", "5.00x")})
    assert merged == [row("a", "1.00x"), row("b", "5.00x"), row("c", "9.00x"), row("d", "3.00x")]
