"""Paged lists: the ``page``/``page_size`` query and the shape of a page of results."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

PAGE_SIZE_MAX = 100


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100_000))
    page_size = fields.Integer(load_default=25, validate=validate.Range(min=1, max=PAGE_SIZE_MAX))


class PageSchema(Schema):
    """One page of a list: ``count``, ``page``, ``page_size`` and the items in ``result``.

    A resource's list schema subclasses it and adds ``result = result_list(ItemSchema)``
    (and may redeclare ``count`` to describe it); fields keep this order in the spec.
    """

    count = fields.Integer(required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)


def result_list(item: type[Schema]) -> fields.List[Any]:
    """The ``result`` field of a list response: every item dumped by ``item``."""
    return fields.List(fields.Nested(item), required=True)
