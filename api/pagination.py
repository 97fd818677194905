"""Page-number pagination for small lists, cursor pagination for the big tables."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class PagePagination(PageNumberPagination):
    """``?page=2&page_size=50``; the page size is capped at 200."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class IdCursorPagination(CursorPagination):
    """For large tables (customers, timelines): no COUNT over a million rows; ``?cursor=``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"
