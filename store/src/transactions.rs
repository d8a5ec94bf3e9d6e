//! `TransactionRepository` on sea-orm.

use crate::entities::{account_nonces, transaction_approvals, transactions};
use crate::{SqlStore, corrupt, db_error, events, paginate};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use waas_core::chain::Chain;
use waas_core::ports::{AccountNonces, Page, PageRequest, RepositoryError};
use waas_core::{TenantId, TransactionId, WalletId};
use waas_policy::Decimal;
use waas_wallets::{
    Approval, Change, Decide, Execution, MovingRequest, NonceBook, NonceTransition, RecentSpend,
    Refusal, RequestKind, StateOf, TransactionRepository, TransactionRequest, TransactionState,
    Transition, decision_events,
};

fn to_domain(row: transactions::Model) -> Result<TransactionRequest, RepositoryError> {
    Ok(TransactionRequest {
        id: TransactionId::parse(&row.id).ok_or_else(|| corrupt("transaction id"))?,
        tenant_id: TenantId::parse(&row.tenant_id).ok_or_else(|| corrupt("transaction tenant"))?,
        wallet_id: WalletId::parse(&row.wallet_id).ok_or_else(|| corrupt("transaction wallet"))?,
        chain: Chain::parse(&row.chain).ok_or_else(|| corrupt("transaction chain"))?,
        network: row.network,
        to: row.to_address,
        asset: row.asset,
        amount: Decimal::from_str_exact(&row.amount).map_err(|_| corrupt("amount"))?,
        data: row
            .data
            .map(|d| hex::decode(d).map_err(|_| corrupt("call data")))
            .transpose()?,
        state: TransactionState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
        policy_version: u32::try_from(row.policy_version).map_err(|_| corrupt("version"))?,
        decision: serde_json::from_str(&row.decision).map_err(|_| corrupt("decision"))?,
        requested_by: row.requested_by,
        approvals: Vec::new(),
        execution: serde_json::from_str(&row.execution).map_err(|_| corrupt("execution"))?,
        signature: row
            .signature
            .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("signature request")))
            .transpose()?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn to_row(request: &TransactionRequest) -> Result<transactions::ActiveModel, RepositoryError> {
    let (signing_quorum, approval_quorum, approver_group) = match &request.decision.outcome {
        waas_policy::Outcome::Allow {
            signing_quorum,
            approval_quorum,
            approver_group,
        } => (
            Some(i16::try_from(*signing_quorum).map_err(|_| corrupt("quorum"))?),
            i16::try_from(*approval_quorum).map_err(|_| corrupt("quorum"))?,
            approver_group.clone(),
        ),
        waas_policy::Outcome::Deny { .. } => (None, 0, None),
    };
    Ok(transactions::ActiveModel {
        id: Set(request.id.to_string()),
        tenant_id: Set(request.tenant_id.to_string()),
        wallet_id: Set(request.wallet_id.to_string()),
        chain: Set(request.chain.as_str().to_string()),
        network: Set(request.network.clone()),
        to_address: Set(request.to.clone()),
        asset: Set(request.asset.clone()),
        amount: Set(request.amount.normalize().to_string()),
        data: Set(request.data.as_ref().map(hex::encode)),
        state: Set(request.state.as_str().to_string()),
        policy_version: Set(i32::try_from(request.policy_version).map_err(|_| corrupt("version"))?),
        decision: Set(serde_json::to_string(&request.decision).map_err(|_| corrupt("decision"))?),
        value_usd: Set(request
            .decision
            .value_usd
            .map(|v| v.normalize().to_string())),
        signing_quorum: Set(signing_quorum),
        approval_quorum: Set(approval_quorum),
        approver_group: Set(approver_group),
        requested_by: Set(request.requested_by.clone()),
        created_at: Set(request.created_at),
        updated_at: Set(request.updated_at),
        execution: Set(serde_json::to_string(&request.execution).map_err(|_| corrupt("execution"))?),
        nonce: Set(nonce_column(&request.execution)?),
        tx_hash: Set(request.execution.attempts.last().map(|a| a.hash.clone())),
        claimed_until: Set(None),
        signature: Set(request
            .signature
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| corrupt("signature request"))?),
    })
}

