"""REST API of active-learning cycles: select, list, retrain, retry, stats, job status."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compounds.api import CompoundSummarySerializer, enum_field, id_field
from config.api_errors import error_responses, parse_int_id, parse_uuid
from config.api_json import JSONParser
from config.api_permissions import IsLead, IsViewer
from config.exceptions import NotFound, ValidationFailed
from cycles import selectors as cycle_selectors
from cycles import services, strategies
from cycles.models import CycleStatus, Job, JobStatus
from cycles.services.retraining import DEFAULT_MIN_NEW_LABELS
from cycles.services.selection import MAX_BATCH_SIZE, MAX_POOL_LIST, PoolSpec
from labeling.api import ModelRefSerializer, QueueItemSerializer
from labeling.selectors import queue_items_list
from mlmodels import selectors as model_selectors
from mlmodels.models import MLModel

TAGS = ["active-learning"]
JSON = [JSONParser]
CYCLE_ID = OpenApiParameter("cycle_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Cycle id")
MAX_API_POOL_LIST = min(MAX_POOL_LIST, 10_000)




class CycleSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    model = ModelRefSerializer(help_text="The version the cycle selected with.")
    cycle_number = serializers.IntegerField()
    selection_strategy = serializers.CharField()
    strategy_params = serializers.DictField()
    batch_size = serializers.IntegerField()
    pool_description = serializers.CharField()
    status = enum_field(CycleStatus.values)
    metrics_before = serializers.DictField(allow_null=True)
    metrics_after = serializers.DictField(allow_null=True)
    items_selected = serializers.IntegerField()
    items_labeled = serializers.IntegerField()
    items_skipped = serializers.IntegerField()
    result_model = ModelRefSerializer(allow_null=True, help_text="The version the retrain produced.")
    job = serializers.UUIDField(source="job_id", allow_null=True)
    error = serializers.CharField()
    started_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class JobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = enum_field(JobStatus.values)
    stage = serializers.CharField()
    percent = serializers.IntegerField()
    error = serializers.CharField()
    params = serializers.DictField()
    result = serializers.DictField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class JobAcceptedSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = enum_field(JobStatus.values)
    status_url = serializers.CharField(help_text="Poll this for progress: GET /api/jobs/{id}/.")
    cycle_id = serializers.UUIDField(allow_null=True, help_text="null for a background selection: its job's result names the new cycle.")


def _accepted(job: Job, cycle_id: Any) -> Response:
    data = {"job_id": job.pk, "status": job.status, "status_url": f"/api/jobs/{job.pk}/", "cycle_id": cycle_id}
    return Response(JobAcceptedSerializer(data).data, status=status.HTTP_202_ACCEPTED)


# --- Select ------------------------------------------------------------------------------


class PoolSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["all", "dataset", "compounds", "smiles"], default="all")
    dataset_id = id_field(required=False, allow_null=True)
    compound_ids = serializers.ListField(child=id_field(), required=False, max_length=MAX_API_POOL_LIST)
    smiles = serializers.ListField(
        child=serializers.CharField(max_length=5000), required=False, max_length=MAX_API_POOL_LIST
    )
    substructure = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="Only pool compounds that contain this SMARTS (or SMILES): select within a series. "
        "A pool that would need more than CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT compounds parsed (those the "
        "stored screen cannot rule out) is refused (400): narrow it first.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", "all")
        if kind == "dataset" and not attrs.get("dataset_id"):
            raise serializers.ValidationError({"dataset_id": ["required for a dataset pool"]})
        if kind == "compounds" and not attrs.get("compound_ids"):
            raise serializers.ValidationError({"compound_ids": ["required (non-empty) for a compounds pool"]})
        if kind == "smiles" and not attrs.get("smiles"):
            raise serializers.ValidationError({"smiles": ["required (non-empty) for a smiles pool"]})
        return attrs


class CandidateCompoundSerializer(CompoundSummarySerializer):
    id = serializers.IntegerField(
        allow_null=True, help_text="null for a pasted structure that a preview scored but did not register."
    )


class CycleSelectApi(APIView):
    """Score a pool with a model, rank it with a strategy and queue the batch as a new cycle.

    With `preview: true` nothing is written: the candidates come back with 200 and
    `cycle: null`. Otherwise 201 with the new cycle and its queue items.
    """

    permission_classes = [IsLead]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CycleSelectInput"

        model = id_field(help_text="The active model version to select with.")
        pool = PoolSerializer(required=False)
        strategy = serializers.ChoiceField(choices=list(strategies.STRATEGIES), default="uncertainty")
        params = serializers.DictField(required=False, default=dict, help_text="Strategy parameters.")
        batch_size = serializers.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, default=50)
        random_state = serializers.IntegerField(min_value=0, max_value=2**32 - 1, required=False, allow_null=True)
        preview = serializers.BooleanField(default=False)
        background = serializers.BooleanField(
            default=False,
            help_text="Queue the selection as a job and answer 202 at once (a 1M pool scores for about a "
            "minute): poll status_url; once it succeeded, its result holds cycle_id. Not with preview "
            "or pasted smiles.",
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CycleSelectOutput"

        class CandidateSerializer(serializers.Serializer):
            rank = serializers.IntegerField()
            compound = CandidateCompoundSerializer()
            registered = serializers.BooleanField(
                help_text="False: a pasted structure not in the registry; a preview keeps nothing of it."
            )
            priority_score = serializers.FloatField()
            prediction = serializers.FloatField(allow_null=True)
            uncertainty = serializers.FloatField(allow_null=True)
            applicability_distance = serializers.FloatField(allow_null=True)
            probabilities = serializers.ListField(child=serializers.FloatField(), allow_null=True)
            score_components = serializers.DictField()

        class PoolErrorSerializer(serializers.Serializer):
            row = serializers.IntegerField(help_text="Line of the pasted list / position in compound_ids.")
            input = serializers.CharField()
            reason = serializers.CharField(help_text="Unreadable, or why a listed compound is not in the pool.")
            compound_id = serializers.IntegerField(allow_null=True, required=False, default=None)

        preview = serializers.BooleanField()
        strategy = serializers.CharField()
        params = serializers.DictField()
        pool_size = serializers.IntegerField()
        pool_errors = PoolErrorSerializer(many=True)
        candidates = CandidateSerializer(many=True)
        cycle = CycleSerializer(allow_null=True)
        items = QueueItemSerializer(many=True)

    # The service names a strategy parameter or pool setting by its own name (the web form
    # has a field of that name); in the JSON body it sits under `params` or `pool`.
    _POOL_KEYS = frozenset({"dataset_id", "compound_ids", "smiles", "substructure"})

    def _payload_path(self, field: str | None) -> str | None:
        if field is None or field in self.InputSerializer().fields:
            return field
        return f"pool.{field}" if field in self._POOL_KEYS else f"params.{field}"

    @extend_schema(
        tags=TAGS,
        operation_id="al_select",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(OutputSerializer, description="A new cycle with its queue items."),
            200: OpenApiResponse(OutputSerializer, description="Preview: candidates only, nothing written."),
            202: OpenApiResponse(JobAcceptedSerializer, description="background: the selection job is queued."),
            **error_responses(400, 409, 503),
        },
    )
    def post(self, request: Request) -> Response:
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        model = MLModel.objects.select_related("assay").filter(pk=d["model"]).first()
        if model is None:
            raise ValidationFailed("No such model.", extra={"field": "model"})
        p = d.get("pool") or {}
        pool = PoolSpec(
            kind=p.get("kind", "all"),
            dataset_id=p.get("dataset_id"),
            compound_ids=tuple(p.get("compound_ids") or ()),
            smiles=tuple(p.get("smiles") or ()),
            substructure=p.get("substructure", ""),
        )
        if d["background"] and d["preview"]:
            raise ValidationFailed("a preview answers right away; leave out background", extra={"field": "background"})
        request_args = {
            "model": model, "user": request.user, "strategy": d["strategy"], "batch_size": d["batch_size"],
            "params": d["params"], "pool": pool, "random_state": d.get("random_state"),
        }
        try:
            if d["background"]:
                return _accepted(services.cycle_select_start(**request_args), None)
            result = services.cycle_select(**request_args, preview=d["preview"])
        except ValidationFailed as exc:
            raise ValidationFailed(exc.message, extra={**exc.extra, "field": self._payload_path(exc.extra.get("field"))}) from exc
        items = list(queue_items_list(cycle_id=result.cycle.pk)) if result.cycle is not None else []
        data = {
            "preview": result.cycle is None,
            "strategy": result.strategy,
            "params": result.params,
            "pool_size": result.pool_size,
            "pool_errors": result.pool_errors,
            "candidates": result.candidates,
            "cycle": result.cycle,
            "items": items,
        }
        code = status.HTTP_200_OK if result.cycle is None else status.HTTP_201_CREATED
        return Response(self.OutputSerializer(data).data, status=code)


# --- Cycles ------------------------------------------------------------------------------


class CycleListApi(GenericAPIView):
    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CycleListFilter"

        model = id_field(required=False, help_text="Any version of the lineage: lists every cycle of the lineage.")
        status = serializers.ChoiceField(choices=CycleStatus.values, required=False)

    OutputSerializer = CycleSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="al_cycles_list",
        parameters=[FilterSerializer],
        responses={200: CycleSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        f = self.FilterSerializer(data=request.query_params)
        f.is_valid(raise_exception=True)
        qs = cycle_selectors.cycles_list(model_id=f.validated_data.get("model"), status=f.validated_data.get("status"))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)


class CycleRetrainApi(APIView):
    """Enqueue the retrain job of a cycle (202); poll the returned status URL."""

    permission_classes = [IsLead]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CycleRetrainInput"

        min_new_labels = serializers.IntegerField(min_value=0, max_value=1_000_000, default=DEFAULT_MIN_NEW_LABELS)

    @extend_schema(
        tags=TAGS,
        operation_id="al_cycles_retrain",
        parameters=[CYCLE_ID],
        request=InputSerializer,
        responses={202: JobAcceptedSerializer, **error_responses(400, 404, 409, 503)},
    )
    def post(self, request: Request, cycle_id: str) -> Response:
        pk = parse_uuid(cycle_id, what="cycle")
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        job = services.cycle_retrain_trigger(
            cycle_id=pk, user=request.user, min_new_labels=s.validated_data["min_new_labels"]
        )
        return _accepted(job, pk)


class CycleRetryApi(APIView):
    """Re-run the retrain of a failed cycle (202)."""

    permission_classes = [IsLead]

    @extend_schema(
        tags=TAGS,
        operation_id="al_cycles_retry",
        parameters=[CYCLE_ID],
        request=None,
        responses={202: JobAcceptedSerializer, **error_responses(404, 409, 503)},
    )
    def post(self, request: Request, cycle_id: str) -> Response:
        pk = parse_uuid(cycle_id, what="cycle")
        return _accepted(services.cycle_retry(cycle_id=pk, user=request.user), pk)


# --- Stats -------------------------------------------------------------------------------


class CycleStatsApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CycleStatsOutput"

        class ModelSummarySerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField()
            version = serializers.IntegerField()
            status = serializers.CharField()

        class VersionRefSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            version = serializers.IntegerField()

        class CycleRowSerializer(serializers.Serializer):
            id = serializers.UUIDField()
            cycle_number = serializers.IntegerField()
            status = serializers.CharField()
            strategy = serializers.CharField()
            model_version = serializers.IntegerField()
            result_version = serializers.IntegerField(allow_null=True)
            items_selected = serializers.IntegerField()
            items_labeled = serializers.IntegerField()
            items_skipped = serializers.IntegerField()
            metrics_before = serializers.DictField(allow_null=True)
            metrics_after = serializers.DictField(allow_null=True)
            primary_before = serializers.FloatField(allow_null=True)
            primary_after = serializers.FloatField(allow_null=True)
            primary_change = serializers.FloatField(allow_null=True)
            training_size_after = serializers.IntegerField(allow_null=True)
            labels_added = serializers.IntegerField(
                allow_null=True, help_text="Training labels the cycle's retrain added (its new version minus the one it replaced); "
                "null for a cycle completed by another cycle's retrain (see retrained_with_cycle)."
            )
            retrained_with_cycle = serializers.IntegerField(
                allow_null=True, help_text="The cycle whose retrain learned this cycle's labels, when it was another one."
            )
            error = serializers.CharField()
            job_id = serializers.UUIDField(allow_null=True)
            started_at = serializers.DateTimeField()
            completed_at = serializers.DateTimeField(allow_null=True)

        class CurvePointSerializer(serializers.Serializer):
            version = serializers.IntegerField()
            labels = serializers.IntegerField(help_text="Training-set size of the version.")
            value = serializers.FloatField(allow_null=True)
            status = serializers.CharField()

        class RuleSerializer(serializers.Serializer):
            k = serializers.IntegerField()
            delta = serializers.FloatField()

        model = ModelSummarySerializer()
        active_version = VersionRefSerializer(allow_null=True)
        primary_metric = serializers.CharField()
        direction = serializers.ChoiceField(choices=["lower", "higher"])
        cycles = CycleRowSerializer(many=True)
        learning_curve = CurvePointSerializer(many=True)
        total_cycles = serializers.IntegerField()
        total_labeled = serializers.IntegerField()
        total_skipped = serializers.IntegerField()
        queue = serializers.DictField(
            child=serializers.IntegerField(), help_text="Item counts by status, over every version of the lineage."
        )
        converged = serializers.BooleanField()
        convergence_rule = RuleSerializer()

    @extend_schema(
        tags=TAGS,
        operation_id="al_stats",
        parameters=[OpenApiParameter("model_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: OutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, model_id: str) -> Response:
        model = model_selectors.model_get(model_id=parse_int_id(model_id, what="model"))
        return Response(self.OutputSerializer(services.cycle_stats(model=model)).data)


# --- Jobs --------------------------------------------------------------------------------


class JobDetailApi(APIView):
    """A background job's progress; a job whose worker died shows up as failed."""

    permission_classes = [IsViewer]

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_retrieve",
        parameters=[OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: JobSerializer, **error_responses(404)},
    )
    def get(self, request: Request, job_id: str) -> Response:
        pk = parse_uuid(job_id, what="job")
        job = Job.objects.filter(pk=pk).first()
        if job is None:
            raise NotFound("No such job.")
        if not job.is_finished:
            services.jobs_reconcile(job_ids=[pk])
            job.refresh_from_db()
        return Response(JobSerializer(job).data)
