DROP TABLE stigg_rate_buckets;
