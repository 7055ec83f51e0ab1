"""The PostgreSQL tables behind the feed (migration 2): followers' positions, events per type,
and the notification that wakes followers.

``consumers`` is the readers' state, not something the log implies: no rebuild or
check touches it, and the append-only triggers do not guard it. A role that
follows with ``--consumer`` needs INSERT and UPDATE on it (SELECT only on the rest).

``event_counts`` tallies the events up to its ``through`` position (the same in
every row; no rows: nothing tallied yet). `metrics` adds the events after it and
moves it on in a short transaction of its own, off the write path; a role that
may not write it still gets exact figures (it counts the tail each time).

``events_notify`` sends one notification per appending statement, delivered at
its COMMIT: the channel is ``inventory_log``, the payload the schema's name (one
database may hold several logs). A statement-level trigger, so the append path
and its single round trip stay as they are.
"""

from __future__ import annotations

CHANNEL = "inventory_log"

FEED_DDL = f"""
CREATE TABLE consumers (
    consumer   text   COLLATE "C" PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at text   NOT NULL
);
CREATE TABLE event_counts (
    type    text   COLLATE "C" PRIMARY KEY,
    events  bigint NOT NULL,
    through bigint NOT NULL
);
CREATE INDEX reservations_open_by_stream ON reservations (stream_id) WHERE status = 'open';
CREATE FUNCTION inventory_notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_notify_append();
"""

# The tally's position: 0 when it holds nothing yet.
THROUGH_SQL = "SELECT coalesce(max(through), 0) FROM event_counts"
# The events after the tally, up to a head, per type: a range of the log's primary key.
TAIL_SQL = (
    "SELECT type, count(*) FROM events WHERE position > %s AND position <= %s GROUP BY type"
)
TALLY_SQL = (
    "INSERT INTO event_counts (type, events, through) VALUES (%s, %s, %s)"
    " ON CONFLICT (type) DO UPDATE SET events = event_counts.events + excluded.events"
)
