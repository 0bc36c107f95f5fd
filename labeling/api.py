"""REST API of the label queue: list, detail, claim-next, label, skip, assign."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compounds.api import (
    CompoundPropertiesSerializer,
    CompoundSummarySerializer,
    LabelValueField,
    enum_field,
    id_field,
    structure_url,
)
from compounds.models import LabelConfidence
from config.api_errors import MAX_ID, error_responses, parse_uuid
from config.api_json import JSONParser
from config.api_permissions import IsLead, IsScientist, IsViewer
from labeling import selectors, services
from labeling.models import LabelQueueItem, QueueStatus
from mlmodels.selectors import model_get
from mlmodels.services import model_require_active

TAGS = ["active-learning"]
JSON = [JSONParser]
ITEM_ID = OpenApiParameter("item_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Queue item id")


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ModelRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()


class QueueItemSerializer(serializers.Serializer):
    """A queue item as listed; every relation used here is joined by the selector."""

    id = serializers.UUIDField()
    compound = CompoundSummarySerializer()
    structure_svg_url = serializers.SerializerMethodField()
    model = ModelRefSerializer()
    cycle = serializers.UUIDField(source="cycle_id", allow_null=True)
    status = enum_field(QueueStatus.values)
    prediction = serializers.FloatField(allow_null=True)
    uncertainty = serializers.FloatField(allow_null=True)
    applicability_distance = serializers.FloatField(allow_null=True)
    probabilities = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    priority_score = serializers.FloatField()
    selection_strategy = serializers.CharField()
    selection_batch = serializers.IntegerField()
    assigned_to = UserRefSerializer(allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)
    label = serializers.FloatField(allow_null=True)
    label_display = serializers.SerializerMethodField()
    label_source = serializers.CharField()
    label_confidence = serializers.CharField()
    labeled_by = UserRefSerializer(allow_null=True)
    labeled_at = serializers.DateTimeField(allow_null=True)
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_structure_svg_url(self, obj: LabelQueueItem) -> str:
        return structure_url(obj.compound_id)

    def get_label_display(self, obj: LabelQueueItem) -> str | None:
        return None if obj.label is None else obj.model.assay.format_value(obj.label)


class QueueItemDetailSerializer(QueueItemSerializer):
    class CompoundDetailSerializer(CompoundSummarySerializer):
        properties = CompoundPropertiesSerializer(source="*")

    class SimilarSerializer(serializers.Serializer):
        class LabelSerializer(serializers.Serializer):
            value = serializers.FloatField()
            display_value = serializers.CharField()
            source = serializers.CharField()
            confidence = serializers.CharField()

        compound = CompoundSummarySerializer()
        similarity = serializers.FloatField()
        labels = LabelSerializer(many=True)

    class EventSerializer(serializers.Serializer):
        action = serializers.CharField()
        actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
        data = serializers.DictField()
        created_at = serializers.DateTimeField()

    compound = CompoundDetailSerializer()
    score_components = serializers.DictField(help_text="Why the item was picked.")
    assay_units = serializers.CharField(source="model.assay.units")
    assay_classes = serializers.ListField(child=serializers.CharField(), source="model.assay.classes")
    similar = SimilarSerializer(many=True, help_text="Most similar compounds measured in the assay.")
    history = EventSerializer(many=True)


def _detail(item_id: Any) -> dict[str, Any]:
    bundle = selectors.queue_item_detail(item_id=item_id)
    item = bundle["item"]
    item.similar = bundle["similar"]
    item.history = bundle["events"]
    return QueueItemDetailSerializer(item).data


# The API sorts as Django and DRF do ("-uncertainty": most uncertain first). The queue
# page's sort keys are its column toggles (first click: best first), hence the mapping.
# "-priority" (the default) is the serving order of claim-next: earlier selection
# batches first, each by descending priority score; "priority" is its reverse.
API_ORDERINGS = {
    "-priority": "priority",
    "priority": "-priority",
    "-uncertainty": "uncertainty",
    "uncertainty": "-uncertainty",
    "-prediction": "prediction",
    "prediction": "-prediction",
    "created": "created",
    "-created": "-created",
}


class QueueItemListApi(GenericAPIView):
    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemListFilter"

        status = serializers.ChoiceField(
            choices=[*QueueStatus.values, "open"], required=False, help_text='A status, or "open" (pending or in progress).'
        )
        assigned_to = serializers.RegexField(
            r"^(me|none|[1-9][0-9]{0,17})$",
            required=False,
            help_text='A user id, "me" for the caller\'s items, or "none" for unassigned items.',
        )
        model = id_field(required=False)
        cycle = serializers.UUIDField(required=False)
        ordering = serializers.ChoiceField(
            choices=list(API_ORDERINGS),
            required=False,
            default="-priority",
            help_text='A field, ascending, or "-field", descending (Django/DRF convention); default "-priority", '
            "the order claim-next serves: earlier selection batches first, each by descending priority score.",
        )

    OutputSerializer = QueueItemSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="queue_list",
        parameters=[FilterSerializer],
        responses={200: QueueItemSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        f = self.FilterSerializer(data=request.query_params)
        f.is_valid(raise_exception=True)
        d = f.validated_data
        assigned = d.get("assigned_to")
        qs = selectors.queue_items_list(
            status=d.get("status"),
            assigned_to=request.user.pk if assigned == "me" else assigned,
            model_id=d.get("model"),
            cycle_id=d.get("cycle"),
            ordering=API_ORDERINGS[d["ordering"]],
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)


class QueueItemDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        tags=TAGS,
        operation_id="queue_retrieve",
        parameters=[ITEM_ID],
        responses={200: QueueItemDetailSerializer, **error_responses(404)},
    )
    def get(self, request: Request, item_id: str) -> Response:
        return Response(_detail(parse_uuid(item_id, what="queue item")))


class QueueItemClaimNextApi(APIView):
    """The caller's next item (their own open work first, then the best unassigned one).

    Always 200: `{"item": {...}, "detail": "claimed"}`, or `{"item": null,
    "detail": "queue empty"}` when nothing is left for the caller.
    """

    permission_classes = [IsScientist]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemClaimNextInput"

        model = id_field(required=False, allow_null=True, help_text="Only items of this model version.")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemClaimNextOutput"

        item = QueueItemDetailSerializer(allow_null=True)
        detail = serializers.CharField()

    @extend_schema(
        tags=TAGS,
        operation_id="queue_claim_next",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        model_id = s.validated_data.get("model")
        if model_id is not None:
            model = model_get(model_id=model_id)  # an unknown model is a 404, not an empty queue
            # Its open items moved to the active version at the retrain.
            model_require_active(model, hint="its open items are on the active version")
        item = services.queue_item_claim_next(user=request.user, model_id=model_id)
        if item is None:
            return Response({"item": None, "detail": "queue empty"})
        return Response({"item": _detail(item.pk), "detail": "claimed"})


class QueueItemLabelApi(APIView):
    permission_classes = [IsScientist]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemLabelInput"

        value = LabelValueField(help_text="A number; for classification a class name (a JSON string) or a class index (a JSON number).")
        source = serializers.ChoiceField(
            choices=[s.value for s in services.HUMAN_SOURCES], default="experimental",
            help_text='Where the value comes from; "experimental" when left out (the web form\'s default too).',
        )
        confidence = serializers.ChoiceField(
            choices=["", *LabelConfidence.values], required=False, allow_blank=True, default=""
        )
        notes = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")

    OutputSerializer = QueueItemSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="queue_label",
        parameters=[ITEM_ID],
        request=InputSerializer,
        responses={200: QueueItemSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, item_id: str) -> Response:
        pk = parse_uuid(item_id, what="queue item")
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        # The service's item has every relation the serializer reads joined: no second read.
        item = services.label_submit(item_id=pk, user=request.user, **s.validated_data)
        return Response(self.OutputSerializer(item).data)


class QueueItemCorrectApi(APIView):
    """Correct a stored label; the stored measurement changes with it and the old value
    and the reason stay in the item's history. A lead corrects any labeled or archived
    item; the scientist who labeled an item corrects it while it is `labeled` on the
    active version (before a retrain learned it); anyone else gets a 403."""

    permission_classes = [IsScientist]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemCorrectInput"

        value = LabelValueField(help_text="The corrected value; for classification a class name (a JSON string) or a class index (a JSON number).")
        notes = serializers.CharField(
            max_length=5000, help_text="Why the label changed (required: it is kept in the item's history)."
        )

    OutputSerializer = QueueItemSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="queue_correct",
        parameters=[ITEM_ID],
        request=InputSerializer,
        responses={200: QueueItemSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request: Request, item_id: str) -> Response:
        pk = parse_uuid(item_id, what="queue item")
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.label_correct(item_id=pk, user=request.user, **s.validated_data)
        return Response(self.OutputSerializer(selectors.queue_item_get(item_id=pk)).data)


class QueueItemSkipApi(APIView):
    permission_classes = [IsScientist]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemSkipInput"

        reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")

    OutputSerializer = QueueItemSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="queue_skip",
        parameters=[ITEM_ID],
        request=InputSerializer,
        responses={200: QueueItemSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, item_id: str) -> Response:
        pk = parse_uuid(item_id, what="queue item")
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.queue_item_skip(item_id=pk, user=request.user, reason=s.validated_data["reason"])
        return Response(self.OutputSerializer(selectors.queue_item_get(item_id=pk)).data)


class QueueItemAssignApi(APIView):
    permission_classes = [IsLead]
    parser_classes = JSON

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "QueueItemAssignInput"

        user_id = serializers.IntegerField(
            min_value=1, max_value=MAX_ID, allow_null=True, help_text="A scientist's user id, or null to unassign."
        )

    OutputSerializer = QueueItemSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="queue_assign",
        parameters=[ITEM_ID],
        request=InputSerializer,
        responses={200: QueueItemSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, item_id: str) -> Response:
        pk = parse_uuid(item_id, what="queue item")
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.queue_item_assign(item_id=pk, assignee_id=s.validated_data["user_id"], user=request.user)
        return Response(self.OutputSerializer(selectors.queue_item_get(item_id=pk)).data)
