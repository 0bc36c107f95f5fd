"""Page-number pagination for every API list: 50 rows by default, `?page_size=` up to 500."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from config.paginator import DeferredJoinPaginator


class Pagination(PageNumberPagination):
    # Integrators that sync a whole queue want fewer round trips than 50 rows a page;
    # 500 keeps one page's query and JSON well under the web worker's timeout.
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        # DRF silently falls back to 50 on a typo; every other list parameter here is a
        # 400 naming itself, so this one is too. Above the maximum it is capped (DRF's rule).
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return min(int(raw), self.max_page_size)


class CompoundPagination(Pagination):
    """The registry's list: deep pages of 1M compounds read by primary key (config.paginator)."""

    django_paginator_class = DeferredJoinPaginator
