"""Attachments of requests and comments (receipts, quotes): the table (``models``), the
checks an upload passes (``content``: size and count limits, the type sniffed from the
bytes, the virus-scanner hook) and where the bytes live (``content.store``: PostgreSQL
by default), and reads that go through the request's visibility (``queries``).

Writing one is the action ``signoff.workflow.actions.do_attach`` (audited, under the
request's lock)."""
