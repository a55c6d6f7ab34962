"""The best-view marker: only for a view significantly better than the baseline after correction."""

from __future__ import annotations

import numpy as np

from layerwise.evaluation.evaluation import Evaluation, ViewResult, _test_against
from layerwise.evaluation.report import markdown, table_rows


def _evaluation(per_query: dict[str, list[float]], correction: str = "holm", trials: int = 4000) -> Evaluation:
    views = [ViewResult(name, "layer" if name.startswith("layer") else "mix", None, {"ndcg@10": float(np.mean(v))},
                        {"ndcg@10": {f"q{i}": x for i, x in enumerate(v)}}) for name, v in per_query.items()]
    _test_against(views, "layer6", "ndcg@10", trials, 0, correction, 0.05)
    return Evaluation("c", {"name": "m"}, ("ndcg@10",), "layer6", len(next(iter(per_query.values()))), views,
                      {"correction": correction, "alpha": 0.05})


def test_a_top_view_that_is_not_significantly_better_gets_no_star():
    base = np.full(40, 0.5)
    noisy_better = base + np.array([0.1] * 22 + [-0.1] * 18)  # higher mean (+0.01), 22 wins to 18 losses
    evaluation = _evaluation({"layer6": base.tolist(), "firstlast()": noisy_better.tolist(), "layer1": (base - 0.3).tolist()})
    top = max(evaluation.views, key=lambda v: v.means["ndcg@10"])
    assert top.name == "firstlast()" and top.p_adjusted > 0.05
    assert evaluation.best() is None
    assert evaluation.verdict() == "no view beats layer6 significantly on ndcg@10 (holm-adjusted p < 0.05)"
    assert not any(row[0].endswith("*") for row in table_rows(evaluation)[1])
    assert "no view beats layer6 significantly" in markdown(evaluation)


def test_a_significantly_better_view_gets_the_star_and_a_worse_one_never_does():
    base = np.linspace(0.1, 0.6, 40)
    evaluation = _evaluation({"layer6": base.tolist(), "rrf(bm25 | -1)": (base + 0.2).tolist(), "layer0": (base - 0.3).tolist()})
    assert evaluation.view("layer0").significant  # significantly worse: no star for it
    assert evaluation.best() == "rrf(bm25 | -1)"
    assert [row[0] for row in table_rows(evaluation)[1]].count("rrf(bm25 | -1) *") == 1
    assert evaluation.verdict().startswith("best ndcg@10: rrf(bm25 | -1), above layer6 with holm-adjusted p = ")


def test_when_every_view_scores_zero_there_is_no_best_view():
    evaluation = _evaluation({"layer6": [0.0] * 10, "layer0": [0.0] * 10, "mean(-4:)": [0.0] * 10})
    assert evaluation.best() is None and all(v.p_value == 1.0 for v in evaluation.views if v.name != "layer6")


def test_holm_keeps_a_borderline_view_that_no_correction_would_star():
    base = np.full(60, 0.5)
    views = {"layer6": base.tolist(), "a": (base + np.array([0.1] * 39 + [-0.1] * 21)).tolist()}  # p about 0.02
    views.update({f"layer{i}": base.tolist() for i in range(6)})  # six views level with the baseline: p = 1
    raw = _evaluation(views, "none")
    holm = _evaluation(views, "holm")
    assert raw.view("a").p_value < 0.05 and raw.best() == "a"
    assert holm.view("a").p_adjusted >= 0.05 and holm.best() is None
    assert holm.view("a").p_value == raw.view("a").p_value  # the raw p is kept next to the adjusted one
