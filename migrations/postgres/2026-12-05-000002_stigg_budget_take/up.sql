-- One take of Stigg's shared budget, as one statement: `SELECT * FROM stigg_take_slot(...)`.
--
-- A call can be paid in several ways (choices): an API request from its operation's reserved
-- share or from the rest, a batch call from the rest or, when the reserve has calls to spare,
-- from the reserve. Each choice draws from one or more buckets (the operation's, the
-- customer's or subscription's). Draw i belongs to choice draw_choice[i] (1-based) and reads
-- bucket draw_key[i] with its period and tolerance (GCRA; a bucket's row holds its theoretical
-- arrival time). A choice's slot is the first moment all its buckets allow; the earliest slot
-- within its choice's max_wait is booked (the first choice on a tie) and nothing else is.
-- A key appears at most once per choice.
--
-- Timed by the database's clock, read once the rows are locked; `at_time` replaces it in
-- tests only. Returns the choice booked (NULL when none fits: nothing is booked), the wait
-- for its slot (when refused, for the earliest slot of a choice that may wait), and how far
-- each bucket is booked ahead of now, in key order.
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
    keys  TEXT[];
    tats  TIMESTAMP[];
    t     TIMESTAMP;
    slots TIMESTAMP[];
    best  INT;
    i     INT;
BEGIN
    -- Creates the missing rows and locks them all, in key order: two takers never wait on
    -- each other in a cycle, and a row cannot vanish (the idle sweep skips locked rows).
    INSERT INTO stigg_rate_buckets AS b (bucket_key, tat)
    SELECT DISTINCT k, '-infinity'::TIMESTAMP FROM unnest(draw_key) AS k ORDER BY 1
    ON CONFLICT (bucket_key) DO UPDATE SET tat = b.tat;
    SELECT array_agg(b.bucket_key ORDER BY b.bucket_key), array_agg(b.tat ORDER BY b.bucket_key)
    INTO keys, tats
    FROM stigg_rate_buckets b WHERE b.bucket_key = ANY (draw_key);

    -- The clock is read once the rows are held: time spent queueing for them is not lateness.
    t := COALESCE(at_time, clock_timestamp() AT TIME ZONE 'UTC');
    slots := array_fill(t, ARRAY[cardinality(max_wait)]);
    FOR i IN 1 .. cardinality(draw_key) LOOP
        slots[draw_choice[i]] := GREATEST(
            slots[draw_choice[i]],
            tats[array_position(keys, draw_key[i])] - make_interval(secs => draw_tolerance[i]));
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

    -- Refused: the wait of the earliest choice that may wait at all (a choice that must go at
    -- once says nothing about when the call could go).
    RETURN QUERY
    SELECT best,
           EXTRACT(EPOCH FROM COALESCE(
               slots[best],
               (SELECT min(slots[c]) FROM generate_series(1, cardinality(max_wait)) AS c
                WHERE max_wait[c] > 0),
               (SELECT min(s) FROM unnest(slots) AS s),
               t) - t)::FLOAT8,
           COALESCE(array_agg(b.bucket_key ORDER BY b.bucket_key), '{}'),
           COALESCE(array_agg(EXTRACT(EPOCH FROM GREATEST(b.tat, t) - t)::FLOAT8
                              ORDER BY b.bucket_key), '{}')
    FROM stigg_rate_buckets b
    WHERE b.bucket_key = ANY (draw_key);
END
$$;
