"""Files the model commands write: their folders are created, and what was written is said on stderr, never mixed
into the results on stdout."""

from __future__ import annotations

from pathlib import Path

from tests.cli import one_line_error, openice


def test_export_sql_and_score_create_the_output_folder_and_say_what_they_wrote(package: Path, tmp_path: Path) -> None:
    sql = tmp_path / "new" / "folder" / "scorecard.sql"
    out = openice("model", "export-sql", str(package), "--out", str(sql))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and f"to {sql}" in out.stderr.replace("\n", "") and "CASE" in sql.read_text()
    data = tmp_path / "applications.csv"
    data.write_text("Income,Assets\n120,1000\n")
    scored = tmp_path / "also" / "new" / "scored.csv"
    out = openice("model", "score", str(package), "--input", str(data), "--output", str(scored))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and "scored 1 rows" in out.stderr and scored.exists()


def test_scoring_a_file_that_is_not_utf8_names_it(package: Path, tmp_path: Path) -> None:
    data = tmp_path / "latin1.csv"
    data.write_bytes("Home,Income\nproprietário,120\n".encode("latin-1"))
    line = one_line_error(openice("model", "score", str(package), "--input", str(data), "--output", "x.csv"))
    assert line.startswith(f"error: --input: {data} is not UTF-8 text")
