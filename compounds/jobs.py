"""RQ jobs of the compounds app: take plain values, call one service."""

from django.db import close_old_connections

from compounds import services


def enrich_range(id_from: int, id_to: int) -> int:
    close_old_connections()
    try:
        return services.compounds_enrich_range(id_from=id_from, id_to=id_to)
    finally:
        close_old_connections()


def patterns_range(id_from: int, id_to: int) -> int:
    close_old_connections()
    try:
        return services.compound_patterns_backfill_range(id_from=id_from, id_to=id_to)
    finally:
        close_old_connections()
