//! waas-wallets: the use cases of wallets (DKG through the pool, addresses), policies,
//! transaction and signature requests (decided by policy, approved, executed on chain), and
//! the executor that signs and sends them.

mod evm;
mod execution;
mod execution_model;
mod fault;
mod model;
mod policies;
mod service;
mod signature_model;
mod signatures;
mod transactions;

pub use evm::{eip55_checksum, evm_address, personal_sign_digest};
pub use execution::Executor;
pub use execution_model::{Attempt, Execution, NonceBook, Purpose, base_units};
pub use model::{Wallet, WalletRepository};
pub use policies::{
    PolicyDraft, PolicyRepository, PolicyService, PolicyVersion, PriceOracle, Simulation,
    SimulationTarget, StaticPriceOracle,
};
pub use service::{WalletService, WalletsError};
pub use signature_model::{SignInput, SignatureRequest, SignatureResult};
pub use transactions::{
    Approval, Change, Decide, MovingRequest, NewTransaction, NonceTransition, RecentSpend, Refusal,
    RequestKind, StateOf, TransactionRepository, TransactionRequest, TransactionService,
    TransactionState, Transition, decision_events, event_kind,
};
pub use waas_policy::SignatureKind;
