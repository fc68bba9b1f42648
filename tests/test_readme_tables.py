"""Tests for benchmarks/readme_tables.py: README and docs result blocks copied from named tables in results files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "readme_tables.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rt = _load()

RATING = "| model | RMSE |\n|---|---|\n| gnn | 0.912 ± 0.004 |"
RANKING = "| model | NDCG@10 |\n|---|---|\n| gnn | 0.701 |"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    results = tmp_path / "benchmarks" / "results" / "quick" / "results.md"
    results.parent.mkdir(parents=True)
    results.write_text(
        "# Run\n\nintro\n\n" + rt.wrap_table("rating", RATING) + "\nsome text\n\n" + rt.wrap_table("ranking", RANKING)
    )
    (tmp_path / "README.md").write_text(
        "# Project\n\n## Results\n\n"
        "<!-- results: benchmarks/results/quick/results.md#rating -->\n"
        "old table\n"
        "<!-- /results -->\n\nbetween\n\n"
        "<!-- results: benchmarks/results/quick/results.md#ranking -->\n"
        "<!-- /results -->\n\nend\n"
    )
    return tmp_path


@pytest.fixture
def docs_page(repo: Path) -> Path:
    """docs/results.md in the same repository: its block's path is relative to docs/."""
    page = repo / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text(
        "# Results\n\n<!-- results: ../benchmarks/results/quick/results.md#ranking -->\n<!-- /results -->\n"
    )
    (repo / "docs" / "index.md").write_text("# Home\n\nno tables here\n")
    return page


