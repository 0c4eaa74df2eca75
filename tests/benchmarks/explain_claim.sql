-- The judge's claim statements on a backlog of 1,000,000 waiting events (docs/benchmarks.md,
-- "Judges that claim by plate shard"). On a bench database only: it inserts the backlog.
--   psql -h 127.0.0.1 -U postgres -d <bench db> -f tests/benchmarks/explain_claim.sql
\timing off
-- a backlog of 1,000,000 waiting events, copied from one stored event with new keys and shards
INSERT INTO rs_events (station_id, event_id, body_hash, payload, measured_at, received_at, status, claim_shard)
SELECT e.station_id, 'backlog-' || g, e.body_hash, e.payload, e.measured_at, now(), 'received', (g % 16)
FROM (SELECT * FROM rs_events ORDER BY id LIMIT 1) e, generate_series(1, 1000000) g;
ANALYZE rs_events;
SELECT count(*) AS waiting FROM rs_events WHERE status = 'received';
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM (SELECT 1 FROM rs_events WHERE status = 'received' ORDER BY id LIMIT 500) w;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, station_id, measured_at, payload FROM rs_events WHERE status = 'received' AND claim_shard = 7 AND (SELECT pg_try_advisory_xact_lock(CAST(19530 AS integer), CAST(7 AS integer))) ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, station_id, measured_at, payload FROM rs_events WHERE status = 'received' AND pg_try_advisory_xact_lock(CAST(19530 AS integer), CAST(claim_shard AS integer)) ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED;
ROLLBACK;
