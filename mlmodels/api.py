"""REST API of the model registry: list, detail, versions (lineage), predict."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compounds.api import AssaySummarySerializer, enum_field, id_field
from config.api_errors import error_responses, parse_int_id
from config.api_json import JSONParser
from config.api_permissions import IsViewer
from mlmodels import selectors, services
from mlmodels.models import MLModel, ModelStatus

TAGS = ["models"]
MODEL_ID = OpenApiParameter("model_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Model (version) id")
MAX_PREDICT_ROWS = 1000


def _model_get(model_id: str) -> MLModel:
    return selectors.model_get(model_id=parse_int_id(model_id, what="model"))


class ModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="The lineage: every version of a model shares its name.")
    version = serializers.IntegerField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    status = enum_field(ModelStatus.values)
    assay = AssaySummarySerializer()
    algorithm = serializers.CharField()
    n_members = serializers.IntegerField()
    training_size = serializers.IntegerField()
    validation_set = serializers.IntegerField(source="validation_set_id")
    metrics = serializers.SerializerMethodField(help_text="Headline metrics on the fixed validation set.")
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    trained_at = serializers.DateTimeField(allow_null=True)

    def get_metrics(self, obj: MLModel) -> dict[str, Any]:
        return selectors.metrics_headline(obj.metrics)


class ModelListApi(GenericAPIView):
    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ModelListFilter"

        name = serializers.CharField(required=False, max_length=200, help_text="One lineage.")
        status = serializers.ChoiceField(choices=ModelStatus.values, required=False)
        assay = id_field(required=False)

    OutputSerializer = ModelSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="models_list",
        parameters=[FilterSerializer],
        responses={200: ModelSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        f = self.FilterSerializer(data=request.query_params)
        f.is_valid(raise_exception=True)
        d = f.validated_data
        qs = selectors.models_list()
        if d.get("name"):
            qs = qs.filter(name=d["name"])
        if d.get("status"):
            qs = qs.filter(status=d["status"])
        if d.get("assay"):
            qs = qs.filter(assay_id=d["assay"])
        page = self.paginate_queryset(qs.order_by("name", "-version"))
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)


class ModelDetailApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(ModelSerializer):
        class Meta:
            ref_name = "ModelDetailOutput"

        hyperparameters = serializers.DictField()
        featurizer = serializers.DictField()
        all_metrics = serializers.DictField(source="metrics", help_text="Every metric, incl. per-compound arrays.")
        validation_set_name = serializers.CharField(source="validation_set.name")

    @extend_schema(
        tags=TAGS,
        operation_id="models_retrieve",
        parameters=[MODEL_ID],
        responses={200: OutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, model_id: str) -> Response:
        return Response(self.OutputSerializer(_model_get(model_id)).data)


class ModelVersionListApi(APIView):
    """Every version of the model's lineage, oldest first."""

    permission_classes = [IsViewer]
    OutputSerializer = ModelSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="models_versions",
        parameters=[MODEL_ID],
        responses={200: ModelSerializer(many=True), **error_responses(404)},
    )
    def get(self, request: Request, model_id: str) -> Response:
        model = _model_get(model_id)
        return Response(self.OutputSerializer(selectors.models_list().filter(name=model.name).order_by("version"), many=True).data)


class ModelPredictApi(APIView):
    """Predictions for posted SMILES or registered compound ids; a bad SMILES is a row error."""

    permission_classes = [IsViewer]
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ModelPredictInput"

        smiles = serializers.ListField(
            child=serializers.CharField(max_length=5000), required=False, min_length=1, max_length=MAX_PREDICT_ROWS
        )
        compound_ids = serializers.ListField(
            child=id_field(), required=False, min_length=1, max_length=MAX_PREDICT_ROWS
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if ("smiles" in attrs) == ("compound_ids" in attrs):
                raise serializers.ValidationError({"smiles": ["send either smiles or compound_ids (not both)"]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ModelPredictOutput"

        class RowSerializer(serializers.Serializer):
            input = serializers.CharField()
            compound_id = serializers.IntegerField(allow_null=True)
            prediction = serializers.FloatField(allow_null=True)
            uncertainty = serializers.FloatField(
                allow_null=True, help_text="Regression: the spread (std) of the members; classification: predictive entropy."
            )
            predictive_std = serializers.FloatField(
                allow_null=True,
                help_text="Regression: the std of the error to expect (the spread calibrated on out-of-bag errors); "
                "prediction ± 1.96 × it is the 95 % interval. Null for classification.",
            )
            applicability_distance = serializers.FloatField(allow_null=True)
            probabilities = serializers.ListField(child=serializers.FloatField(), allow_null=True)
            predicted_class = serializers.CharField(allow_null=True)
            error = serializers.CharField(allow_null=True)

        model = serializers.IntegerField()
        results = RowSerializer(many=True)

    @extend_schema(
        tags=TAGS,
        operation_id="models_predict",
        parameters=[MODEL_ID],
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, model_id: str) -> Response:
        model = _model_get(model_id)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        rows = services.model_predict(
            model=model, smiles=s.validated_data.get("smiles"), compound_ids=s.validated_data.get("compound_ids")
        )
        return Response(self.OutputSerializer({"model": model.pk, "results": rows}).data)
