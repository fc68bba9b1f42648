"""Title matching: normalisation, resolution with suggestions and candidates, search as you type."""

from __future__ import annotations

import pytest

from gnnrec.data.titles import (
    AmbiguousTitleError,
    TitleIndex,
    UnknownTitleError,
    natural_title,
    normalize_title,
    split_year,
    title_aliases,
)

TITLES = [
    "Toy Story (1995)",
    "Godfather, The (1972)",
    "Godfather: Part II, The (1974)",
    "Cité des enfants perdus, La (1995)",
    "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
    "Hamlet (1990)",
    "Hamlet (1996)",
    "Chairman of the Board (1998)",
    "Chairman of the Board (1998)",
    "Star Wars (1977)",
    "Stargate (1994)",
    "Lone Star (1996)",
]
POPULARITY = [400, 300, 200, 50, 10, 20, 90, 5, 3, 500, 120, 80]


@pytest.fixture
def index() -> TitleIndex:
    return TitleIndex(TITLES, raw_ids=[100 + i for i in range(len(TITLES))], popularity=POPULARITY)


def test_split_year_and_normalize():
    assert split_year("Toy Story (1995)") == ("Toy Story", 1995)
    assert split_year("Toy Story") == ("Toy Story", None)
    assert normalize_title("Godfather, The (1972)") == "the godfather"
    assert normalize_title("  THE   godfather!! ") == "the godfather"
    assert normalize_title("Cité des enfants perdus, La") == "la cite des enfants perdus"
    assert title_aliases("Shanghai Triad (Yao a yao yao dao waipo qiao)") == [
        "shanghai triad yao a yao yao dao waipo qiao",
        "shanghai triad",
        "yao a yao yao dao waipo qiao",
    ]


@pytest.mark.parametrize(
    "query, raw_id",
    [
        ("toy story", 100),
        ("TOY STORY (1995)", 100),
        ("The Godfather", 101),
        ("godfather, the", 101),
        ("the godfather: part ii", 102),
        ("La cite des enfants perdus", 103),
        ("cité des enfants perdus, la (1995)", 103),
        ("Shanghai Triad", 104),
        ("hamlet (1996)", 106),
    ],
)
def test_resolve_ignores_case_accents_articles_and_year(index, query, raw_id):
    assert index.resolve(query).raw_id == raw_id


def test_ambiguous_title_lists_candidates_most_popular_first(index):
    with pytest.raises(AmbiguousTitleError) as caught:
        index.resolve("Hamlet")
    assert [m.raw_id for m in caught.value.candidates] == [106, 105]
    assert "give the year or the movie id" in str(caught.value)
    with pytest.raises(AmbiguousTitleError) as same_year:  # same title and year: only the id tells them apart
        index.resolve("Chairman of the Board (1998)")
    assert {m.raw_id for m in same_year.value.candidates} == {107, 108}


def test_unknown_title_suggests_the_closest(index):
    with pytest.raises(UnknownTitleError) as caught:
        index.resolve("Star Warz")
    assert caught.value.suggestions[0].raw_id == 109
    assert "Star Wars (1977)" in str(caught.value)
    with pytest.raises(UnknownTitleError) as wrong_year:
        index.resolve("Toy Story (1999)")
    assert wrong_year.value.suggestions[0].raw_id == 100
    with pytest.raises(UnknownTitleError) as empty:
        index.resolve("  !! ")
    assert empty.value.suggestions == []


def test_search_ranks_exact_prefix_word_then_substring(index):
    assert [m.raw_id for m in index.search("star")] == [109, 110, 111]  # prefix by popularity, then a word
    assert [m.raw_id for m in index.search("star", limit=1)] == [109]
    assert [m.raw_id for m in index.search("godfather")] == [101, 102]
    assert [m.raw_id for m in index.search("hamlet (1990)")] == [105]
    assert index.search("") == [] and index.search("zzz") == []
    assert index.search("tar")[0].raw_id == 109  # inside a word


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="2 years for 1 titles"):
        TitleIndex(["A (1990)"], years=[1990, 1991])


def test_natural_title_moves_the_article_to_the_front():
    assert natural_title("Empire Strikes Back, The (1980)") == "The Empire Strikes Back (1980)"
    assert natural_title("Cité des enfants perdus, La") == "La Cité des enfants perdus"
    assert natural_title("Star Wars (1977)") == "Star Wars (1977)"
    assert natural_title("Appartement, L' (1996)") == "L'Appartement (1996)"
    assert natural_title("Homme et une femme, Un (1966)") == "Homme et une femme, Un (1966)"  # not an article listed
