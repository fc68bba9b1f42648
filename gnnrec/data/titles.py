"""Finding films by title as people type them: case-, accent- and punctuation-insensitive, with or without
the year, with MovieLens' trailing articles ("Godfather, The") matched in either order.

:class:`TitleIndex` resolves a title to one film (:meth:`TitleIndex.resolve`: an unknown title raises
:class:`UnknownTitleError` with the closest titles, an ambiguous one :class:`AmbiguousTitleError` with the
candidates) and ranks films for search-as-you-type (:meth:`TitleIndex.search`).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>the|a|an|la|le|les|l'|il|el|der|die|das|los|las)$")
_NON_WORD = re.compile(r"[^\w]+")
_ALTERNATE = re.compile(r"\(([^()]*)\)")


def split_year(text: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``; a text without a trailing ``(YYYY)`` keeps year None."""
    found = _YEAR.search(text)
    if found is None:
        return text.strip(), None
    return text[: found.start()].strip(), int(found.group(1))


def normalize_title(text: str) -> str:
    """The comparison key of a title (year removed): lower case, accents and punctuation dropped, a trailing
    article moved to the front (``"Cité des enfants perdus, La"`` → ``"la cite des enfants perdus"``)."""
    title, _ = split_year(text)
    decomposed = unicodedata.normalize("NFKD", title)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()
    moved = _TRAILING_ARTICLE.match(plain)
    if moved is not None:
        plain = f"{moved.group('article')} {moved.group('rest')}"
    return " ".join(_NON_WORD.sub(" ", plain).split())


def natural_title(text: str) -> str:
    """A title as people say it: MovieLens' trailing article moved to the front, the year kept
    (``"Empire Strikes Back, The (1980)"`` → ``"The Empire Strikes Back (1980)"``)."""
    title, year = split_year(text)
    moved = _TRAILING_ARTICLE.match(title.casefold())
    if moved is not None:
        cut = len(moved.group("rest"))
        article = title[cut + 2 :]
        joint = "" if article.endswith("'") else " "
        title = f"{article}{joint}{title[:cut]}"
    return f"{title} ({year})" if year is not None else title


def title_aliases(title: str) -> list[str]:
    """Normalised keys a film answers to: its whole title, and for ``"Main (Alternate)"`` titles (MovieLens'
    original-language names) the main and the alternate title alone; a title with a trailing article
    (``"Godfather, The"``) also without it."""
    keys = [normalize_title(title)]
    plain, _ = split_year(title)
    moved = _TRAILING_ARTICLE.match(plain.casefold())
    if moved is not None:  # "Empire Strikes Back, The" also answers to "Empire Strikes Back"
        keys.append(normalize_title(plain[: len(moved.group("rest"))]))
    alternates = _ALTERNATE.findall(title)
    if alternates:
        keys.append(normalize_title(_ALTERNATE.sub(" ", title)))
        keys.extend(normalize_title(alternate) for alternate in alternates)
    return [key for key in dict.fromkeys(keys) if key]


@dataclass(frozen=True)
class TitleMatch:
    """One film of the index: its 0-based ``index``, display ``title`` (without the year), ``year``, ``raw_id``."""

    index: int
    title: str
    year: int | None
    raw_id: int | str

    @property
    def label(self) -> str:
        """``"Toy Story (1995)"``: the title with its year, as people tell films apart."""
        return f"{self.title} ({self.year})" if self.year else self.title


class UnknownTitleError(ValueError):
    """No film has this title; ``suggestions`` holds the closest titles (possibly none)."""

    def __init__(self, query: str, suggestions: list[TitleMatch]) -> None:
        self.query = query
        self.suggestions = suggestions
        hint = f"; closest: {'; '.join(m.label for m in suggestions)}" if suggestions else ""
        super().__init__(f"no film titled {query!r}{hint}")


class AmbiguousTitleError(ValueError):
    """Several films have this title; ``candidates`` lists them (give the year or the movie id)."""

    def __init__(self, query: str, candidates: list[TitleMatch]) -> None:
        self.query = query
        self.candidates = candidates
        listed = "; ".join(f"{m.label} (id {m.raw_id})" for m in candidates)
        super().__init__(f"{query!r} matches {len(candidates)} films: {listed}; give the year or the movie id")


