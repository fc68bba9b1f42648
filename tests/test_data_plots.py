"""``gnnrec data --plot DIR``: the dataset's PNGs, for MovieLens and for a user's own CSV."""

from __future__ import annotations

import pytest

from gnnrec.cli import main
from gnnrec.data import CSVRatings, MovieLens100K
from gnnrec.data.plots import PLOTS, plot_dataset
from gnnrec.testing.csv_ratings import write_csv_fixture

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_pngs(directory, names):
    from matplotlib.image import imread

    assert sorted(p.name for p in directory.iterdir()) == sorted(f"{name}.png" for name in names)
    for name in names:
        path = directory / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        height, width = imread(path).shape[:2]
        assert width >= 300 and height >= 200


def test_movielens_gets_every_plot(ml100k_fixture_dir, tmp_path):
    split = MovieLens100K(tmp_path / "root", split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()
    written, skipped = plot_dataset(split, tmp_path / "plots")
    assert skipped == {} and list(written) == list(PLOTS)
    assert_pngs(tmp_path / "plots", PLOTS)


def test_own_csv_skips_what_it_lacks(tmp_path):
    source = write_csv_fixture(tmp_path / "csv")
    split = CSVRatings(tmp_path / "root", source_dir=source, ratings="ratings.csv", log=False).rating_split()
    written, skipped = plot_dataset(split, tmp_path / "plots")
    assert skipped == {
        "genres": "the movies have no genres",
        "demographics": "the users have no age, gender or occupation",
    }
    assert set(written) == {"ratings", "user_degree", "movie_degree", "ratings_over_time", "density"}
    assert_pngs(tmp_path / "plots", written)


def test_ratings_without_times_skip_the_time_plot(tmp_path):
    source = tmp_path / "csv"
    source.mkdir()
    rows = [f"u{u},i{(u * 7 + j) % 11},{1 + (u + j) % 5}" for u in range(12) for j in range(5)]
    (source / "ratings.csv").write_text("\n".join(rows) + "\n")
    split = CSVRatings(tmp_path / "root", source_dir=source, ratings="ratings.csv", header=False,
                       log=False).rating_split()  # fmt: skip
    written, skipped = plot_dataset(split, tmp_path / "plots")
    assert skipped["ratings_over_time"] == "the ratings carry no timestamps" and "density" in written


def test_cli_data_plot(ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["data", "--data-dir", str(ml100k_fixture_dir), "--plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"density: {out / 'density.png'}" in printed and "40 users, 60 movies" in printed  # and the table
    assert_pngs(out, PLOTS)


@pytest.mark.parametrize("json_output", [False, True])
def test_cli_data_plot_into_a_file_is_refused(ml100k_fixture_dir, tmp_path, capsys, json_output):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    argv = ["data", "--data-dir", str(ml100k_fixture_dir), "--plot", str(target)] + (["--json"] if json_output else [])
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"gnnrec data: error: --plot {target}: not a directory"
    assert target.read_text() == "not a directory"
