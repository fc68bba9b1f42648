"""Cold start: the held-out protocol, fold-in of every model, closed-form fold-ins, clear errors, and cold-start
suites through the main benchmark runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.benchmark import runner
from gnnrec.benchmark.runner import run_benchmark
from gnnrec.coldstart.evaluation import evaluate_coldstart
from gnnrec.coldstart.fold_in import FoldInNotSupported
from gnnrec.coldstart.protocol import coldstart_draw
from gnnrec.coldstart.references import GroupMean, MovieMean
from gnnrec.data.graph import PARTS, RATED_BY, RATES
from gnnrec.models import available_models, create_model
from gnnrec.models.baselines import Bias


@pytest.mark.parametrize("kind", ["users", "movies"])
def test_held_out_nodes_are_absent_from_every_training_structure(tiny_split, kind):
    draw = coldstart_draw(tiny_split, kind, seed=3)
    count = tiny_split.num_users if kind == "users" else tiny_split.num_movies
    assert len(draw.held_out) == round((0.2 if kind == "users" else 0.1) * count)
    held = set(draw.held_out.tolist())
    row = 0 if kind == "users" else 1
    graph = draw.split.graph
    for part in PARTS:
        assert not held & set(graph[RATES][f"{part}_edge_label_index"][row].tolist())
    assert not held & set(graph[RATES].edge_index[row].tolist())
    assert not held & set(graph[RATED_BY].edge_index[1 - row].tolist())
    assert graph[RATES].edge_index.size(1) == graph[RATES].rating.numel() == graph[RATED_BY].edge_index.size(1)
    # every rating of the source split is either kept or a held-out rating, never both
    total = sum(len(tiny_split.edges(p)) for p in PARTS)
    assert sum(len(draw.split.edges(p)) for p in PARTS) + len(draw.ratings) == total
    entity = draw.ratings.user if kind == "users" else draw.ratings.movie
    assert set(entity.tolist()) <= held
    assert draw.split.fingerprint != tiny_split.fingerprint


def test_gnn_fitted_on_a_draw_never_sees_held_out_users(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    model = create_model("gnn", {"max_epochs": 2, "induction_users": 0.2, "induction_movies": 0.2}, test_config=True)
    model.fit(draw.split)
    held = set(draw.held_out.tolist())
    assert not held & set(model.graph.edge_index[0].tolist())
    assert not held & set(model.seen[0].tolist())


def test_support_and_query_partition_each_node_and_respect_time(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=1)
    for n in (0, 1, 3, 5):
        episode = draw.episode(n)
        support = set(zip(episode.support.user.tolist(), episode.support.movie.tolist(), strict=True))
        query = set(zip(episode.query.user.tolist(), episode.query.movie.tolist(), strict=True))
        assert not support & query
        for user in episode.nodes.tolist():
            mine = draw.ratings.user == user
            assert sum(1 for u, _ in support if u == user) == n
            assert sum(1 for u, _ in support | query if u == user) == int(mine.sum())
            times = dict(zip(draw.ratings.movie[mine].tolist(), draw.time[mine].tolist(), strict=True))
            sup = [times[m] for u, m in support if u == user]
            qry = [times[m] for u, m in query if u == user]
            assert not sup or max(sup) <= min(qry)
        counts = torch.bincount(draw.ratings.user, minlength=tiny_split.num_users)[draw.held_out]
        assert episode.skipped == int((counts < n + 1).sum())
    random = draw.episode(3, "random", seed=5)
    assert torch.equal(random.support.movie, draw.episode(3, "random", seed=5).support.movie)


def test_same_seed_same_draw(tiny_split):
    a, b = coldstart_draw(tiny_split, "movies", seed=7), coldstart_draw(tiny_split, "movies", seed=7)
    assert torch.equal(a.held_out, b.held_out) and torch.equal(a.ratings.rating, b.ratings.rating)
    assert not torch.equal(a.held_out, coldstart_draw(tiny_split, "movies", seed=8).held_out)
    with pytest.raises(ValueError, match="unknown cold-start kind"):
        coldstart_draw(tiny_split, "people")
    with pytest.raises(ValueError, match="share must lie"):
        coldstart_draw(tiny_split, "users", share=1.5)
    with pytest.raises(ValueError, match="support size"):
        a.episode(-1)


def _support(draw, n):
    episode = draw.episode(n)
    row, other = episode.rows(episode.support)
    return episode, torch.stack([row, other]), episode.support.rating


@pytest.mark.parametrize(("fold_in_reg", "ridge"), [(None, 2.0), (7.0, 7.0)])
def test_bias_fold_in_equals_the_hand_solved_ridge(tiny_split, fold_in_reg, ridge):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    model = create_model("bias", {"reg_user": 2.0, "reg_item": 3.0, "fold_in_reg": fold_in_reg}).fit(draw.split)
    episode, support, rating = _support(draw, 3)
    fold = model.fold_in("users", support, rating, num_new=len(episode.nodes))
    for row in range(len(episode.nodes)):
        mine = support[0] == row
        residual = rating[mine].double() - model.mean - model.movie_bias[support[1, mine]].double()
        bias = float(residual.sum() / (int(mine.sum()) + ridge))
        expected = model.mean + bias + model.movie_bias
        assert torch.allclose(fold.scores[row], expected.float(), atol=1e-5)


@pytest.mark.parametrize("fold_in_reg", [None, 0.5])
def test_mf_fold_in_equals_the_hand_solved_ridge(tiny_split, fold_in_reg):
    from gnnrec.models.mf import MF_FOLD_IN_REG

    draw = coldstart_draw(tiny_split, "movies", seed=0)
    overrides = {} if fold_in_reg is None else {"fold_in_reg": fold_in_reg}
    model = create_model("mf", overrides, test_config=True).fit(draw.split)
    ridge = MF_FOLD_IN_REG if fold_in_reg is None else fold_in_reg
    episode, support, rating = _support(draw, 5)
    fold = model.fold_in("movies", support, rating, num_new=len(episode.nodes))
    q = model.module.user_factor.detach().double().numpy()
    b = model.module.user_bias.detach().double().numpy()
    mean = float(model.module.mean)
    for row in range(len(episode.nodes)):
        mine = (support[0] == row).numpy()
        users = support[1].numpy()[mine]
        design = np.column_stack([q[users], np.ones(len(users))])
        target = rating.numpy()[mine] - mean - b[users]
        x = np.linalg.solve(design.T @ design + ridge * np.eye(design.shape[1]), design.T @ target)
        expected = mean + x[-1] + b + q @ x[:-1]
        np.testing.assert_allclose(fold.scores[row].numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("name", sorted(set(available_models()) | {"movie-mean", "group-mean"}))
def test_every_model_folds_in_or_says_not_applicable(tiny_split, name):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    if name in ("movie-mean", "group-mean"):
        model = (MovieMean if name == "movie-mean" else GroupMean)()
    else:
        overrides = {"max_epochs": 3} if name == "gnn" else {}
        model = create_model(name, overrides, test_config=True)
    model.fit(draw.split)
    for kind in ("users", "movies"):
        count = 3
        other = tiny_split.num_movies if kind == "users" else tiny_split.num_users
        features = draw.split.graph["user" if kind == "users" else "movie"].x[:count]
        for support, rating in (
            (torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)),
            (torch.tensor([[0, 0, 2], [1, 4, 1]]), torch.tensor([5.0, 2.0, 4.0])),
        ):
            if kind not in type(model).fold_in_kinds:
                with pytest.raises(FoldInNotSupported, match=f"cannot fold in new {kind}"):
                    model.fold_in(kind, support, rating, num_new=count, features=features)
                continue
            fold = model.fold_in(kind, support, rating, num_new=count, features=features)
            assert fold.scores.shape == (count, other) and torch.isfinite(fold.scores).all()
            top = fold.top_k(5)
            assert top.shape == (count, 5)
            if support.size(1):  # support items are never recommended
                assert 1 not in top[0].tolist() and 4 not in top[0].tolist() and 1 not in top[2].tolist()
            if model.predicts_ratings:
                pred = fold.predict(torch.tensor([0, 1]), torch.tensor([0, 3]))
                assert ((pred >= tiny_split.rating_min) & (pred <= tiny_split.rating_max)).all()


def test_fold_in_errors_are_clear(tiny_split):
    model = create_model("bias").fit(tiny_split)
    good = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="unknown fold-in kind"):
        model.fold_in("people", good, [4.0])
    with pytest.raises(IndexError, match="unknown movie index 999"):
        model.fold_in("users", torch.tensor([[0], [999]]), [4.0])
    with pytest.raises(IndexError, match="support row 3 is not a new node"):
        model.fold_in("users", torch.tensor([[3], [1]]), [4.0], num_new=2)
    with pytest.raises(ValueError, match="rates the same"):
        model.fold_in("users", torch.tensor([[0, 0], [1, 1]]), [4.0, 3.0])
    with pytest.raises(ValueError, match="outside the scale"):
        model.fold_in("users", good, [9.0])
    with pytest.raises(ValueError, match="2 pairs but 1 ratings"):
        model.fold_in("users", torch.tensor([[0, 0], [1, 2]]), [4.0])
    with pytest.raises(ValueError, match=r"shape \[2, S\]"):
        model.fold_in("users", torch.tensor([0, 1]), [4.0])
    with pytest.raises(TypeError, match="integer indices"):
        model.fold_in("users", good.float(), [4.0])
    with pytest.raises(ValueError, match="num_new >= 1"):
        model.fold_in("users")
    with pytest.raises(ValueError, match=r"features must have shape \[1, F\]"):
        model.fold_in("users", good, [4.0], features=torch.zeros(2, 3))
    gnn = create_model("gnn", {"max_epochs": 2}, test_config=True).fit(tiny_split)
    with pytest.raises(ValueError, match="not one of the split's rating levels"):
        gnn.fold_in("users", good, [3.5])
    with pytest.raises(ValueError, match="new users have 2 features"):
        gnn.fold_in("users", good, [4.0], features=torch.zeros(1, 2))


def test_evaluation_and_benchmark_on_fixture(tiny_split, ml100k_fixture_dir, tmp_path):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    model = create_model("bias").fit(draw.split)
    values = evaluate_coldstart(model, draw, draw.episode(1))
    assert set(values) == {"rmse", "mae", "ndcg@10", "recall@10", "hit_rate@10"} and values["rmse"] > 0
    assert evaluate_coldstart(create_model("glocal-k", test_config=True), draw, draw.episode(1)) is None
    with pytest.raises(ValueError, match="cold-start training split"):
        evaluate_coldstart(create_model("bias").fit(tiny_split), draw, draw.episode(1))


COLDSTART_SUITE = {
    "name": "t",
    "splits": ["u1"],
    "seeds": [0, 1],
    "models": ["bias", "popularity", "glocal-k", "movie-mean", "ease-fold-in"],
    "test_config": True,
    "coldstart": {"support_sizes": [0, 2], "tune": {"bias": {"fold_in_reg": [1.0, 30.0]}}},
}


class CountingBias(Bias):
    fits = 0

    def _fit(self, split, logger):
        type(self).fits += 1
        super()._fit(split, logger)


def _coldstart_run(fixture, out, **kwargs):
    return run_benchmark(COLDSTART_SUITE, out, data_dir=fixture, progress=False, log=lambda line: None, **kwargs)


def test_coldstart_suite_runs_as_cells_of_the_main_runner(ml100k_fixture_dir, tmp_path):
    run = _coldstart_run(ml100k_fixture_dir, tmp_path / "run")
    assert len(run.cells) == 5 * 2 * 2 * 2  # models × kinds × n × draws
    assert {(c["kind"], c["n"]) for c in run.cells} == {(k, n) for k in ("users", "movies") for n in (0, 2)}
    text = (tmp_path / "run" / "results.md").read_text()
    assert "| glocal-k | n/a | n/a |" in text and "## New movies: rmse" in text and "| popularity | n/a | n/a |" in text
    assert "<!-- table:users-ndcg@10 -->" in text and "<!-- table:users-rmse-significance -->" in text
    assert (tmp_path / "run" / "coldstart.png").is_file() and (tmp_path / "run" / "results.csv").is_file()
    bias = run.results["coldstart"]["scenarios"]["users"]["2"]["rows"]["bias"]
    assert bias["metrics"]["rmse"]["n"] == 2  # two draws
    tuned = [c for c in run.cells if c["label"] == "bias" and c["kind"] == "users"]
    assert all(c["selection"]["selected"]["fold_in_reg"] in (1.0, 30.0) for c in tuned)
    assert all(len(c["selection"]["validation"]) == 2 for c in tuned)  # both settings scored on validation
    test = run.results["coldstart"]["scenarios"]["users"]["2"]["significance"]["rmse"]
    assert test["leader"] in ("bias", "movie-mean") and test["rows"][0]["units"] > 0
    for cell in run.cells:
        assert cell["code_version_key"] and cell["provenance"]["gnnrec_version"]
    by_id = {c["id"]: c for c in run.cells}
    holders: dict[tuple, list[str]] = {}
    for cell in run.cells:  # a fit's history is stored once, by the first of the cells that share the fit
        if cell["status"] != "ok" or cell.get("fit_seconds") is None:
            continue
        fit = (cell["label"], cell["kind"], cell["seed"], cell["fit_seconds"])
        if "history_of" in cell:
            holder = by_id[cell["history_of"]]
            assert cell["history"] == [] and (holder["label"], holder["kind"], holder["seed"]) == fit[:3]
            assert holder["fit_seconds"] == cell["fit_seconds"] and "history_of" not in holder
        else:
            holders.setdefault(fit, []).append(cell["id"])
    assert holders and all(len(ids) == 1 for ids in holders.values())


def test_coldstart_reuse_refuses_a_cell_from_another_code_version(ml100k_fixture_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(COLDSTART_SUITE, "models", ["counting-bias"])
    monkeypatch.setattr(runner, "code_version", lambda: {**version, "gnnrec_version": "x", "command": None})
    from gnnrec.coldstart import references

    monkeypatch.setitem(references.REFERENCES, "counting-bias", references.Reference(CountingBias))
    version = {"commit": "a" * 40, "commit_short": "aaaaaaa", "dirty": False, "diff_sha256": "0" * 64}
    CountingBias.fits = 0
    out = tmp_path / "run"
    _coldstart_run(ml100k_fixture_dir, out)
    fits = CountingBias.fits
    assert fits == 2 * 2  # one fit per kind and draw, shared by both n
    run = _coldstart_run(ml100k_fixture_dir, out)
    assert CountingBias.fits == fits and run.results["run"]["cells_reused"] == len(run.cells)
    version["diff_sha256"] = "1" * 64  # another code version: every cell is refused and recomputed
    run = _coldstart_run(ml100k_fixture_dir, out)
    assert CountingBias.fits == 2 * fits and run.results["run"]["cells_reused"] == 0
    assert not any(cell["stale"] for cell in run.cells)
    version["diff_sha256"] = "2" * 64
    run = _coldstart_run(ml100k_fixture_dir, out, reuse_stale=True)  # asked for: reused, marked stale
    assert CountingBias.fits == 2 * fits and all(cell["stale"] for cell in run.cells)
    assert "counting-bias †" in run.markdown


def test_a_failing_coldstart_cell_does_not_stop_the_others(ml100k_fixture_dir, tmp_path, monkeypatch):
    def broken(self, split, logger):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(MovieMean, "_fit", broken)
    run = _coldstart_run(ml100k_fixture_dir, tmp_path / "run")
    failed = [c for c in run.cells if c["status"] != "ok"]
    assert failed and all(c["label"] == "movie-mean" and "broken on purpose" in c["status"] for c in failed)
    assert all(c["status"] == "ok" for c in run.cells if c["label"] != "movie-mean")
    assert "## Failed cells" in run.markdown and run.results["run"]["cells_failed"] == len(failed)
    again = _coldstart_run(ml100k_fixture_dir, tmp_path / "run")  # a failed cell is not reused
    assert again.results["run"]["cells_reused"] == len(run.cells) - len(failed)


@pytest.mark.parametrize("dataset", ["ml-1m", "flixster"])
def test_protocol_and_fold_in_on_other_datasets(dataset, tmp_path):
    from gnnrec.data import Flixster, MovieLens1M
    from gnnrec.testing.ml1m_monti import write_ml1m_fixture, write_monti_fixture

    if dataset == "ml-1m":
        source = write_ml1m_fixture(tmp_path / "src", 30, 50, ratings_per_user=20, unrated_movies=4)
        split = MovieLens1M(tmp_path / "root", split="random-90", source_dir=source, log=False).rating_split()
    else:
        source = write_monti_fixture(tmp_path / "src", "flixster", 30, 45, seed=1)
        split = Flixster(tmp_path / "root", source_dir=source, log=False).rating_split()
    for kind in ("users", "movies"):
        draw = coldstart_draw(split, kind, seed=0)
        held = set(draw.held_out.tolist())
        node_type = "user" if kind == "users" else "movie"
        for edge_type in draw.split.graph.edge_types:
            source_type, _, target_type = edge_type
            index = draw.split.graph[edge_type].edge_index
            if source_type == node_type:
                assert not held & set(index[0].tolist())
            if target_type == node_type:
                assert not held & set(index[1].tolist())
        episode = draw.episode(1)
        for model in (create_model("bias"), create_model("gnn", {"max_epochs": 2}, test_config=True), GroupMean()):
            model.fit(draw.split)
            values = evaluate_coldstart(model, draw, episode)
            if isinstance(model, GroupMean) and kind == "users" and dataset == "flixster":
                assert values is None  # no demographics to group by: not applicable
            else:
                assert values["rmse"] > 0