fn nonce_column(execution: &Execution) -> Result<Option<i64>, RepositoryError> {
    execution
        .nonce
        .map(|n| i64::try_from(n).map_err(|_| corrupt("nonce")))
        .transpose()
}

/// Writes a change decided under the tenant lock: state, execution record (and the nonce
/// and hash columns it implies), a released nonce, an approval, the events.
async fn write_change(
    txn: &DatabaseTransaction,
    request: &TransactionRequest,
    change: Change,
    at: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let id = request.id;
    let mut update = transactions::Entity::update_many()
        .col_expr(
            transactions::Column::State,
            Expr::value(change.state.as_str()),
        )
        .col_expr(transactions::Column::UpdatedAt, Expr::value(at));
    let mut execution = change.execution.clone();
    if change.release_nonce
        && let (Some(from), Some(nonce)) = (&request.execution.from, request.execution.nonce)
    {
        let mut book = load_book(txn, &request.network, from).await?;
        book.release(nonce);
        store_book(txn, &request.network, from, &book, at).await?;
        execution
            .get_or_insert_with(|| request.execution.clone())
            .nonce = None;
    }
    if let Some(execution) = &execution {
        update = update
            .col_expr(
                transactions::Column::Execution,
                Expr::value(serde_json::to_string(execution).map_err(|_| corrupt("execution"))?),
            )
            .col_expr(
                transactions::Column::Nonce,
                Expr::value(nonce_column(execution)?),
            )
            .col_expr(
                transactions::Column::TxHash,
                Expr::value(execution.attempts.last().map(|a| a.hash.clone())),
            );
    }
    update
        .filter(transactions::Column::Id.eq(id.to_string()))
        .exec(txn)
        .await
        .map_err(db_error)?;
    if let Some(approval) = &change.approval {
        transaction_approvals::ActiveModel {
            transaction_id: Set(id.to_string()),
            approver: Set(approval.approver.clone()),
            approved: Set(approval.approved),
            at: Set(approval.at),
        }
        .insert(txn)
        .await
        .map_err(db_error)?;
    }
    for event in change.events {
        events::append(txn, event, at).await.map_err(db_error)?;
    }
    Ok(())
}

async fn load_book(
    txn: &DatabaseTransaction,
    network: &str,
    address: &str,
) -> Result<NonceBook, RepositoryError> {
    let row = account_nonces::Entity::find_by_id((network.to_string(), address.to_string()))
        .one(txn)
        .await
        .map_err(db_error)?;
    Ok(match row {
        Some(row) => NonceBook {
            next: u64::try_from(row.next_nonce).map_err(|_| corrupt("nonce book"))?,
            released: serde_json::from_str(&row.released).map_err(|_| corrupt("nonce book"))?,
        },
        None => NonceBook::default(),
    })
}

