import numpy as np
from sklearn.ensemble import IsolationForest

from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.synthetic import reference_matrix


def test_compiled_forest_scores_exactly_like_scikit_learn() -> None:
    data = reference_matrix(1500)
    forest = IsolationForest(n_estimators=50, max_samples=256, random_state=3).fit(data)
    model = AnomalyModel.from_sklearn(forest)
    probe = np.vstack([data[:100], data[:20] * np.array([1, 1.5, 9, 4, 1, 3])])
    ours = np.array([model.score(list(row)) for row in probe])
    np.testing.assert_allclose(ours, -forest.score_samples(probe), rtol=1e-12)
    assert ours[100:].mean() > ours[:100].mean()  # stretched applications look stranger


def test_refitting_with_the_same_seed_gives_the_same_hash() -> None:
    data = reference_matrix(800)
    assert AnomalyModel.fit(data, n_trees=20).model_hash == AnomalyModel.fit(data, n_trees=20).model_hash
