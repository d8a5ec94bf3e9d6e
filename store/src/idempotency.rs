//! `IdempotencyStore` on sea-orm. A claim is one `INSERT … ON CONFLICT DO NOTHING` on the
//! (scope, key) primary key, so exactly one of any number of concurrent requests in any
//! number of processes wins it; every later change names the winner's claim id.

use crate::entities::idempotency_keys;
use crate::{SqlStore, corrupt, db_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use waas_core::idempotency::{
    ClaimId, ClaimOutcome, ClaimState, IdempotencyKey, IdempotencyScope, IdempotencyStore,
    NewClaim, RequestFingerprint, StoredResponse,
};
use waas_core::ports::RepositoryError;

const IN_FLIGHT: &str = "in_flight";
const UNKNOWN: &str = "unknown";
const COMPLETED: &str = "completed";

/// How often `claim` retries when the row it collided with vanished (released or expired)
/// before it could be read. Each retry means another request made progress.
const CLAIM_ATTEMPTS: usize = 8;

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn claim(&self, claim: &NewClaim) -> Result<ClaimOutcome, RepositoryError> {
        let scope = claim.scope.as_stored();
        for _ in 0..CLAIM_ATTEMPTS {
            let inserted = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
                scope: Set(scope.clone()),
                idempotency_key: Set(claim.key.as_str().to_string()),
                claim_id: Set(claim.id.as_uuid().to_string()),
                fingerprint: Set(claim.fingerprint.to_hex()),
                state: Set(IN_FLIGHT.into()),
                lease_until: Set(claim.lease_until),
                expires_at: Set(claim.expires_at),
                created_at: Set(claim.now),
                completed_at: Set(None),
                response_status: Set(None),
                response_headers: Set(None),
                response_body: Set(None),
            })
            .on_conflict(
                OnConflict::columns([
                    idempotency_keys::Column::Scope,
                    idempotency_keys::Column::IdempotencyKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(db_error)?;
            if inserted == 1 {
                return Ok(ClaimOutcome::Claimed);
            }
            let Some(row) = idempotency_keys::Entity::find_by_id((
                scope.clone(),
                claim.key.as_str().to_string(),
            ))
            .one(&self.db)
            .await
            .map_err(db_error)?
            else {
                continue; // released or purged meanwhile: try again
            };
            if row.expires_at <= claim.now {
                // Forgotten: remove exactly that claim (a racing taker may already have).
                idempotency_keys::Entity::delete_many()
                    .filter(idempotency_keys::Column::Scope.eq(scope.as_str()))
                    .filter(idempotency_keys::Column::IdempotencyKey.eq(claim.key.as_str()))
                    .filter(idempotency_keys::Column::ClaimId.eq(row.claim_id.as_str()))
                    .exec(&self.db)
                    .await
                    .map_err(db_error)?;
                continue;
            }
            return existing(row)
                .map(|(fingerprint, state)| ClaimOutcome::Existing { fingerprint, state });
        }
        Err(RepositoryError(
            "idempotency key kept changing hands while being claimed".into(),
        ))
    }

    async fn complete(
        &self,
        scope: &IdempotencyScope,
        key: &IdempotencyKey,
        id: ClaimId,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| RepositoryError(format!("response headers: {e}")))?;
        let result = idempotency_keys::Entity::update_many()
            .col_expr(idempotency_keys::Column::State, Expr::value(COMPLETED))
            .col_expr(
                idempotency_keys::Column::CompletedAt,
                Expr::value(Some(now)),
            )
            .col_expr(
                idempotency_keys::Column::ResponseStatus,
                Expr::value(Some(i32::from(response.status))),
            )
            .col_expr(
                idempotency_keys::Column::ResponseHeaders,
                Expr::value(Some(headers)),
            )
            .col_expr(
                idempotency_keys::Column::ResponseBody,
                Expr::value(Some(response.body.clone())),
            )
            .filter(idempotency_keys::Column::Scope.eq(scope.as_stored()))
            .filter(idempotency_keys::Column::IdempotencyKey.eq(key.as_str()))
            .filter(idempotency_keys::Column::ClaimId.eq(id.as_uuid().to_string()))
            .filter(idempotency_keys::Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn release(
        &self,
        scope: &IdempotencyScope,
        key: &IdempotencyKey,
        id: ClaimId,
    ) -> Result<bool, RepositoryError> {
        let result = idempotency_keys::Entity::delete_many()
            .filter(idempotency_keys::Column::Scope.eq(scope.as_stored()))
            .filter(idempotency_keys::Column::IdempotencyKey.eq(key.as_str()))
            .filter(idempotency_keys::Column::ClaimId.eq(id.as_uuid().to_string()))
            .filter(idempotency_keys::Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn abandon(
        &self,
        scope: &IdempotencyScope,
        key: &IdempotencyKey,
        id: ClaimId,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let result = idempotency_keys::Entity::update_many()
            .col_expr(idempotency_keys::Column::State, Expr::value(UNKNOWN))
            .col_expr(
                idempotency_keys::Column::CompletedAt,
                Expr::value(Some(now)),
            )
            .filter(idempotency_keys::Column::Scope.eq(scope.as_stored()))
            .filter(idempotency_keys::Column::IdempotencyKey.eq(key.as_str()))
            .filter(idempotency_keys::Column::ClaimId.eq(id.as_uuid().to_string()))
            .filter(idempotency_keys::Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let result = idempotency_keys::Entity::delete_many()
            .filter(idempotency_keys::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected)
    }
}

fn existing(
    row: idempotency_keys::Model,
) -> Result<(RequestFingerprint, ClaimState), RepositoryError> {
    let fingerprint = RequestFingerprint::from_hex(&row.fingerprint)
        .ok_or_else(|| corrupt("idempotency fingerprint"))?;
    let state = match row.state.as_str() {
        IN_FLIGHT => ClaimState::InFlight {
            lease_until: row.lease_until,
        },
        UNKNOWN => ClaimState::Unknown,
        COMPLETED => {
            let status = row
                .response_status
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| corrupt("idempotency response status"))?;
            let headers: Vec<(String, String)> = row
                .response_headers
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|_| corrupt("idempotency response headers"))?
                .unwrap_or_default();
            ClaimState::Completed(StoredResponse {
                status,
                headers,
                body: row.response_body.unwrap_or_default(),
            })
        }
        _ => return Err(corrupt("idempotency state")),
    };
    Ok((fingerprint, state))
}