def test_round_trip(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    assert rt.main([str(readme), "--check"]) == 1
    assert rt.main([str(readme)]) == 0
    text = readme.read_text()
    assert "old table" not in text
    assert f"<!-- results: benchmarks/results/quick/results.md#rating -->\n{RATING}\n<!-- /results -->" in text
    assert f"results.md#ranking -->\n{RANKING}\n<!-- /results -->\n\nend\n" in text
    assert text.startswith("# Project\n\n## Results\n\n") and "\n\nbetween\n\n" in text
    capsys.readouterr()
    assert rt.main([str(readme), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert rt.main([str(readme)]) == 0
    assert readme.read_text() == text  # idempotent


def test_check_reports_edited_number(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    rt.main([str(readme)])
    text = readme.read_text()
    readme.write_text(text.replace("0.701", "0.711"))
    capsys.readouterr()
    assert rt.main([str(readme), "--check"]) == 1
    out = capsys.readouterr().out
    ranking_line = text.splitlines().index("<!-- results: benchmarks/results/quick/results.md#ranking -->") + 1
    assert f"README.md:{ranking_line}: block <!-- results: benchmarks/results/quick/results.md#ranking -->" in out
    assert "#rating" not in out.split("---")[0]  # only the edited block is named
    assert "-| gnn | 0.711 |" in out and "+| gnn | 0.701 |" in out
    assert readme.read_text() == text.replace("0.701", "0.711")  # --check changes nothing


def test_results_file_changes_are_detected(repo: Path) -> None:
    readme = repo / "README.md"
    rt.main([str(readme)])
    results = repo / "benchmarks" / "results" / "quick" / "results.md"
    results.write_text(results.read_text().replace("0.912", "0.915"))
    assert rt.main([str(readme), "--check"]) == 1


def _error(readme: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert rt.main([str(readme), "--check"]) == 2
    return capsys.readouterr().err


def test_missing_file_and_table(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    original = readme.read_text()
    readme.write_text(original.replace("quick/results.md#ranking", "paper/results.md#ranking"))
    err = _error(readme, capsys)
    assert "README.md:11: cannot read benchmarks/results/paper/results.md" in err
    readme.write_text(original.replace("#ranking", "#ndcg"))
    err = _error(readme, capsys)
    assert "README.md:11: benchmarks/results/quick/results.md: no table 'ndcg' (tables there: ranking, rating)" in err


def test_malformed_markers(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    original = readme.read_text()
    readme.write_text(original.replace("old table\n<!-- /results -->\n", "old table\n", 1))
    assert "README.md:5: results block is not closed" in _error(readme, capsys)
    readme.write_text(original + "<!-- /results -->\n")
    assert "malformed or unmatched results marker" in _error(readme, capsys)
    readme.write_text(original.replace("#rating", ""))
    assert "README.md:5: malformed or unmatched" in _error(readme, capsys)


def test_extract_table_errors() -> None:
    with pytest.raises(rt.ReadmeTableError, match="r.md:3: table 'a' has no closing"):
        rt.extract_table("x\n\n<!-- table:a -->\n| 1 |\n", "a", "r.md")
    doubled = rt.wrap_table("a", "| 1 |") + rt.wrap_table("a", "| 2 |")
    with pytest.raises(rt.ReadmeTableError, match="r.md:4: table 'a' appears more than once"):
        rt.extract_table(doubled, "a", "r.md")
    assert rt.extract_table(rt.wrap_table("a", "\n| 1 |\n\n"), "a", "r.md") == "| 1 |"
    with pytest.raises(ValueError, match="table name"):
        rt.wrap_table("a b", "| 1 |")


def test_default_files_are_readme_and_docs(repo: Path, docs_page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rt.documentation_files(repo) == [repo / "README.md", repo / "docs" / "index.md", docs_page]
    assert rt.main(["--root", str(repo), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"{docs_page}:3: block <!-- results: ../benchmarks/results/quick/results.md#ranking -->" in out
    assert f"{docs_page}: result tables are out of date" in out and f"{repo / 'README.md'}: result tables" in out
    assert rt.main(["--root", str(repo)]) == 0
    assert f"results.md#ranking -->\n{RANKING}\n<!-- /results -->\n" in docs_page.read_text()
    assert (repo / "docs" / "index.md").read_text() == "# Home\n\nno tables here\n"
    capsys.readouterr()
    assert rt.main(["--root", str(repo), "--check"]) == 0
    assert "3 file(s), 3 result block(s): up to date" in capsys.readouterr().out


def test_edited_docs_number_fails_the_check(repo: Path, docs_page: Path) -> None:
    assert rt.main(["--root", str(repo)]) == 0
    docs_page.write_text(docs_page.read_text().replace("0.701", "0.702"))
    assert rt.main(["--root", str(repo), "--check"]) == 1
    assert rt.main([str(repo / "README.md"), "--check"]) == 0  # the README alone is still in step


def test_an_error_in_one_file_writes_no_file(repo: Path, docs_page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    before = readme.read_text()
    docs_page.write_text(docs_page.read_text().replace("#ranking", "#nope"))
    capsys.readouterr()
    assert rt.main(["--root", str(repo)]) == 2
    assert f"{docs_page}:3: ../benchmarks/results/quick/results.md: no table 'nope'" in capsys.readouterr().err
    assert readme.read_text() == before  # README was stale too, but nothing is written when any file fails


def test_no_documentation_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rt.main(["--root", str(tmp_path), "--check"]) == 2
    assert "no README.md or docs/*.md" in capsys.readouterr().err


def test_markers_in_code_blocks_are_examples(repo: Path, docs_page: Path) -> None:
    example = (
        "\n```text\n<!-- results: ../benchmarks/results/quick/results.md#rating -->\n"
        "(example)\n<!-- /results -->\n```\n"
        "\n~~~\n<!-- results: nowhere.md#nothing -->\n~~~\n"
    )
    docs_page.write_text(docs_page.read_text() + example)
    assert rt.main(["--root", str(repo)]) == 0
    text = docs_page.read_text()
    assert text.endswith(example) and f"#ranking -->\n{RANKING}\n<!-- /results -->\n" in text
    assert rt.count_blocks(text) == 1
    assert rt.main(["--root", str(repo), "--check"]) == 0


def test_an_if_present_block_waits_for_its_results_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    pending = "<!-- results: benchmarks/results/douban/results.md#rating if-present -->\n"
    readme.write_text(readme.read_text() + "\n" + pending + "old\n<!-- /results -->\n")
    assert rt.main([str(readme)]) == 0
    waiting = f"{pending}*No committed results yet (benchmarks/results/douban/results.md does not exist).*\n"
    assert waiting + "<!-- /results -->\n" in readme.read_text()
    capsys.readouterr()
    assert rt.main([str(readme), "--check"]) == 0
    assert "3 result block(s): up to date" in capsys.readouterr().out
    results = repo / "benchmarks" / "results" / "douban" / "results.md"
    results.parent.mkdir()
    results.write_text(rt.wrap_table("rating", "| model | RMSE |\n|---|---|\n| gnn | 0.731 |"))
    assert rt.main([str(readme), "--check"]) == 1  # once committed, the block must hold the table
    assert rt.main([str(readme)]) == 0
    assert f"{pending}| model | RMSE |\n|---|---|\n| gnn | 0.731 |\n<!-- /results -->\n" in readme.read_text()
    results.write_text(rt.wrap_table("ranking", RANKING))
    capsys.readouterr()
    assert rt.main([str(readme), "--check"]) == 2  # a present file without the table is an error, as everywhere
    assert "douban/results.md: no table 'rating'" in capsys.readouterr().err


def test_only_if_present_may_follow_the_table_name(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("quick/results.md#rating -->", "quick/results.md#rating maybe -->"))
    assert "README.md:5: malformed or unmatched results marker" in _error(readme, capsys)
