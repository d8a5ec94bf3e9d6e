//! waas-wallets: wallet and signature use cases. Turns DKG output into chain addresses,
//! payloads into digests (EIP-191 for EVM), and threshold signatures into the formats each
//! chain expects (r, s, v for EVM; 64 bytes for Ed25519).

mod evm;
mod execution;
mod model;
mod policies;
mod service;
mod transactions;

pub use evm::{eip55_checksum, evm_address, personal_sign_digest};
pub use execution::{Attempt, Execution, Executor, NonceBook, Purpose, base_units};
pub use model::{SignatureKind, SignatureRecord, SignatureRepository, Wallet, WalletRepository};
pub use policies::{
    PolicyDraft, PolicyRepository, PolicyService, PolicyVersion, PriceOracle, Simulation,
    SimulationTarget, StaticPriceOracle,
};
pub use service::{SignInput, WalletService, WalletsError};
pub use transactions::{
    Approval, Change, Decide, NewTransaction, NonceTransition, RecentSpend, Refusal, StateOf,
    TransactionRepository, TransactionRequest, TransactionService, TransactionState, Transition,
    decision_events,
};
