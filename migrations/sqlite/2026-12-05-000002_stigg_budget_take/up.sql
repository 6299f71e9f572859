-- PostgreSQL only: SQLite serves one process, whose Stigg budget lives in memory.
SELECT 1;