async fn store_book(
    txn: &DatabaseTransaction,
    network: &str,
    address: &str,
    book: &NonceBook,
    at: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let model = account_nonces::ActiveModel {
        network: Set(network.to_string()),
        address: Set(address.to_string()),
        next_nonce: Set(i64::try_from(book.next).map_err(|_| corrupt("nonce book"))?),
        released: Set(serde_json::to_string(&book.released).map_err(|_| corrupt("nonce book"))?),
        updated_at: Set(at),
    };
    account_nonces::Entity::insert(model)
        .on_conflict(
            OnConflict::columns([
                account_nonces::Column::Network,
                account_nonces::Column::Address,
            ])
            .update_columns([
                account_nonces::Column::NextNonce,
                account_nonces::Column::Released,
                account_nonces::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl TransactionRepository for SqlStore {
    async fn create_decided(
        &self,
        mut request: TransactionRequest,
        since: DateTime<Utc>,
        decide: Decide<'_>,
        state_of: StateOf<'_>,
    ) -> Result<TransactionRequest, RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        // Serialize with every other write of the tenant before reading its spending, so
        // no concurrent request can be decided on the same figures.
        events::lock_tenant(&txn, request.tenant_id)
            .await
            .map_err(db_error)?;
        let recent = recent_spends(&txn, request.tenant_id, since).await?;
        request.decision = decide(&recent);
        request.state = state_of(&request.decision);
        to_row(&request)?.insert(&txn).await.map_err(db_error)?;
        for event in decision_events(&request) {
            events::append(&txn, event, request.created_at)
                .await
                .map_err(db_error)?;
        }
        txn.commit().await.map_err(db_error)?;
        Ok(request)
    }

    async fn get(
        &self,
        tenant: TenantId,
        id: TransactionId,
    ) -> Result<Option<TransactionRequest>, RepositoryError> {
        load(&self.db, tenant, id).await
    }

    async fn recent(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<RecentSpend>, RepositoryError> {
        recent_spends(&self.db, tenant, since).await
    }

    async fn transition(
        &self,
        tenant: TenantId,
        id: TransactionId,
        at: DateTime<Utc>,
        transition: Transition<'_>,
    ) -> Result<Result<TransactionRequest, Refusal>, RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        events::lock_tenant(&txn, tenant).await.map_err(db_error)?;
        let Some(request) = load(&txn, tenant, id).await? else {
            return Ok(Err(Refusal::NotFound));
        };
        let change = match transition(&request) {
            Ok(change) => change,
            Err(refusal) => return Ok(Err(refusal)),
        };
        write_change(&txn, &request, change, at).await?;
        let updated = load(&txn, tenant, id).await?;
        txn.commit().await.map_err(db_error)?;
        updated
            .map(Ok)
            .ok_or_else(|| corrupt("transaction vanished"))
    }

    async fn transition_with_nonce(
        &self,
        tenant: TenantId,
        id: TransactionId,
        at: DateTime<Utc>,
        (network, address): (&str, &str),
        chain: AccountNonces,
        transition: NonceTransition<'_>,
    ) -> Result<Result<TransactionRequest, Refusal>, RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        // The tenant lock serializes every allocation from this tenant's books (an address
        // belongs to one wallet, a wallet to one tenant).
        events::lock_tenant(&txn, tenant).await.map_err(db_error)?;
        let Some(request) = load(&txn, tenant, id).await? else {
            return Ok(Err(Refusal::NotFound));
        };
        let mut book = load_book(&txn, network, address).await?;
        let nonce = book.allocate(chain);
        let change = match transition(&request, nonce) {
            Ok(change) => change,
            Err(refusal) => return Ok(Err(refusal)),
        };
        store_book(&txn, network, address, &book, at).await?;
        write_change(&txn, &request, change, at).await?;
        let updated = load(&txn, tenant, id).await?;
        txn.commit().await.map_err(db_error)?;
        updated
            .map(Ok)
            .ok_or_else(|| corrupt("transaction vanished"))
    }

    async fn claim(
        &self,
        id: TransactionId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let result = transactions::Entity::update_many()
            .col_expr(transactions::Column::ClaimedUntil, Expr::value(Some(until)))
            .filter(transactions::Column::Id.eq(id.to_string()))
            .filter(
                Condition::any()
                    .add(transactions::Column::ClaimedUntil.is_null())
                    .add(transactions::Column::ClaimedUntil.lt(now)),
            )
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn unclaim(&self, id: TransactionId) -> Result<(), RepositoryError> {
        transactions::Entity::update_many()
            .col_expr(
                transactions::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(transactions::Column::Id.eq(id.to_string()))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn moving(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MovingRequest>, RepositoryError> {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::{Alias, Order, Query};
        let states = TransactionState::MOVING.map(|s| s.as_str().to_string());
        // Each request's turn within its (tenant, network): 1 for the oldest, 2 for the
        // next… Ordering by turn first deals one request to every pair before a second one
        // to any (PostgreSQL and SQLite ≥ 3.25 both have window functions).
        let mut inner = Query::select();
        inner
            .columns([
                transactions::Column::TenantId,
                transactions::Column::Id,
                transactions::Column::Network,
                transactions::Column::CreatedAt,
            ])
            .expr_as(
                Expr::cust(
                    "ROW_NUMBER() OVER (PARTITION BY tenant_id, network ORDER BY created_at, id)",
                ),
                Alias::new("turn"),
            )
            .from(transactions::Entity)
            .cond_where(
                Condition::all()
                    .add(transactions::Column::State.is_in(states))
                    // A signed signature request is finished.
                    .add(
                        Condition::any()
                            .add(transactions::Column::Signature.is_null())
                            .add(transactions::Column::State.ne(TransactionState::Signed.as_str())),
                    )
                    .add(
                        Condition::any()
                            .add(transactions::Column::ClaimedUntil.is_null())
                            .add(transactions::Column::ClaimedUntil.lt(now)),
                    ),
            );
        let mut outer = Query::select();
        outer
            .columns([
                Alias::new("tenant_id"),
                Alias::new("id"),
                Alias::new("network"),
            ])
            .from_subquery(inner, Alias::new("moving"))
            .order_by(Alias::new("turn"), Order::Asc)
            .order_by(Alias::new("created_at"), Order::Asc)
            .order_by(Alias::new("id"), Order::Asc)
            .limit(limit);
        let statement = self.db.get_database_backend().build(&outer);
        let rows = self.db.query_all_raw(statement).await.map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                let text = |column: &str| {
                    row.try_get::<String>("", column)
                        .map_err(|_| corrupt("moving transaction row"))
                };
                Ok(MovingRequest {
                    tenant_id: TenantId::parse(&text("tenant_id")?)
                        .ok_or_else(|| corrupt("transaction tenant"))?,
                    id: TransactionId::parse(&text("id")?)
                        .ok_or_else(|| corrupt("transaction id"))?,
                    network: text("network")?,
                })
            })
            .collect()
    }

    async fn list(
        &self,
        tenant: TenantId,
        kind: RequestKind,
        page: &PageRequest,
    ) -> Result<Page<TransactionRequest>, RepositoryError> {
        let mut query = transactions::Entity::find()
            .filter(transactions::Column::TenantId.eq(tenant.to_string()))
            .filter(match kind {
                RequestKind::Transaction => transactions::Column::Signature.is_null(),
                RequestKind::Signature => transactions::Column::Signature.is_not_null(),
            });
        if let Some(after) = &page.after {
            query = query.filter(transactions::Column::Id.gt(after.clone()));
        }
        let rows = query
            .order_by_asc(transactions::Column::Id)
            .limit(page.limit + 1)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = rows;
        for request in &mut rows {
            request.approvals = approvals_of(&self.db, request.id).await?;
        }
        Ok(paginate(rows, page.limit, |t| t.id.to_string()))
    }
}

async fn approvals_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: TransactionId,
) -> Result<Vec<Approval>, RepositoryError> {
    Ok(transaction_approvals::Entity::find()
        .filter(transaction_approvals::Column::TransactionId.eq(id.to_string()))
        .order_by_asc(transaction_approvals::Column::At)
        .all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| Approval {
            approver: row.approver,
            approved: row.approved,
            at: row.at,
        })
        .collect())
}

/// A tenant's request with its approvals.
async fn load<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: TransactionId,
) -> Result<Option<TransactionRequest>, RepositoryError> {
    let Some(row) = transactions::Entity::find_by_id(id.to_string())
        .filter(transactions::Column::TenantId.eq(tenant.to_string()))
        .one(db)
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    let mut request = to_domain(row)?;
    request.approvals = approvals_of(db, id).await?;
    Ok(Some(request))
}

/// A tenant's requests since `since` that count toward velocity limits.
async fn recent_spends<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    since: DateTime<Utc>,
) -> Result<Vec<RecentSpend>, RepositoryError> {
    transactions::Entity::find()
        .filter(transactions::Column::TenantId.eq(tenant.to_string()))
        .filter(transactions::Column::CreatedAt.gt(since))
        .all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .filter(|row| TransactionState::parse(&row.state).is_some_and(|s| s.counts_toward_limits()))
        .map(|row| {
            Ok(RecentSpend {
                wallet_id: WalletId::parse(&row.wallet_id)
                    .ok_or_else(|| corrupt("transaction wallet"))?,
                value_usd: match &row.value_usd {
                    Some(text) => Decimal::from_str_exact(text).map_err(|_| corrupt("value"))?,
                    None => Decimal::ZERO,
                },
                created_at: row.created_at,
            })
        })
        .collect()
}
