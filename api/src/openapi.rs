//! The OpenAPI document of `/v1`, served at `/openapi/v1.json` and exported to
//! `openapi/v1.json` (a test fails when the two drift).

use crate::problem::{Problem, ProblemFieldError};
use crate::routes::{
    api_keys, events, health, metrics, networks, oauth, operator, policies, signatures, tenants,
    transactions, wallets,
};
use crate::state::AppState;
use crate::wire::*;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant API key (`Authorization: Bearer waas_sk_…`) or an access token \
                         from `/oauth/token` (`Authorization: Bearer <JWT>`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth_client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "OAuth2 client authentication at `/oauth/token`: the API key id as \
                         user name, its secret as password",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/oauth/token",
                    waas_tenants::Scope::ALL
                        .iter()
                        .map(|scope| (scope.as_str(), scope.as_str()))
                        .collect::<Scopes>(),
                ))],
                "Client credentials (client id = API key id, secret = API key secret) → a JWT \
                 access token, accepted wherever the API key is",
            )),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator token: `Authorization: Bearer waas_op_…`",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi, Debug)]
#[openapi(
    info(title = "waas API", version = "1", description = "Threshold (MPC) wallets as a service. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        tenants::create_tenant, tenants::get_tenant, tenants::create_tenant_api_key,
        api_keys::create_api_key, api_keys::list_api_keys, api_keys::revoke_api_key,
        wallets::create_wallet, wallets::list_wallets, wallets::get_wallet,
        signatures::create_signature, signatures::list_signatures, signatures::get_signature,
        signatures::approve, signatures::reject, signatures::cancel,
        events::list_events,
        operator::rotate_keys,
        policies::get_active, policies::get_draft, policies::put_draft, policies::publish,
        policies::list_versions, policies::get_version, policies::simulate,
        transactions::create_transaction, transactions::list_transactions, transactions::get_transaction,
        transactions::approve, transactions::reject, transactions::cancel, transactions::speed_up,
        networks::list_networks, networks::balances,
        oauth::token, oauth::jwks,
    ),
    components(schemas(
        Problem, ProblemFieldError,
        CreateTenantRequest, TenantResponse,
        CreateApiKeyRequest, ApiKeyResponse, CreatedApiKeyResponse, ApiKeyList,
        CreateWalletRequest, WalletResponse, WalletList, ThresholdResponse,
        CreateSignatureRequest, SignatureResponse, SignatureList,
        EventResponse, EventList,
        KeyRotationRequest, KeyRotationResponse, PartyRotation,
        HealthResponse, ReadinessResponse, SignerPoolReadiness, PartyReadiness, RateLimiterReadiness,
        waas_policy::PolicyDocument, waas_policy::RuleDocument, waas_policy::ActionDocument,
        waas_policy::ConditionDocument,
        PolicyDraftResponse, PolicyVersionResponse, PolicyVersionSummary, PolicyVersionList,
        SimulatePolicyRequest, SimulatedTransaction, AssumedSpending, SimulationTargetWire,
        PolicyDecision, MatchedRuleWire,
        CreateTransactionRequest, TransactionResponse, TransactionList, ApprovalResponse,
        ChainExecution, AttemptResponse,
        NetworkList, NetworkResponse, FeeCapsResponse, AssetResponse, TokenResponse, EndpointResponse,
        BalanceList, BalanceResponse,
        oauth::OAuthTokenRequest, oauth::GrantType, oauth::OAuthTokenResponse, oauth::TokenType,
        oauth::OAuthErrorResponse, oauth::OAuthErrorCode, oauth::JwkSetResponse, oauth::JwkResponse,
        oauth::JwkKeyType, oauth::JwkCurve, oauth::JwkAlgorithm, oauth::JwkUse,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health"), (name = "tenants", description = "Operator only"), (name = "operator", description = "Operator maintenance"),
        (name = "api-keys"), (name = "wallets"), (name = "events"),
        (name = "transactions", description = "Transaction requests through the tenant's policy"),
        (name = "networks", description = "Configured chain networks and balances"),
        (name = "oauth", description = "OAuth2 client credentials: short-lived JWT access tokens for API keys, and the JWKS that verifies them"),
        (name = "policies", description = "Rules that decide, per transaction, deny or allow with signing and approval quorums"),
    ),
)]
pub struct ApiDocV1;

/// The v1 document as pretty JSON (what `openapi/v1.json` holds).
pub fn v1_json() -> String {
    let mut text = ApiDocV1::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi/v1.json",
        get(|| async { Json(ApiDocV1::openapi()) }),
    )
}
