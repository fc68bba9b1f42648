"""The serving catalogue: what people are shown of a film."""

from __future__ import annotations

from gnnrec.data import MovieLens100K
from gnnrec.serving.catalogue import Catalogue
from gnnrec.testing.ml100k import write_ml100k_fixture


def test_a_film_is_shown_with_its_titles_year_not_its_release_dates(tmp_path):
    source = write_ml100k_fixture(tmp_path / "raw")
    items = (source / "u.item").read_text(encoding="latin-1").splitlines()
    fields = items[0].split("|")
    assert fields[1] == "Movie 1 (1951)"
    fields[2] = "14-Mar-1997"  # a re-release, as ML-100k has for "Return of the Jedi (1983)"
    items[0] = "|".join(fields)
    (source / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    split = MovieLens100K(tmp_path / "root", split="u1", source_dir=source, log=False).rating_split()
    catalogue = Catalogue(split)
    assert catalogue.movie(0) == {"movie_id": 1, "title": "Movie 1", "year": 1951, "genres": catalogue.genres[0]}
    assert catalogue.label(0) == "Movie 1 (1951)"
