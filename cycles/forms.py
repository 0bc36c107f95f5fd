"""The sample-selection form: it turns fields into the arguments of `cycle_select`."""

from __future__ import annotations

from typing import Any

from django import forms

from compounds.models import Dataset
from cycles.services.selection import MAX_BATCH_SIZE, PoolSpec
from cycles.strategies import BATCH_MODES, DEFAULT_HYBRID_WEIGHTS
from mlmodels.ml import presets
from mlmodels.models import MLModel, ModelStatus

POOL_CHOICES = [("all", "All unlabeled compounds"), ("dataset", "A dataset"), ("list", "Pasted SMILES or compound ids")]
GOALS = {"improve": "Improve the model", "find": "Find the best compounds"}
WARMUP_CHOICES = [
    ("", "none"),
    ("random", "random"),
    ("greedy_sampling", "greedy sampling"),  # regression only
    # Best of all strategies for the first few hundred labels (BENCHMARKS.md, solubility).
    ("variance_reduction", "variance reduction"),
]

DESIGN_TARGETS = [
    ("pool", "the pool"),
    ("validation", "the validation compounds"),
    ("both", "both, half each"),
]


class SelectionForm(forms.Form):
    model = forms.ModelChoiceField(queryset=MLModel.objects.none(), empty_label=None)
    pool = forms.ChoiceField(choices=POOL_CHOICES, initial="all", widget=forms.RadioSelect)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), required=False)
    compounds = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="One SMILES or compound id per line."
    )
    substructure = forms.CharField(
        required=False, max_length=1000, help_text="Only compounds containing this SMARTS or SMILES (a series)."
    )
    strategy = forms.ChoiceField(choices=[])
    batch_size = forms.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, initial=20)
    batch = forms.ChoiceField(
        choices=[(k, k.replace("_", " ") + (" (classification only)" if k == "class_balanced" else "")) for k in BATCH_MODES],
        initial="top",
    )
    # A schedule (strategies.select's `warmup`): another strategy picks until the model
    # has been trained on `warmup_until` compounds.
    warmup = forms.ChoiceField(choices=WARMUP_CHOICES, required=False)
    warmup_until = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)
    # variance_reduction's `target` (as the strategy or as the warm-up): where its design
    # lowers the model's uncertainty.
    design_target = forms.ChoiceField(choices=DESIGN_TARGETS, required=False, initial="pool")
    # variance_reduction's `ensemble_weight` when it is the strategy (a warm-up design stays
    # label-free): how much the fitted members' own covariance counts beside the kernel's.
    design_ensemble_weight = forms.FloatField(required=False, min_value=0, max_value=1000, initial=0)
    min_uncertainty = forms.FloatField(required=False, min_value=0)
    w_uncertainty = forms.FloatField(required=False, min_value=0, initial=DEFAULT_HYBRID_WEIGHTS["uncertainty"])
    w_margin = forms.FloatField(required=False, min_value=0, initial=DEFAULT_HYBRID_WEIGHTS["margin"])
    w_applicability = forms.FloatField(required=False, min_value=0, initial=DEFAULT_HYBRID_WEIGHTS["applicability"])
    beta = forms.FloatField(required=False, min_value=0, initial=2.0)
    xi = forms.FloatField(required=False, min_value=0, initial=0.01)
    seed = forms.IntegerField(required=False, min_value=0, initial=0, help_text="Same seed, same batch.")

    def __init__(self, *args: Any, catalog: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `catalog` holds the strategies the model's task supports (cycles.views._catalog_for):
        # a warm-up or a parameter no strategy of it takes is not offered, only to be refused.
        self.catalog = {s["name"]: s for s in catalog}
        self.fields["warmup"].choices = [(v, t) for v, t in WARMUP_CHOICES if not v or v in self.catalog]
        self.accepted_params = {key for s in catalog for key in s["params"]}
        self.fields["model"].queryset = MLModel.objects.filter(status=ModelStatus.ACTIVE).select_related("assay")
        # The benchmarks' winners (mlmodels.ml.presets) are marked and preselected.
        recommended = {"improve": presets.MODEL_IMPROVEMENT["strategy"], "find": presets.HIT_FINDING["strategy"]}
        self.recommended = recommended
        self.fields["strategy"].choices = [
            (
                GOALS[goal],
                [
                    (s["name"], s["name"].replace("_", " ") + (" (recommended)" if s["name"] == recommended[goal] else ""))
                    for s in catalog
                    if s["goal"] == goal
                ],
            )
            for goal in GOALS
        ]


    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("pool") == "dataset" and not data.get("dataset"):
            self.add_error("dataset", "Choose the dataset to select from.")
        if data.get("pool") == "list" and not self.pool_lines():
            self.add_error("compounds", "Paste at least one SMILES or compound id.")
        if data.get("warmup") and not data.get("warmup_until"):
            self.add_error("warmup_until", "Say until how many labels the warm-up strategy picks.")
        if data.get("warmup") and data.get("warmup") == data.get("strategy") and not self._design_counts_ensemble():
            self.add_error(
                "warmup",
                "The warm-up must be another strategy than the one it leads into (or, for variance reduction, "
                "the same design before it counts the ensemble's covariance).",
            )
        if data.get("batch") == "class_balanced" and data.get("model") and not data["model"].assay.is_classification:
            self.add_error("batch", "Class-balanced batches need a classification model.")
        return data

    def _design_counts_ensemble(self) -> bool:
        data = self.cleaned_data
        return data.get("strategy") == "variance_reduction" and (data.get("design_ensemble_weight") or 0) > 0

    def pool_lines(self) -> list[str]:
        text = self.cleaned_data.get("compounds") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def pool_spec(self) -> PoolSpec:
        data = self.cleaned_data
        substructure = (data.get("substructure") or "").strip()
        if data["pool"] == "dataset":
            return PoolSpec(kind="dataset", dataset_id=data["dataset"].pk, substructure=substructure)
        if data["pool"] == "list":
            lines = self.pool_lines()
            # All digits: registered compound ids; anything else is read as SMILES (bad rows are reported).
            if all(line.isdigit() for line in lines):
                return PoolSpec(
                    kind="compounds", compound_ids=tuple(int(line) for line in lines), substructure=substructure
                )
            return PoolSpec(kind="smiles", smiles=tuple(lines), substructure=substructure)
        return PoolSpec(substructure=substructure)

    def params(self) -> dict[str, Any]:
        """Only the parameters the chosen strategy accepts (the strategy refuses unknown ones)."""
        data = self.cleaned_data
        accepted = self.catalog.get(data["strategy"], {}).get("params", {})
        params: dict[str, Any] = {"batch": data["batch"]}
        if data.get("min_uncertainty") is not None:
            params["min_uncertainty"] = data["min_uncertainty"]
        target = data.get("design_target") or "pool"
        if data.get("warmup") and data.get("warmup_until"):
            params["warmup"] = {"strategy": data["warmup"], "until_labeled": data["warmup_until"]}
            if data["warmup"] == "variance_reduction":
                params["warmup"]["params"] = {"target": target}
        if "target" in accepted:
            params["target"] = target
        if "ensemble_weight" in accepted and data.get("design_ensemble_weight"):
            params["ensemble_weight"] = data["design_ensemble_weight"]
        if "weights" in accepted:
            params["weights"] = {
                "uncertainty": _or(data.get("w_uncertainty"), DEFAULT_HYBRID_WEIGHTS["uncertainty"]),
                "margin": _or(data.get("w_margin"), DEFAULT_HYBRID_WEIGHTS["margin"]),
                "applicability": _or(data.get("w_applicability"), DEFAULT_HYBRID_WEIGHTS["applicability"]),
            }
        for key in ("beta", "xi"):
            if key in accepted and data.get(key) is not None:
                params[key] = data[key]
        return params


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
