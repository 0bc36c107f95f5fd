"""Every API route in one place.

Path ids are captured as `str` and parsed by the views, so a malformed id gets the
API's JSON 404 rather than Django's HTML one. More specific routes come first
(`queue/claim-next/` before `queue/<item_id>/`).
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from compounds.api import (
    AssayListCreateApi,
    CompoundDetailApi,
    CompoundImportApi,
    CompoundListCreateApi,
    MeasurementListCreateApi,
)
from cycles.api import (
    CycleListApi,
    CycleRetrainApi,
    CycleRetryApi,
    CycleSelectApi,
    CycleStatsApi,
    JobDetailApi,
)
from labeling.api import (
    QueueItemAssignApi,
    QueueItemClaimNextApi,
    QueueItemCorrectApi,
    QueueItemDetailApi,
    QueueItemLabelApi,
    QueueItemListApi,
    QueueItemSkipApi,
)
from mlmodels.api import ModelDetailApi, ModelListApi, ModelPredictApi, ModelVersionListApi

active_learning = [
    path("select/", CycleSelectApi.as_view(), name="al-select"),
    path("queue/", QueueItemListApi.as_view(), name="al-queue"),
    path("queue/claim-next/", QueueItemClaimNextApi.as_view(), name="al-queue-claim-next"),
    path("queue/<str:item_id>/", QueueItemDetailApi.as_view(), name="al-queue-item"),
    path("queue/<str:item_id>/label/", QueueItemLabelApi.as_view(), name="al-queue-label"),
    path("queue/<str:item_id>/skip/", QueueItemSkipApi.as_view(), name="al-queue-skip"),
    path("queue/<str:item_id>/correct/", QueueItemCorrectApi.as_view(), name="al-queue-correct"),
    path("queue/<str:item_id>/assign/", QueueItemAssignApi.as_view(), name="al-queue-assign"),
    path("cycles/", CycleListApi.as_view(), name="al-cycles"),
    path("cycles/<str:cycle_id>/retrain/", CycleRetrainApi.as_view(), name="al-cycle-retrain"),
    path("cycles/<str:cycle_id>/retry/", CycleRetryApi.as_view(), name="al-cycle-retry"),
    path("stats/<str:model_id>/", CycleStatsApi.as_view(), name="al-stats"),
]

urlpatterns = [
    path("active-learning/", include(active_learning)),
    path("compounds/", CompoundListCreateApi.as_view(), name="api-compounds"),
    path("compounds/import/", CompoundImportApi.as_view(), name="api-compounds-import"),
    path("compounds/<str:compound_id>/", CompoundDetailApi.as_view(), name="api-compound"),
    path("assays/", AssayListCreateApi.as_view(), name="api-assays"),
    path("measurements/", MeasurementListCreateApi.as_view(), name="api-measurements"),
    path("models/", ModelListApi.as_view(), name="api-models"),
    path("models/<str:model_id>/", ModelDetailApi.as_view(), name="api-model"),
    path("models/<str:model_id>/versions/", ModelVersionListApi.as_view(), name="api-model-versions"),
    path("models/<str:model_id>/predict/", ModelPredictApi.as_view(), name="api-model-predict"),
    path("jobs/<str:job_id>/", JobDetailApi.as_view(), name="api-job"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
