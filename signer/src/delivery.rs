//! Adapts a session's channels to `round_based` delivery: JSON-encoded protocol messages,
//! addressed by session-local index. A message that does not decode, claims the wrong
//! sender or is addressed to someone else is rejected and its sender recorded as culprit.

use crate::transport::{PartyEvent, Route, WireMessage};
use futures::{Sink, Stream};
use round_based::{Incoming, MessageDestination, MessageType, Outgoing};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("message from party {culprit} rejected: {reason}")]
    Rejected { culprit: u16, reason: String },
    #[error("message from the coordinator where a party message was expected")]
    UnexpectedCoordinator,
    #[error("session channel closed")]
    Closed,
    #[error("encoding an outgoing message: {0}")]
    Encode(String),
}

/// Culprits found by the delivery layer, read after a protocol aborts.
#[derive(Clone, Debug, Default)]
pub struct Blame(Arc<Mutex<Vec<u16>>>);

impl Blame {
    fn add(&self, culprit: u16) {
        if let Ok(mut list) = self.0.lock()
            && !list.contains(&culprit)
        {
            list.push(culprit);
        }
    }
    pub fn culprits(&self) -> Vec<u16> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

pub type IncomingStream<M> = Pin<Box<dyn Stream<Item = Result<Incoming<M>, DeliveryError>> + Send>>;
pub type OutgoingSink<M> = Pin<Box<dyn Sink<Outgoing<M>, Error = DeliveryError> + Send>>;

/// Checks the envelope of a message for party `me` in a session of `size` parties.
pub fn check_envelope(
    me: u16,
    size: u16,
    message: &WireMessage,
) -> Result<(u16, MessageType), DeliveryError> {
    let Some(sender) = message.from else {
        return Err(DeliveryError::UnexpectedCoordinator);
    };
    if sender >= size || sender == me {
        return Err(DeliveryError::Rejected {
            culprit: sender,
            reason: format!("invalid sender index {sender}"),
        });
    }
    match message.route {
        Route::Broadcast => Ok((sender, MessageType::Broadcast)),
        Route::Party(to) if to == me => Ok((sender, MessageType::P2P)),
        Route::Party(to) => Err(DeliveryError::Rejected {
            culprit: sender,
            reason: format!("addressed to party {to}, delivered to {me}"),
        }),
        Route::Coordinator => Err(DeliveryError::Rejected {
            culprit: sender,
            reason: "addressed to the coordinator".into(),
        }),
    }
}

/// Builds the incoming stream and outgoing sink for party `me` of `size`.
pub fn connect<M>(
    me: u16,
    size: u16,
    inbox: mpsc::Receiver<WireMessage>,
    outbox: mpsc::Sender<PartyEvent>,
    blame: Blame,
) -> (IncomingStream<M>, OutgoingSink<M>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let incoming = futures::stream::unfold(
        (inbox, 0u64, blame),
        move |(mut inbox, next_id, blame)| async move {
            let message = inbox.recv().await?;
            let item = check_envelope(me, size, &message).and_then(|(sender, msg_type)| {
                serde_json::from_slice::<M>(&message.payload)
                    .map(|msg| Incoming {
                        id: next_id,
                        sender,
                        msg_type,
                        msg,
                    })
                    .map_err(|e| DeliveryError::Rejected {
                        culprit: sender,
                        reason: format!("undecodable message: {e}"),
                    })
            });
            if let Err(DeliveryError::Rejected { culprit, .. }) = &item {
                blame.add(*culprit);
            }
            Some((item, (inbox, next_id + 1, blame)))
        },
    );
    let outgoing = futures::sink::unfold(outbox, move |outbox, out: Outgoing<M>| async move {
        let payload =
            serde_json::to_vec(&out.msg).map_err(|e| DeliveryError::Encode(e.to_string()))?;
        let route = match out.recipient {
            MessageDestination::AllParties => Route::Broadcast,
            MessageDestination::OneParty(to) => Route::Party(to),
        };
        outbox
            .send(PartyEvent::Message(WireMessage {
                from: Some(me),
                route,
                payload,
            }))
            .await
            .map_err(|_| DeliveryError::Closed)?;
        Ok::<_, DeliveryError>(outbox)
    });
    (Box::pin(incoming), Box::pin(outgoing))
}
