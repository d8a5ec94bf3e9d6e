//! Length-prefixed frames inside an HTTP/2 stream: `u32` big-endian length + postcard bytes.
//! A reader is told the largest frame it accepts and refuses a larger one from its length
//! alone, before reading its body.

use crate::secure;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use waas_core::ports::SignerError;

pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// Encodes one frame.
pub(crate) fn frame<T: Serialize>(value: &T) -> Result<Bytes, SignerError> {
    let body = secure::encode(value)?;
    let len = u32::try_from(body.len())
        .map_err(|_| SignerError::Bug("frame larger than 4 GiB".into()))?;
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out.freeze())
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The announced length is above the reader's limit (nothing of the body was read).
    TooLarge { len: usize, limit: usize },
    /// The stream broke, ended inside a frame, or the frame does not decode.
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, limit } => {
                write!(f, "a frame of {len} bytes exceeds the limit of {limit}")
            }
            FrameError::Malformed(reason) => f.write_str(reason),
        }
    }
}

/// Reads length-prefixed frames from an HTTP body.
pub(crate) struct FrameReader<B> {
    body: B,
    buffer: BytesMut,
}

impl<B> FrameReader<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    pub(crate) fn new(body: B) -> Self {
        Self {
            body,
            buffer: BytesMut::new(),
        }
    }

    /// The next frame of at most `limit` bytes; `Ok(None)` at a clean end of the stream.
    /// Reads no further than the frame needs plus what one HTTP/2 DATA frame carried.
    pub(crate) async fn next<T: DeserializeOwned>(
        &mut self,
        limit: usize,
    ) -> Result<Option<T>, FrameError> {
        loop {
            if let Some(head) = self.buffer.get(..4) {
                let mut bytes = [0u8; 4];
                bytes.copy_from_slice(head);
                let len = usize::try_from(u32::from_be_bytes(bytes)).unwrap_or(usize::MAX);
                if len > limit {
                    return Err(FrameError::TooLarge { len, limit });
                }
                if self.buffer.len() >= 4 + len {
                    self.buffer.advance(4);
                    let body = self.buffer.split_to(len);
                    return secure::decode(&body)
                        .map(Some)
                        .map_err(FrameError::Malformed);
                }
            }
            match self.body.frame().await {
                None => {
                    return if self.buffer.is_empty() {
                        Ok(None)
                    } else {
                        Err(FrameError::Malformed("stream ended inside a frame".into()))
                    };
                }
                Some(Err(error)) => return Err(FrameError::Malformed(format!("stream: {error}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// A body that streams frames from a channel; it ends when every sender is gone.
pub(crate) fn channel_body(receiver: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let bytes = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(bytes)), receiver))
    });
    BodyExt::boxed(StreamBody::new(stream))
}
