"""The trees of an ensemble's XGBoost members as ONE predictor: a multi-target booster, or
compiled arrays walked by a numba kernel.

Used for regression members and for binary classifiers (binary:logistic: each target is
a member's P(class 1)); multi-class members (softmax over each member's own K trees)
are left alone.

Predicting a member costs XGBoost a pass that copies every feature of every row into
its per-row buffer before any tree is walked: with ~700 columns that pass was half of
a member's predict time (measured: 0.13 s of ~0.23 s per 50,000 rows, 200 trees). A
booster with one target per member (XGBoost's `multi_strategy="one_output_per_tree"`
layout: `num_target` = members, a base score per target, `tree_info` naming each
tree's target) makes that pass once for all members. The trees are interleaved by
boosting round, so each target adds its member's leaves in the member's own order to
the member's own base score: the outputs are the members' outputs bit for bit
(tested), at ~0.65x the CPU time.

`compile_trees` goes one step further for regression members (no output transform):
every tree padded to a complete binary tree of the ensemble's depth, stored as flat
arrays, and walked level by level over a block of rows held column-major, so each
level is one branch-free step over independent rows rather than a pointer chase per
row. Same comparisons (`x < split` goes left, a missing value takes the node's default
side), same float32 sums in the same order: the members' outputs bit for bit (tested).
XGBoost's own predictor stays the fallback; a compiled form that needs a C compiler on
every worker (treelite/tl2cgen) was not taken because numba already compiles this
project's scoring kernels without one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from .compiled import kernel, split_rows

# Deeper trees would pad to 2**depth leaves each; XGBoost's predictor handles those.
MAX_COMPILED_DEPTH = 10
# Rows per block of the compiled walk: the block's columns a tree reads stay in L1.
_BLOCK = 64


def _gbtree_raws(members: Sequence[object]) -> list[dict[str, Any]] | None:
    """The members' JSON models when they are all single-target XGBoost gbtree boosters
    with the same objective, rounds and feature count, one tree per round and no
    categories; else None."""
    if len(members) < 2 or not all(isinstance(m, xgb.Booster) for m in members):
        return None
    raws = [json.loads(bytes(m.save_raw("json"))) for m in members]  # type: ignore[union-attr]
    first = raws[0]["learner"]
    rounds = []
    for raw in raws:
        learner = raw["learner"]
        param = learner["learner_model_param"]
        booster = learner["gradient_booster"]
        if (
            booster.get("name") != "gbtree"
            or learner["objective"] != first["objective"]
            or param.get("num_target", "1") != "1"
            or param.get("num_class", "0") != "0"
            or param["num_feature"] != first["learner_model_param"]["num_feature"]
            or booster["model"]["gbtree_model_param"].get("num_parallel_tree", "1") != "1"
            or any((booster["model"].get("cats") or {}).values())
            or any(tree.get("categories_nodes") for tree in booster["model"]["trees"])
        ):
            return None
        rounds.append(len(booster["model"]["trees"]))
    if len(set(rounds)) != 1:
        return None
    return raws


def _base_scores(raws: list[dict[str, Any]]) -> list[str]:
    # Each member's base score as XGBoost wrote it (shortest round-trip float32 text).
    return [raw["learner"]["learner_model_param"]["base_score"].strip("[]") for raw in raws]


def stack_boosters(members: Sequence[object], *, nthread: int) -> xgb.Booster | None:
    """One booster predicting (n, len(members)) = each member's output (after the objective's
    transform, as the member's own predict), or None when the
    members cannot be stacked exactly (not all single-target XGBoost boosters with the
    same objective, rounds and feature count, one tree per round, no categories)."""
    raws = _gbtree_raws(members)
    if raws is None:
        return None
    n_members = len(raws)
    n_rounds = len(raws[0]["learner"]["gradient_booster"]["model"]["trees"])
    trees, tree_info = [], []
    for k in range(n_rounds):
        for m, raw in enumerate(raws):
            tree = dict(raw["learner"]["gradient_booster"]["model"]["trees"][k])
            tree["id"] = len(trees)
            trees.append(tree)
            tree_info.append(m)
    bases = _base_scores(raws)
    stacked = json.loads(json.dumps(raws[0]))
    stacked["learner"]["learner_model_param"].update(base_score=f"[{','.join(bases)}]", num_target=str(n_members))
    model = stacked["learner"]["gradient_booster"]["model"]
    model.update(
        trees=trees,
        tree_info=tree_info,
        iteration_indptr=list(range(0, len(trees) + 1, n_members)),
        gbtree_model_param={"num_parallel_tree": "1", "num_trees": str(len(trees))},
    )
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(stacked).encode()))
    booster.set_param({"nthread": nthread})
    return booster


@dataclass(frozen=True)
class CompiledTrees:
    """The members' trees as complete binary trees of one depth, in flat arrays.

    Tree t (trees in boosting order, members interleaved as XGBoost would add them)
    belongs to member `member[t]`; its internal node q (heap order: children of q are
    2q+1 and 2q+2) is `feature/threshold/default_right[t * (2**depth - 1) + q]`, its
    leaf j `leaf[t * 2**depth + j]`. A leaf above the full depth is padded with nodes
    that always go left (threshold NaN: no comparison with it is true) over copies of
    its value.
    """

    depth: int
    n_features: int
    base: np.ndarray  # (members,) float32
    member: np.ndarray  # (trees,) int64
    feature: np.ndarray  # (trees * internal,) uint32
    threshold: np.ndarray  # (trees * internal,) float32
    default_right: np.ndarray  # (trees * internal,) uint32
    leaf: np.ndarray  # (trees * leaves,) float32

    def predict(self, X: np.ndarray, *, workers: int | None = None) -> np.ndarray:
        """(members, n) float32: each member's output for the rows of X."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must be (n, {self.n_features}), got {X.shape}")
        out = np.empty((self.base.shape[0], X.shape[0]), dtype=np.float32)

        def rows(lo: int, hi: int) -> None:
            _walk(
                X, self.feature, self.threshold, self.default_right, self.leaf, self.member, self.base,
                out, lo, hi, self.depth, _BLOCK,
            )

        split_rows(rows, X.shape[0], workers=workers, pieces=8)
        return out


