//! `aws-kms` key protection: data keys from KMS `GenerateDataKey`, opened with `Decrypt`,
//! both under an encryption context that binds tenant, key, party and version (KMS refuses
//! to decrypt under any other context). Works against AWS or an emulator (endpoint override).

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use std::collections::HashMap;
use std::time::Duration;
use waas_core::ports::{CustodyError, KeyContext, KeyProtector, WrappedKey};
use waas_core::secret::SymmetricKey;
use zeroize::Zeroize;

/// Where and with which key a party reaches KMS.
#[derive(Clone)]
pub struct AwsKmsConfig {
    /// Key id, ARN or alias of this party's KMS key.
    pub key_id: String,
    /// Earlier keys of this party, still accepted for `Decrypt` until a rotation pass has
    /// re-wrapped every record under `key_id`.
    pub previous_key_ids: Vec<String>,
    pub region: String,
    /// An endpoint override (an emulator, a VPC endpoint); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Upper bound for one KMS call including retries; outages fail within it.
    pub timeout: Duration,
    /// Fixed credentials (access key id, secret); `None` uses the standard AWS chain.
    pub static_credentials: Option<(String, String)>,
}

impl std::fmt::Debug for AwsKmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsConfig")
            .field("key_id", &self.key_id)
            .field("previous_key_ids", &self.previous_key_ids)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field(
                "static_credentials",
                &self.static_credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A KMS-backed key-encryption key.
#[derive(Debug, Clone)]
pub struct AwsKmsKeyProtector {
    client: aws_sdk_kms::Client,
    key_id: String,
    previous_key_ids: Vec<String>,
}

fn encryption_context(context: &KeyContext) -> HashMap<String, String> {
    HashMap::from([
        ("waas:tenant".to_string(), context.tenant.clone()),
        ("waas:key".to_string(), context.key.clone()),
        ("waas:party".to_string(), context.party.to_string()),
        ("waas:version".to_string(), context.version.to_string()),
    ])
}

fn to_symmetric(plaintext: Option<&Blob>) -> Result<SymmetricKey, CustodyError> {
    let bytes =
        plaintext.ok_or_else(|| CustodyError::Malformed("KMS returned no plaintext".into()))?;
    let mut array = <[u8; 32]>::try_from(bytes.as_ref())
        .map_err(|_| CustodyError::Malformed("KMS data key is not 32 bytes".into()))?;
    let key = SymmetricKey::from_bytes(array);
    array.zeroize();
    Ok(key)
}

impl AwsKmsKeyProtector {
    /// Builds a client; credentials come from the standard AWS chain (environment, profile,
    /// instance role).
    pub async fn connect(config: &AwsKmsConfig) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2).min(config.timeout))
            .operation_timeout(config.timeout)
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((access_key, secret)) = &config.static_credentials {
            loader = loader.credentials_provider(aws_sdk_kms::config::Credentials::new(
                access_key.clone(),
                secret.clone(),
                None,
                None,
                "waas-settings",
            ));
        }
        let shared = loader.load().await;
        Self {
            client: aws_sdk_kms::Client::new(&shared),
            key_id: config.key_id.clone(),
            previous_key_ids: config.previous_key_ids.clone(),
        }
    }

    /// Creates a symmetric key (for emulators and first-time setup); returns its key id.
    pub async fn create_key(&self, description: &str) -> Result<String, CustodyError> {
        let output = self
            .client
            .create_key()
            .description(description)
            .send()
            .await
            .map_err(|e| {
                CustodyError::Unavailable(format!(
                    "KMS CreateKey: {}",
                    aws_sdk_kms::error::DisplayErrorContext(e)
                ))
            })?;
        output
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or_else(|| CustodyError::Malformed("KMS CreateKey returned no key".into()))
    }
}

fn unavailable<E: std::error::Error + 'static>(
    what: &str,
    error: aws_sdk_kms::error::SdkError<E>,
) -> CustodyError {
    CustodyError::Unavailable(format!(
        "KMS {what}: {}",
        aws_sdk_kms::error::DisplayErrorContext(error)
    ))
}

#[async_trait]
impl KeyProtector for AwsKmsKeyProtector {
    fn kind(&self) -> &'static str {
        "aws-kms"
    }

    fn current_kek_id(&self) -> String {
        self.key_id.clone()
    }

    async fn generate_data_key(
        &self,
        context: &KeyContext,
    ) -> Result<(SymmetricKey, WrappedKey), CustodyError> {
        let output = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| unavailable("GenerateDataKey", e))?;
        let data_key = to_symmetric(output.plaintext())?;
        let wrapped = output
            .ciphertext_blob()
            .ok_or_else(|| CustodyError::Malformed("KMS returned no ciphertext".into()))?;
        Ok((
            data_key,
            WrappedKey {
                protector: self.kind().into(),
                kek_id: self.key_id.clone(),
                bytes: wrapped.as_ref().to_vec(),
            },
        ))
    }

    async fn wrap(
        &self,
        data_key: &SymmetricKey,
        context: &KeyContext,
    ) -> Result<WrappedKey, CustodyError> {
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(data_key.expose().to_vec()))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| unavailable("Encrypt", e))?;
        let wrapped = output
            .ciphertext_blob()
            .ok_or_else(|| CustodyError::Malformed("KMS returned no ciphertext".into()))?;
        Ok(WrappedKey {
            protector: self.kind().into(),
            kek_id: self.key_id.clone(),
            bytes: wrapped.as_ref().to_vec(),
        })
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<SymmetricKey, CustodyError> {
        // Only this party's keys (current or, during a rotation, previous) may open its
        // records: KMS refuses a blob made by another key (IncorrectKeyException).
        let key_id =
            if wrapped.kek_id == self.key_id || self.previous_key_ids.contains(&wrapped.kek_id) {
                wrapped.kek_id.as_str()
            } else {
                self.key_id.as_str()
            };
        let result = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(wrapped.bytes.clone()))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await;
        match result {
            Ok(output) => to_symmetric(output.plaintext()),
            Err(error) => {
                // AWS answers a wrong encryption context with InvalidCiphertext, a blob of
                // another key with IncorrectKey; emulators (moto) answer AccessDenied. None
                // of them is an outage, and retrying cannot help: report an integrity failure.
                let integrity = error.as_service_error().is_some_and(|e| {
                    e.is_invalid_ciphertext_exception()
                        || e.is_incorrect_key_exception()
                        || e.meta().code() == Some("AccessDeniedException")
                });
                if integrity {
                    Err(CustodyError::Integrity(format!(
                        "data key of {}",
                        context.key
                    )))
                } else {
                    Err(unavailable("Decrypt", error))
                }
            }
        }
    }
}