class TitleIndex:
    """Films by normalised title.

    ``titles`` are display titles, with or without a trailing ``(YYYY)`` (MovieLens' ``u.item`` titles carry
    it); ``years`` (None entries allowed) override the year parsed from a title; ``raw_ids`` are the dataset's
    movie ids (default: the indices); ``popularity`` (e.g. rating counts) orders search results and
    suggestions among equally good matches.
    """

    def __init__(
        self,
        titles: Sequence[str],
        years: Sequence[int | None] | None = None,
        raw_ids: Sequence[int | str] | None = None,
        popularity: Sequence[float] | None = None,
    ) -> None:
        count = len(titles)
        for name, values in (("years", years), ("raw_ids", raw_ids), ("popularity", popularity)):
            if values is not None and len(values) != count:
                raise ValueError(f"TitleIndex got {len(values)} {name} for {count} titles")
        self.films: list[TitleMatch] = []
        for index, text in enumerate(titles):
            title, parsed_year = split_year(str(text))
            year = years[index] if years is not None and years[index] else parsed_year
            raw_id = raw_ids[index] if raw_ids is not None else index
            self.films.append(TitleMatch(index, title, int(year) if year else None, raw_id))
        self.keys = [normalize_title(film.title) for film in self.films]
        self.popularity = [float(p) for p in popularity] if popularity is not None else [0.0] * count
        self._by_key: dict[str, list[int]] = {}
        for index, film in enumerate(self.films):
            for key in title_aliases(film.title):
                if index not in self._by_key.setdefault(key, []):
                    self._by_key[key].append(index)

    def __len__(self) -> int:
        return len(self.films)

    def _by_popularity(self, indices: list[int]) -> list[int]:
        return sorted(indices, key=lambda i: (-self.popularity[i], i))

    def resolve(self, query: str) -> TitleMatch:
        """The one film titled ``query`` (year optional); raises :class:`UnknownTitleError` (with the closest
        titles) or :class:`AmbiguousTitleError` (with the candidates)."""
        text, year = split_year(str(query))
        key = normalize_title(text)
        if not key:
            raise UnknownTitleError(str(query), [])
        found = self._by_key.get(key, [])
        if year is not None:
            found = [i for i in found if self.films[i].year == year]
        if len(found) == 1:
            return self.films[found[0]]
        if found:
            raise AmbiguousTitleError(str(query), [self.films[i] for i in self._by_popularity(found)])
        raise UnknownTitleError(str(query), self.suggest(str(query)))

    def suggest(self, query: str, limit: int = 5) -> list[TitleMatch]:
        """The titles closest to ``query``: those containing it, then the most similar spellings."""
        key = normalize_title(query)
        if not key:
            return []
        containing = self._by_popularity([i for i, k in enumerate(self.keys) if key in k])
        close_keys = difflib.get_close_matches(key, list(self._by_key), n=limit, cutoff=0.6)
        close = [i for k in close_keys for i in self._by_popularity(self._by_key[k])]
        chosen = list(dict.fromkeys(containing[:limit] + close))[:limit]
        return [self.films[i] for i in chosen]

    def search(self, query: str, limit: int = 10) -> list[TitleMatch]:
        """Films for search-as-you-type: exact title first, then titles starting with the query, then titles
        with a word starting with it, then titles containing it; more popular films first within each."""
        text, year = split_year(str(query))
        key = normalize_title(text)
        if not key or limit < 1:
            return []
        ranked: list[tuple[int, float, int]] = []
        for index, candidate in enumerate(self.keys):
            if year is not None and self.films[index].year != year:
                continue
            if candidate == key:
                tier = 0
            elif candidate.startswith(key):
                tier = 1
            elif f" {key}" in f" {candidate}":
                tier = 2
            elif key in candidate:
                tier = 3
            else:
                continue
            ranked.append((tier, -self.popularity[index], index))
        ranked.sort()
        return [self.films[index] for _, _, index in ranked[:limit]]
