//! Leases, one row per held key, each operation one portable statement. Taking is an upsert
//! whose `DO UPDATE … WHERE` only replaces an expired lease: both backends apply it atomically
//! (PostgreSQL locks the conflicting row and re-checks the condition; SQLite has one writer at
//! a time), so two callers can never both see "taken".

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
// `filter` on an upsert: the `WHERE` of `ON CONFLICT … DO UPDATE`.
use diesel::query_dsl::methods::FilterDsl;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{Lease, LeaseKey};
use onboarding_domain::ports::{LeaseStore, RepoError};
use uuid::Uuid;

use crate::dispatch::with_conn;
use crate::pool::Database;
use crate::rows::{LeaseRow, utc};
use crate::schema::leases;

fn expiry(now: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>, RepoError> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .ok_or_else(|| RepoError::Unexpected(format!("lease duration {ttl:?} is too long")))
}

#[async_trait]
impl LeaseStore for Database {
    async fn try_take(
        &self,
        key: &LeaseKey,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, RepoError> {
        let expires_at = expiry(now, ttl)?;
        let holder = Uuid::now_v7().to_string();
        let row = LeaseRow {
            lease_key: key.as_str(),
            holder: &holder,
            expires_at: expires_at.naive_utc(),
            taken_at: now.naive_utc(),
        };
        let taken = with_conn!(self.pool, |conn| {
            diesel::insert_into(leases::table)
                .values(&row)
                .on_conflict(leases::lease_key)
                .do_update()
                .set((
                    leases::holder.eq(excluded(leases::holder)),
                    leases::expires_at.eq(excluded(leases::expires_at)),
                    leases::taken_at.eq(excluded(leases::taken_at)),
                ))
                .filter(leases::expires_at.lt(row.taken_at))
                .execute(conn)
                .await
        })?;
        Ok((taken == 1).then(|| Lease {
            key: key.clone(),
            holder,
            expires_at,
        }))
    }

    async fn renew(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, RepoError> {
        let expires_at = expiry(now, ttl)?;
        // Still ours if the holder matches: an expired lease nobody took since is renewed.
        let renewed = with_conn!(self.pool, |conn| {
            diesel::update(leases::table)
                .filter(leases::lease_key.eq(lease.key.as_str()))
                .filter(leases::holder.eq(&lease.holder))
                .set(leases::expires_at.eq(expires_at.naive_utc()))
                .execute(conn)
                .await
        })?;
        Ok((renewed == 1).then(|| Lease {
            expires_at,
            ..lease.clone()
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<(), RepoError> {
        with_conn!(self.pool, |conn| {
            diesel::delete(leases::table)
                .filter(leases::lease_key.eq(lease.key.as_str()))
                .filter(leases::holder.eq(&lease.holder))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn expiry(&self, key: &LeaseKey) -> Result<Option<DateTime<Utc>>, RepoError> {
        let expires: Option<NaiveDateTime> = with_conn!(self.pool, |conn| {
            leases::table
                .find(key.as_str())
                .select(leases::expires_at)
                .first(conn)
                .await
                .optional()
        })?;
        Ok(expires.map(utc))
    }
}
