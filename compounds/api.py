"""REST API of the compound registry: compounds, file import, assays, measurements."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compounds import selectors, services
from compounds.models import Assay, Compound, LabelConfidence, LabelSource, TaskType
from config.api_errors import MAX_ID, RequestTooLarge, error_responses, parse_int_id
from config.api_json import JSONParser
from config.api_pagination import CompoundPagination
from config.api_permissions import IsLead, IsViewer, ReadViewerWriteLead, ReadViewerWriteScientist
from config.exceptions import ValidationFailed

TAGS = ["compounds"]
JSON = [JSONParser]


def structure_url(compound_id: int) -> str:
    return f"/compounds/{compound_id}/structure.svg"


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def enum_field(values: Any, **kwargs: Any) -> serializers.CharField:
    """An output string documented as an inline enum (no shared component whose name could clash)."""
    return extend_schema_field({"type": "string", "enum": list(values)})(serializers.CharField(**kwargs))


# --- Shared output shapes --------------------------------------------------------------


class CompoundPropertiesSerializer(serializers.Serializer):
    mw = serializers.FloatField(allow_null=True)
    clogp = serializers.FloatField(allow_null=True)
    tpsa = serializers.FloatField(allow_null=True)
    hbd = serializers.IntegerField(allow_null=True)
    hba = serializers.IntegerField(allow_null=True)
    rotatable_bonds = serializers.IntegerField(allow_null=True)
    heavy_atoms = serializers.IntegerField()


class CompoundSummarySerializer(serializers.Serializer):
    """A compound as it appears inside other objects."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    canonical_smiles = serializers.CharField()
    inchikey = serializers.CharField()


class CompoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    external_id = serializers.CharField()
    smiles = serializers.CharField()
    canonical_smiles = serializers.CharField()
    inchikey = serializers.CharField()
    properties = CompoundPropertiesSerializer(source="*")
    structure_svg_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_structure_svg_url(self, obj: Compound) -> str:
        return structure_url(obj.pk)


class CompoundHitSerializer(CompoundSerializer):
    similarity = serializers.FloatField(
        default=None, allow_null=True, help_text="Tanimoto to similar_to; null for a substructure search."
    )


class StructureSearchSerializer(serializers.Serializer):
    mode = serializers.SerializerMethodField()
    scanned = serializers.IntegerField(help_text="Compounds looked at.")
    searchable = serializers.IntegerField(help_text="Compounds in scope (the dataset, or the registry).")
    max_hits = serializers.IntegerField()
    hit_limit = serializers.BooleanField(help_text="True when the search stopped at max_hits.")
    complete = serializers.BooleanField(help_text="Every compound in scope was looked at and all hits are listed.")

    def get_mode(self, obj: Any) -> str:
        return "similarity" if obj.ranked_by_similarity else "substructure"


class AssaySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    units = serializers.CharField()
    task_type = enum_field(TaskType.values)
    classes = serializers.ListField(child=serializers.CharField())
    direction = serializers.CharField()
    min_value = serializers.FloatField(allow_null=True, help_text="Lowest plausible label; lower values are refused.")
    max_value = serializers.FloatField(allow_null=True, help_text="Highest plausible label; higher values are refused.")
    created_at = serializers.DateTimeField()


class AssaySummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    units = serializers.CharField()
    task_type = serializers.CharField()


class MeasurementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    compound = CompoundSummarySerializer()
    assay = AssaySummarySerializer()
    value = serializers.FloatField(help_text="Regression: the value; classification: the class index.")
    display_value = serializers.CharField()
    source = serializers.CharField()
    confidence = serializers.CharField()
    notes = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    queue_item = serializers.UUIDField(source="queue_item_id", allow_null=True)
    created_at = serializers.DateTimeField()


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "maxLength": 200}]})
class LabelValueField(serializers.Field):
    """A number, or for a classification assay a class name (a string) or class index (a number);
    the type is kept because it decides which one (compounds.services.parse_class_value)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (int, float, str)):
            raise serializers.ValidationError("must be a number or a class name")
        if isinstance(data, str) and (len(data) > 200 or "\x00" in data):
            raise serializers.ValidationError("must be a number or a class name of at most 200 characters")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


# --- Compounds ---------------------------------------------------------------------------


class CompoundListCreateApi(GenericAPIView):
    """GET lists/searches compounds (viewer); POST registers one from SMILES (scientist).

    One URL serves both operations because Django routes a path to one view.
    """

    permission_classes = [ReadViewerWriteScientist]
    parser_classes = JSON
    pagination_class = CompoundPagination

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CompoundListCreateFilter"

        q = serializers.CharField(
            required=False, allow_blank=True, max_length=1000, help_text="Name (matched inside names from 3 characters on, whole below), external ID, SMILES, or InChIKey (a prefix from 3 characters on)."
        )
        substructure = serializers.CharField(
            required=False,
            max_length=1000,
            help_text="Compounds containing this SMARTS (or SMILES; Kekulé rings are aromatised), by id. "
            "The response's `search` says how many compounds were looked at.",
        )
        similar_to = serializers.CharField(
            required=False, max_length=5000, help_text="Compounds similar to this SMILES, most similar first."
        )
        threshold = serializers.FloatField(
            required=False, min_value=0.0, max_value=1.0, default=0.5, help_text="Tanimoto cut-off for similar_to."
        )
        dataset = id_field(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            given = [name for name in ("q", "substructure", "similar_to") if attrs.get(name)]
            if len(given) > 1:
                raise serializers.ValidationError({given[1]: [f"use one of q, substructure, similar_to (got {', '.join(given)})"]})
            return attrs

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CompoundListCreateInput"

        smiles = serializers.CharField(max_length=5000)
        name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        external_id = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")

    OutputSerializer = CompoundSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="compounds_list",
        description="Lists compounds by id; `q` searches names, IDs, SMILES and InChIKeys. "
        "`substructure` (SMARTS or SMILES) or `similar_to` (SMILES, with `threshold`) run a "
        "structure search instead: at most one of q / substructure / similar_to. A structure "
        "search's page also has `search`: {mode, scanned, searchable, max_hits, hit_limit, "
        "complete}; a substructure search parses up to CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT "
        "compounds its stored screen cannot rule out, and `complete` says whether it covered the scope.",
        parameters=[FilterSerializer],
        responses={200: CompoundHitSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        f = self.FilterSerializer(data=request.query_params)
        f.is_valid(raise_exception=True)
        data, dataset_id = f.validated_data, f.validated_data.get("dataset")
        if not (data.get("substructure") or data.get("similar_to")):
            page = self.paginate_queryset(selectors.compound_search(query=data.get("q", ""), dataset_id=dataset_id))
            return self.get_paginated_response(self.OutputSerializer(page, many=True).data)
        mode = "substructure" if data.get("substructure") else "similarity"
        search = selectors.compound_structure_search(
            mode=mode,
            query=data.get("substructure") or data["similar_to"],
            threshold=data["threshold"],
            dataset_id=dataset_id,
        )
        page = self.paginate_queryset(search.compounds)
        response = self.get_paginated_response(CompoundHitSerializer(page, many=True).data)
        response.data["search"] = StructureSearchSerializer(search).data
        return response

    @extend_schema(
        tags=TAGS,
        operation_id="compounds_create",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(CompoundSerializer, description="Registered a new compound."),
            200: OpenApiResponse(CompoundSerializer, description="The structure was already registered."),
            **error_responses(400),
        },
    )
    def post(self, request: Request) -> Response:
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        compound, created = services.compound_register(**s.validated_data)
        return Response(
            self.OutputSerializer(compound).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class CompoundDetailApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(CompoundSerializer):
        class Meta:
            ref_name = "CompoundDetailOutput"

        class DatasetSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField()

        datasets = DatasetSerializer(many=True, source="dataset_list")
        measurements = MeasurementSerializer(many=True, source="measurement_list")

    @extend_schema(
        tags=TAGS,
        operation_id="compounds_retrieve",
        parameters=[OpenApiParameter("compound_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: OutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, compound_id: str) -> Response:
        compound = selectors.compound_get(compound_id=parse_int_id(compound_id, what="compound"))
        compound.dataset_list = list(selectors.compound_datasets(compound=compound))
        compound.measurement_list = list(selectors.compound_measurements(compound=compound).select_related("compound"))
        return Response(self.OutputSerializer(compound).data)


class CompoundImportApi(APIView):
    """Import a CSV/TSV/SMI/SDF file into a dataset; returns the per-row report (lead)."""

    permission_classes = [IsLead]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CompoundImportInput"

        file = serializers.FileField(help_text="CSV, TSV, SMI or SDF; the extension decides the format.")
        dataset = serializers.CharField(max_length=200, help_text="Dataset name (created if new).")
        assay = id_field(required=False, allow_null=True, help_text="Assay the value column measures.")
        value_column = serializers.CharField(required=False, allow_blank=True, max_length=200)
        smiles_column = serializers.CharField(required=False, allow_blank=True, max_length=200)
        name_column = serializers.CharField(required=False, allow_blank=True, max_length=200)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CompoundImportOutput"

        class IssueSerializer(serializers.Serializer):
            row = serializers.IntegerField(
                help_text="CSV/TSV/SMI: the line in the file where the row starts (the header is line 1); "
                "SDF: the record number."
            )
            input = serializers.CharField()
            reason = serializers.CharField()
            kind = enum_field(
                ["rejected", "duplicate", "value_skipped", "note"],
                help_text="rejected: the row was not imported; duplicate: the structure was already in the file "
                "(registered once, its value kept as a replicate); value_skipped: registered without a value; "
                "note: something to check about an imported row.",
            )

        dataset_id = serializers.IntegerField(allow_null=True)
        dataset_name = serializers.CharField()
        total_rows = serializers.IntegerField()
        imported = serializers.IntegerField()
        created = serializers.IntegerField()
        existing = serializers.IntegerField()
        duplicates_in_file = serializers.IntegerField()
        invalid = serializers.IntegerField()
        measurements_created = serializers.IntegerField()
        values_skipped = serializers.IntegerField(
            help_text="Rows registered without a value: an empty or NA cell, a censored value ('>10'), a range or "
            "units in the cell (each is a row issue of kind value_skipped). Not counted in `invalid`."
        )
        issues = IssueSerializer(many=True)
        issues_truncated = serializers.BooleanField()
        non_utf8_bytes = serializers.IntegerField(
            help_text="Bytes that were not UTF-8 and were read as Windows-1252 (a legacy spreadsheet export)."
        )
        background_jobs_not_queued = serializers.BooleanField(
            help_text="The job queue was unreachable after the import committed: the new compounds' properties "
            "and search screen wait for the next import (scoring computes missing features itself)."
        )

    @extend_schema(
        tags=TAGS,
        operation_id="compounds_import",
        request={"multipart/form-data": InputSerializer},
        responses={200: OutputSerializer, **error_responses(400, 413)},
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is not None and upload.size > settings.CHEMLOOP_MAX_UPLOAD_BYTES:
            raise RequestTooLarge(
                f"The file is {upload.size} bytes; the limit is {settings.CHEMLOOP_MAX_UPLOAD_BYTES} bytes."
            )
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        assay = None
        if d.get("assay"):
            assay = Assay.objects.filter(pk=d["assay"]).first()
            if assay is None:
                raise ValidationFailed("No such assay.", extra={"field": "assay"})
        report = services.compounds_import(
            stream=d["file"],
            filename=d["file"].name or "",
            dataset_name=d["dataset"],
            assay=assay,
            value_column=d.get("value_column") or None,
            smiles_column=d.get("smiles_column") or None,
            name_column=d.get("name_column") or None,
            user=request.user,
            processes=1,
        )
        return Response(self.OutputSerializer(report.as_dict()).data)


# --- Assays -------------------------------------------------------------------------------


class AssayListCreateApi(GenericAPIView):
    """GET lists assays (viewer); POST creates one (lead). An existing name is returned with 200
    when it agrees with the settings given, else a 409 naming each difference."""

    permission_classes = [ReadViewerWriteLead]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AssayListCreateInput"

        name = serializers.CharField(max_length=200)
        task_type = serializers.ChoiceField(
            choices=TaskType.choices, required=False, help_text="Default for a new assay: regression."
        )
        units = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")
        classes = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, default=list, max_length=100
        )
        min_value = serializers.FloatField(
            required=False, allow_null=True, default=None, min_value=-1e38, max_value=1e38,
            help_text="Lowest plausible label (regression).",
        )
        max_value = serializers.FloatField(
            required=False, allow_null=True, default=None, min_value=-1e38, max_value=1e38,
            help_text="Highest plausible label (regression).",
        )

    OutputSerializer = AssaySerializer

    @extend_schema(tags=["assays"], operation_id="assays_list", responses={200: AssaySerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.assay_list())
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["assays"],
        operation_id="assays_create",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(AssaySerializer, description="Created."),
            200: OpenApiResponse(
                AssaySerializer, description="An assay with this name exists and agrees with the settings given."
            ),
            **error_responses(400, 409),
        },
    )
    def post(self, request: Request) -> Response:
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        assay, created = services.assay_resolve(**s.validated_data)
        return Response(self.OutputSerializer(assay).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- Measurements -----------------------------------------------------------------------


class MeasurementListCreateApi(GenericAPIView):
    """GET lists measurements (viewer; filter by assay/compound); POST records one (scientist)."""

    permission_classes = [ReadViewerWriteScientist]
    parser_classes = JSON

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MeasurementListCreateFilter"

        assay = id_field(required=False)
        compound = id_field(required=False)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MeasurementListCreateInput"

        compound = id_field()
        assay = id_field()
        value = LabelValueField(help_text="A number; for classification a class name (a JSON string) or a class index (a JSON number).")
        source = serializers.ChoiceField(choices=LabelSource.choices, default=LabelSource.EXPERIMENTAL)
        confidence = serializers.ChoiceField(
            choices=[("", "none"), *LabelConfidence.choices], required=False, allow_blank=True, default=""
        )
        notes = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")

    OutputSerializer = MeasurementSerializer

    @extend_schema(
        tags=["measurements"],
        operation_id="measurements_list",
        parameters=[FilterSerializer],
        responses={200: MeasurementSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        f = self.FilterSerializer(data=request.query_params)
        f.is_valid(raise_exception=True)
        qs = selectors.measurement_list(assay_id=f.validated_data.get("assay"), compound_id=f.validated_data.get("compound"))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["measurements"],
        operation_id="measurements_create",
        request=InputSerializer,
        responses={201: MeasurementSerializer, **error_responses(400)},
    )
    def post(self, request: Request) -> Response:
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        compound = Compound.objects.filter(pk=d["compound"]).first()
        if compound is None:
            raise ValidationFailed("No such compound.", extra={"field": "compound"})
        assay = selectors.assay_list().filter(pk=d["assay"]).first()
        if assay is None:
            raise ValidationFailed("No such assay.", extra={"field": "assay"})
        measurement = services.measurement_create(
            compound=compound,
            assay=assay,
            value=d["value"],
            source=d["source"],
            confidence=d["confidence"],
            notes=d["notes"],
            user=request.user,
        )
        return Response(self.OutputSerializer(measurement).data, status=status.HTTP_201_CREATED)
