-- The canonical bytes of one audit event: what row_hash = sha256(prev_hash || canonical)
-- covers. Used by both signoff.audit_append and signoff.audit_verify so they cannot drift.
--
-- Fields, in order, joined by the unit separator U+001F:
--   tenant_id::text            lower-case hyphenated uuid
--   seq::text                  decimal
--   occurred_at                microseconds since 1970-01-01 00:00:00 UTC, decimal
--   actor_id, on_behalf_of_id  decimal, or the marker ~ for NULL
--   action, object_type,       quote_nullable(): 'text' with quotes doubled (E'...'
--   object_id                  when it has a backslash), or bare NULL
--   payload::text              jsonb text: keys sorted, whitespace normalized
-- then taken as the database's bytes (Signoff databases are UTF8).
--
-- Nothing here reads a session setting: the time stamp goes through AT TIME ZONE
-- 'UTC' and extract(epoch) on a plain timestamp, never to_char or the DateStyle
-- output; numbers are integers; no float is involved, so extra_float_digits cannot
-- matter; quoting makes NULL, '' and a separator inside a text field unambiguous.
-- Every call is IMMUTABLE, so the planner inlines this function into
-- audit_verify's scan (convert_to() and to_char() are only STABLE and would keep
-- it a per-row function call, twice as slow). decode(replace(s, '\', '\\'),
-- 'escape') is the IMMUTABLE spelling of "the bytes of s".
CREATE OR REPLACE FUNCTION signoff.audit_canonical(
    p_tenant_id uuid,
    p_seq bigint,
    p_occurred_at timestamp with time zone,
    p_actor_id integer,
    p_on_behalf_of_id integer,
    p_action text,
    p_object_type text,
    p_object_id text,
    p_payload jsonb
)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN pg_catalog.decode(
    pg_catalog.replace(
        p_tenant_id::text
        || E'\x1f' || p_seq::text
        || E'\x1f' || pg_catalog.trunc(
            EXTRACT(epoch FROM (p_occurred_at AT TIME ZONE 'UTC')) * 1000000
        )::text
        || E'\x1f' || coalesce(p_actor_id::text, '~')
        || E'\x1f' || coalesce(p_on_behalf_of_id::text, '~')
        || E'\x1f' || pg_catalog.quote_nullable(p_action)
        || E'\x1f' || pg_catalog.quote_nullable(p_object_type)
        || E'\x1f' || pg_catalog.quote_nullable(p_object_id)
        || E'\x1f' || p_payload::text,
        '\',
        '\\'
    ),
    'escape'
);