def compile_trees(members: Sequence[object]) -> CompiledTrees | None:
    """The members as `CompiledTrees`, or None where the compiled walk would not give their
    outputs exactly: members that `stack_boosters` refuses, an objective with an output
    transform (only `reg:squarederror` is compiled), or trees deeper than
    MAX_COMPILED_DEPTH."""
    raws = _gbtree_raws(members)
    if raws is None or raws[0]["learner"]["objective"]["name"] != "reg:squarederror":
        return None
    per_member = [raw["learner"]["gradient_booster"]["model"]["trees"] for raw in raws]
    trees = [per_member[m][k] for k in range(len(per_member[0])) for m in range(len(raws))]
    depth = max((_tree_depth(tree) for tree in trees), default=0)
    if depth > MAX_COMPILED_DEPTH:
        return None
    internal, leaves = 2**depth - 1, 2**depth
    n = len(trees)
    feature = np.zeros(n * internal, dtype=np.uint32)
    threshold = np.full(n * internal, np.nan, dtype=np.float32)
    default_right = np.zeros(n * internal, dtype=np.uint32)
    leaf = np.zeros(n * leaves, dtype=np.float32)
    for t, tree in enumerate(trees):
        left, right = tree["left_children"], tree["right_children"]
        split, cond, default_left = tree["split_indices"], tree["split_conditions"], tree["default_left"]
        stack = [(0, 0)]  # (node, heap position)
        while stack:
            node, pos = stack.pop()
            if left[node] == -1:
                # Every heap leaf under pos: padded nodes keep threshold NaN (always left).
                first, span = pos, 1
                while first < internal:
                    first, span = 2 * first + 1, span * 2
                start = t * leaves + first - internal
                leaf[start : start + span] = cond[node]  # a leaf's value is its split_condition
                continue
            i = t * internal + pos
            feature[i] = split[node]
            threshold[i] = cond[node]
            default_right[i] = 0 if default_left[node] else 1
            stack.append((left[node], 2 * pos + 1))
            stack.append((right[node], 2 * pos + 2))
    return CompiledTrees(
        depth=depth,
        n_features=int(raws[0]["learner"]["learner_model_param"]["num_feature"]),
        base=np.array([float(b) for b in _base_scores(raws)], dtype=np.float32),
        member=np.array([k % len(raws) for k in range(n)], dtype=np.int64),
        feature=feature,
        threshold=threshold,
        default_right=default_right,
        leaf=leaf,
    )


def _tree_depth(tree: dict[str, Any]) -> int:
    left, right = tree["left_children"], tree["right_children"]
    depth, frontier = 0, [0]
    while True:
        frontier = [c for n in frontier if left[n] != -1 for c in (left[n], right[n])]
        if not frontier:
            return depth
        depth += 1


@kernel
def _walk(X, feature, threshold, default_right, leaf, member, base, out, lo, hi, depth, block):  # type: ignore[no-untyped-def]
    # Unsigned indices: numba adds a negative-index check to every signed one, which
    # cost ~40 % of this loop.
    n_members = base.shape[0]
    n_features = X.shape[1]
    n_trees = member.shape[0]
    internal = np.uint32(2**depth - 1)
    leaves = np.uint32(2**depth)
    width = np.uint32(block)
    acc = np.empty(n_members * block, np.float32)
    columns = np.empty(n_features * block, np.float32)  # the block, column-major
    pos = np.empty(block, np.uint32)
    one, two = np.uint32(1), np.uint32(2)
    for b0 in range(lo, hi, block):
        nb = min(b0 + block, hi) - b0
        for r in range(nb):
            for f in range(n_features):
                columns[f * block + r] = X[b0 + r, f]
        for k in range(n_members):
            for r in range(nb):
                acc[k * block + r] = base[k]
        for t in range(n_trees):
            nodes = np.uint32(t) * internal
            for r in range(nb):
                pos[r] = 0
            for _ in range(depth):
                for r in range(nb):
                    q = pos[r]
                    i = nodes + q
                    v = columns[feature[i] * width + np.uint32(r)]
                    # x < split goes left; NaN compares false both ways, so it goes
                    # right only where the node's default is right.
                    go_right = np.uint32(v >= threshold[i]) | (default_right[i] & np.uint32(v != v))
                    pos[r] = two * q + one + go_right
            first_leaf = np.uint32(t) * leaves - internal
            k = member[t]
            for r in range(nb):
                acc[k * block + r] += leaf[first_leaf + pos[r]]
        for k in range(n_members):
            for r in range(nb):
                out[k, b0 + r] = acc[k * block + r]
