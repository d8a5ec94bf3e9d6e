//! Typed identifiers. Each is a UUIDv7 (time-ordered, so cursor pagination by id is by time).

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// Parses the canonical hyphenated form; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                Uuid::try_parse(text).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// A tenant: the unit of isolation. Every other object belongs to exactly one.
    TenantId
);
typed_id!(
    /// An API key of a tenant.
    ApiKeyId
);
typed_id!(
    /// A wallet (one threshold key on one chain family).
    WalletId
);
typed_id!(
    /// A signature produced for a wallet.
    SignatureId
);
typed_id!(
    /// An event in a tenant's audit chain.
    EventId
);
typed_id!(
    /// A transaction request (intent → policy → approvals → signing).
    TransactionId
);
