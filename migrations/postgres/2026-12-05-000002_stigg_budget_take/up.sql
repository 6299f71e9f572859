-- One take of Stigg's shared budget, as one statement: `SELECT * FROM stigg_take_slot(...)`.
--
-- A call can be paid in several ways (choices): an API request from its operation's reserved
-- share or from the rest, a batch call from the rest or, when the reserve has calls to spare,
-- from the reserve. Each choice draws from one or more buckets (the operation's, the
-- customer's or subscription's). Draw i belongs to choice draw_choice[i] (1-based) and reads
-- bucket draw_key[i] with its period and tolerance (GCRA; a bucket's row holds its theoretical
-- arrival time). A choice's slot is the first moment all its buckets allow; the earliest slot
-- within its choice's max_wait is booked (the first choice on a tie) and nothing else is.
-- The rows are locked in key order, so two takers never wait on each other in a cycle.
--
-- Timed by the database's clock; `at_time` replaces it in tests only. Returns the choice booked
-- (NULL when none fits: nothing is booked), the wait for its slot (or for the earliest slot,
-- when refused), and how far each bucket is booked ahead of now, in key order.
CREATE FUNCTION stigg_take_slot(
    draw_choice    INT[],
    draw_key       TEXT[],
    draw_period    FLOAT8[],
    draw_tolerance FLOAT8[],
    max_wait       FLOAT8[],
    at_time        TIMESTAMP DEFAULT NULL
) RETURNS TABLE (chosen INT, wait_secs FLOAT8, bucket_keys TEXT[], ahead_secs FLOAT8[])
LANGUAGE plpgsql AS $$
DECLARE
    t     TIMESTAMP := COALESCE(at_time, now() AT TIME ZONE 'UTC');
    slots TIMESTAMP[] := array_fill(t, ARRAY[cardinality(max_wait)]);
    best  INT;
    held  TIMESTAMP;
    i     INT;
BEGIN
    INSERT INTO stigg_rate_buckets (bucket_key, tat)
    SELECT DISTINCT k, '-infinity'::TIMESTAMP FROM unnest(draw_key) AS k ORDER BY 1
    ON CONFLICT (bucket_key) DO NOTHING;
    PERFORM 1 FROM stigg_rate_buckets
    WHERE bucket_key = ANY (draw_key) ORDER BY bucket_key FOR UPDATE;

    FOR i IN 1 .. cardinality(draw_key) LOOP
        SELECT b.tat INTO held FROM stigg_rate_buckets b WHERE b.bucket_key = draw_key[i];
        slots[draw_choice[i]] := GREATEST(
            slots[draw_choice[i]], held - make_interval(secs => draw_tolerance[i]));
    END LOOP;
    FOR i IN 1 .. cardinality(max_wait) LOOP
        IF slots[i] <= t + make_interval(secs => max_wait[i])
           AND (best IS NULL OR slots[i] < slots[best]) THEN
            best := i;
        END IF;
    END LOOP;

    IF best IS NOT NULL THEN
        UPDATE stigg_rate_buckets b
        SET tat = GREATEST(b.tat, slots[best]) + make_interval(secs => d.period)
        FROM unnest(draw_choice, draw_key, draw_period) AS d(choice, k, period)
        WHERE d.choice = best AND b.bucket_key = d.k;
    END IF;

    RETURN QUERY
    SELECT best,
           EXTRACT(EPOCH FROM COALESCE(slots[best], (SELECT min(s) FROM unnest(slots) AS s)) - t)::FLOAT8,
           array_agg(b.bucket_key ORDER BY b.bucket_key),
           array_agg(EXTRACT(EPOCH FROM GREATEST(b.tat, t) - t)::FLOAT8 ORDER BY b.bucket_key)
    FROM stigg_rate_buckets b
    WHERE b.bucket_key = ANY (draw_key);
END
$$;
