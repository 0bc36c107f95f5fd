"""Batch modes: diverse (k-means), ranked_batch (Tanimoto penalty) and class_balanced."""

import numpy as np
import pytest

from compounds.chemistry import fingerprints_to_matrix, process_smiles
from cycles.strategies import ModelOutputs, StrategyError, select

BENZAMIDES = [f"NC(=O)c1ccc({x})cc1" for x in ("F", "Cl", "Br", "C", "CC", "O", "N", "OC")]
ALKYL_CHAINS = ["CCCCCCCC" + x for x in ("O", "Cl", "Br", "N", "C#N", "S", "C(C)C", "OC")]
DIPEPTIDES = [
    f"NCC(=O)N[C@@H]({x})C(=O)O" for x in ("C", "CC(C)C", "CO", "CC(=O)O", "CCC(=O)O", "CCCCN", "CS", "C(C)C")
]
CHEMOTYPES = {"benzamide": BENZAMIDES, "alkyl": ALKYL_CHAINS, "dipeptide": DIPEPTIDES}


def fingerprints(smiles: list[str]) -> np.ndarray:
    return fingerprints_to_matrix([process_smiles(s).fingerprint for s in smiles])


def three_chemotype_pool() -> tuple[ModelOutputs, list[str]]:
    """Benzamides hold every top score; alkyl chains and dipeptides interleave below them."""
    smiles = BENZAMIDES + ALKYL_CHAINS + DIPEPTIDES
    kinds = ["benzamide"] * 8 + ["alkyl"] * 8 + ["dipeptide"] * 8
    std = np.concatenate(
        [
            np.linspace(2.0, 1.3, 8),
            np.linspace(1.0, 0.3, 8),
            np.linspace(0.95, 0.25, 8),
        ]
    )
    outputs = ModelOutputs("regression", mean=np.zeros(24), std=std, fingerprints=fingerprints(smiles))
    return outputs, kinds


def test_top_mode_takes_only_the_dominant_chemotype():
    outputs, kinds = three_chemotype_pool()
    sel = select("uncertainty", outputs, 3)
    assert [kinds[i] for i in sel.indices] == ["benzamide"] * 3


def test_diverse_picks_one_compound_of_each_chemotype():
    outputs, kinds = three_chemotype_pool()
    sel = select("uncertainty", outputs, 3, params={"batch": "diverse"})
    assert sorted(kinds[i] for i in sel.indices) == ["alkyl", "benzamide", "dipeptide"]
    # Each pick is the best-scoring member of its cluster, best first.
    assert sel.indices.tolist() == [0, 8, 16]
    assert len({c["cluster"] for c in sel.components}) == 3
    assert all(c["cluster_size"] >= 1 for c in sel.components)


def test_diverse_only_clusters_the_top_candidates():
    outputs, kinds = three_chemotype_pool()
    # pool_factor 3 -> the top 9 candidates: 8 benzamides and the best alkyl chain.
    sel = select("uncertainty", outputs, 3, params={"batch": "diverse", "pool_factor": 3})
    assert "dipeptide" not in {kinds[i] for i in sel.indices}
    assert 8 in sel.indices.tolist()


def test_diverse_is_reproducible_and_respects_exclusions():
    outputs, kinds = three_chemotype_pool()
    a = select("uncertainty", outputs, 3, params={"batch": "diverse"}, random_state=4)
    b = select("uncertainty", outputs, 3, params={"batch": "diverse"}, random_state=4)
    assert a.indices.tolist() == b.indices.tolist()
    c = select("uncertainty", outputs, 3, params={"batch": "diverse"}, exclude=np.array([0, 8, 16]))
    assert sorted(kinds[i] for i in c.indices) == ["alkyl", "benzamide", "dipeptide"]
    assert not {0, 8, 16} & set(c.indices.tolist())


def test_diverse_fills_the_batch_when_fingerprints_are_identical():
    fps = fingerprints(["c1ccccc1O"] * 12)
    outputs = ModelOutputs("regression", mean=np.zeros(12), std=np.linspace(1, 0, 12), fingerprints=fps)
    sel = select("uncertainty", outputs, 3, params={"batch": "diverse"})
    assert sel.indices.tolist() == [0, 1, 2]


def test_ranked_batch_avoids_near_duplicates():
    smiles = ["NC(=O)c1ccc(F)cc1"] * 3 + ["CCCCCCCCO"]
    outputs = ModelOutputs(
        "regression",
        mean=np.zeros(4),
        std=np.array([1.0, 0.99, 0.98, 0.9]),
        fingerprints=fingerprints(smiles),
    )
    assert select("uncertainty", outputs, 2).indices.tolist() == [0, 1]
    sel = select("uncertainty", outputs, 2, params={"batch": "ranked_batch"})
    assert sel.indices.tolist() == [0, 3]
    assert sel.components[0]["max_sim_to_batch"] == 0.0
    assert sel.components[1]["alpha"] == 0.5


def test_ranked_batch_avoids_what_is_already_labeled():
    smiles = ["NC(=O)c1ccc(F)cc1", "CCCCCCCCO", "NCC(=O)N[C@@H](C)C(=O)O", "c1ccncc1"]
    outputs = ModelOutputs(
        "regression",
        mean=np.zeros(4),
        std=np.array([1.0, 0.8, 0.75, 0.1]),
        fingerprints=fingerprints(smiles),
        labeled_fingerprints=fingerprints(["NC(=O)c1ccc(Cl)cc1", "NC(=O)c1ccc(F)cc1"]),
    )
    sel = select("uncertainty", outputs, 2, params={"batch": "ranked_batch"})
    assert sel.indices.tolist() == [1, 2]
    # With all weight on the score, similarity no longer matters.
    greedy = select("uncertainty", outputs, 2, params={"batch": "ranked_batch", "alpha": 1.0})
    assert greedy.indices.tolist() == [0, 1]
    # The nearest labeled neighbour of compound 1 is recorded for the reviewer.
    assert {"nearest_labeled", "max_sim_to_labeled"} <= sel.components[0].keys()


def test_ranked_batch_auto_alpha_follows_the_labeled_fraction():
    outputs, _ = three_chemotype_pool()
    labeled = fingerprints(BENZAMIDES[:6])
    outputs = ModelOutputs(
        "regression",
        mean=outputs.mean,
        std=outputs.std,
        fingerprints=outputs.fingerprints,
        labeled_fingerprints=labeled,
    )
    sel = select("uncertainty", outputs, 3, params={"batch": "ranked_batch", "alpha": "auto"})
    assert sel.params["alpha"] == pytest.approx(6 / (24 + 6))
    # Diversity dominates: the benzamides sit next to the labeled ones.
    assert sel.indices.tolist()[0] in range(8, 24)


def test_class_balanced_spreads_the_batch_over_predicted_classes():
    proba = np.array(
        [
            [0.51, 0.49, 0.0],  # the most uncertain compounds are all predicted class 0
            [0.52, 0.48, 0.0],
            [0.53, 0.47, 0.0],
            [0.54, 0.46, 0.0],
            [0.3, 0.6, 0.1],
            [0.1, 0.2, 0.7],
            [0.1, 0.8, 0.1],
            [0.0, 0.1, 0.9],
        ]
    )
    outputs = ModelOutputs("classification", proba=proba)
    top = select("margin", outputs, 3)
    assert top.indices.tolist() == [0, 1, 2]
    sel = select("margin", outputs, 5, params={"batch": "class_balanced"})
    assert sel.indices.tolist() == [0, 4, 5, 1, 6]
    assert [c["predicted_class"] for c in sel.components] == [0, 1, 2, 0, 1]
    assert [c["round"] for c in sel.components] == [0, 0, 0, 1, 1]


def test_class_balanced_is_for_classification_only():
    outputs = ModelOutputs("regression", mean=np.zeros(3), std=np.ones(3))
    with pytest.raises(StrategyError) as err:
        select("uncertainty", outputs, 2, params={"batch": "class_balanced"})
    assert err.value.param == "batch"


def test_batch_modes_return_everything_eligible_when_the_batch_is_larger():
    outputs, _ = three_chemotype_pool()
    for mode in ("diverse", "ranked_batch"):
        sel = select("uncertainty", outputs, 40, params={"batch": mode}, exclude=np.arange(20))
        assert sorted(sel.indices.tolist()) == [20, 21, 22, 23]
        assert len(sel.components) == 4


def test_min_uncertainty_applies_before_the_batch_mode():
    outputs, _ = three_chemotype_pool()
    sel = select("uncertainty", outputs, 3, params={"batch": "diverse", "min_uncertainty": 1.2})
    assert set(sel.indices.tolist()) <= set(range(8))


def test_fingerprints_must_be_packed_uint8():
    with pytest.raises(StrategyError) as err:
        ModelOutputs("regression", mean=np.zeros(2), fingerprints=np.zeros((2, 2048), dtype=float))
    assert err.value.param == "fingerprints"
