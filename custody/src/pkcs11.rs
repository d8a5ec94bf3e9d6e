//! `pkcs11` key protection: data keys are encrypted inside an HSM with AES-256-GCM under a
//! non-extractable, sensitive AES key that never leaves the token (CloudHSM in production,
//! SoftHSM2 in tests). The AAD binds tenant, key, party and version.

use crate::versions::KekVersions;
use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand::RngCore;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use waas_core::ports::{CustodyError, KeyContext, KeyProtector, WrappedKey};
use waas_core::secret::SymmetricKey;
use zeroize::Zeroize;

/// How a party reaches its HSM partition.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    pub token_label: String,
    pub pin: String,
    /// Label of this party's wrapping key; created (non-extractable) when missing.
    pub key_label: String,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .finish()
    }
}

struct Inner {
    /// Kept alive for the sessions; finalized on drop.
    _pkcs11: Pkcs11,
    token_label: String,
    key_label: String,
    /// Key handle per version. Version 1 is labelled `<key_label>`, later ones
    /// `<key_label>.v<N>`.
    versions: KekVersions<ObjectHandle>,
    /// Idle sessions, reused (a session serves one call at a time).
    sessions: Mutex<Vec<Session>>,
    open_session: Box<dyn Fn() -> Result<Session, CkError> + Send + Sync>,
}

/// An HSM-backed key-encryption key.
#[derive(Clone)]
pub struct Pkcs11KeyProtector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pkcs11KeyProtector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyProtector")
            .field("kek_id", &self.current_kek_id())
            .finish()
    }
}

fn map_error(what: &str, error: CkError) -> CustodyError {
    match error {
        CkError::Pkcs11(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange, _) => {
            CustodyError::Integrity(format!("HSM {what}: authentication failed"))
        }
        other => CustodyError::Unavailable(format!("HSM {what}: {other}")),
    }
}

fn find_slot(pkcs11: &Pkcs11, token_label: &str) -> Result<Slot, CustodyError> {
    for slot in pkcs11
        .get_slots_with_token()
        .map_err(|e| map_error("listing slots", e))?
    {
        let info = pkcs11
            .get_token_info(slot)
            .map_err(|e| map_error("token info", e))?;
        if info.label().trim_end() == token_label {
            return Ok(slot);
        }
    }
    Err(CustodyError::Unavailable(format!(
        "no HSM token labelled {token_label:?}"
    )))
}

fn version_label(base: &str, version: usize) -> String {
    if version <= 1 {
        base.to_string()
    } else {
        format!("{base}.v{version}")
    }
}

fn kek_id(token_label: &str, key_label: &str) -> String {
    format!("pkcs11:{token_label}/{key_label}")
}

fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>, CustodyError> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let found = session
        .find_objects(&template)
        .map_err(|e| map_error("finding the key", e))?;
    Ok(found.first().copied())
}

fn check_key_is_safe(
    session: &Session,
    key: ObjectHandle,
    label: &str,
) -> Result<(), CustodyError> {
    let attributes = session
        .get_attributes(key, &[AttributeType::Extractable, AttributeType::Sensitive])
        .map_err(|e| map_error("reading key attributes", e))?;
    let safe = attributes.iter().all(|a| match a {
        Attribute::Extractable(extractable) => !extractable,
        Attribute::Sensitive(sensitive) => *sensitive,
        _ => true,
    });
    if safe {
        Ok(())
    } else {
        Err(CustodyError::Unavailable(format!(
            "HSM key {label:?} is extractable or not sensitive; refusing to use it"
        )))
    }
}

fn find_or_create_key(session: &Session, label: &str) -> Result<ObjectHandle, CustodyError> {
    if let Some(key) = find_key(session, label)? {
        return Ok(key);
    }
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::ValueLen(32.into()),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
        .map_err(|e| map_error("creating the key", e))
}

impl Pkcs11KeyProtector {
    /// Loads the module, logs in to the token and finds (or creates) the wrapping key.
    pub fn connect(config: &Pkcs11Config) -> Result<Self, CustodyError> {
        let pkcs11 = Pkcs11::new(&config.module).map_err(|e| map_error("loading the module", e))?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(map_error("initializing", e)),
        }
        let slot = find_slot(&pkcs11, &config.token_label)?;
        let session = pkcs11
            .open_rw_session(slot)
            .map_err(|e| map_error("opening a session", e))?;
        let pin = AuthPin::from(config.pin.clone());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(map_error("logging in", e)),
        }
        let mut versions = Vec::new();
        let mut version = 1;
        loop {
            let label = version_label(&config.key_label, version);
            let key = if version == 1 {
                find_or_create_key(&session, &label)?
            } else {
                match find_key(&session, &label)? {
                    Some(key) => key,
                    None => break,
                }
            };
            check_key_is_safe(&session, key, &label)?;
            versions.push((kek_id(&config.token_label, &label), key));
            version += 1;
        }
        let opener = pkcs11.clone();
        let inner = Inner {
            _pkcs11: pkcs11,
            token_label: config.token_label.clone(),
            key_label: config.key_label.clone(),
            versions: KekVersions::new(versions),
            sessions: Mutex::new(vec![session]),
            open_session: Box::new(move || opener.open_rw_session(slot)),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The (kek id, handle) of version `kek_id`, or of the current version.
    fn version(&self, kek_id: Option<&str>) -> Result<(String, ObjectHandle), CustodyError> {
        self.inner.versions.get(kek_id)
    }

    async fn with_session<T: Send + 'static>(
        &self,
        key: ObjectHandle,
        work: impl FnOnce(&Session, ObjectHandle) -> Result<T, CustodyError> + Send + 'static,
    ) -> Result<T, CustodyError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.sessions.lock().ok().and_then(|mut idle| idle.pop());
            let session = match pooled {
                Some(session) => session,
                None => (inner.open_session)().map_err(|e| map_error("opening a session", e))?,
            };
            let result = work(&session, key);
            if let Ok(mut idle) = inner.sessions.lock() {
                idle.push(session);
            }
            result
        })
        .await
        .map_err(|e| CustodyError::Unavailable(format!("HSM worker: {e}")))?
    }
}

/// Whether `key` round-trips a probe value in `session` (the HSM is healthy).
fn probe(session: &Session, key: ObjectHandle) -> bool {
    let mut fresh = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let mut iv = fresh;
    let aad = b"waas-probe";
    let Ok(params) = GcmParams::new(&mut iv, aad, 128.into()) else {
        return false;
    };
    let Ok(sealed) = session.encrypt(&Mechanism::AesGcm(params), key, b"probe") else {
        return false;
    };
    let mut iv = fresh;
    let Ok(params) = GcmParams::new(&mut iv, aad, 128.into()) else {
        return false;
    };
    session
        .decrypt(&Mechanism::AesGcm(params), key, &sealed)
        .is_ok_and(|plain| plain == b"probe")
}

#[async_trait]
impl KeyProtector for Pkcs11KeyProtector {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn current_kek_id(&self) -> String {
        self.version(None).map(|(id, _)| id).unwrap_or_default()
    }

    /// Creates the next key version in the token (sensitive, non-extractable) and makes it
    /// current.
    async fn rotate(&self) -> Result<String, CustodyError> {
        let next = self.inner.versions.len() + 1;
        let label = version_label(&self.inner.key_label, next);
        let (_, current) = self.version(None)?;
        let created_label = label.clone();
        let key = self
            .with_session(current, move |session, _| {
                let key = find_or_create_key(session, &created_label)?;
                check_key_is_safe(session, key, &created_label)?;
                Ok(key)
            })
            .await?;
        let id = kek_id(&self.inner.token_label, &label);
        self.inner.versions.push(id.clone(), key)?;
        Ok(id)
    }

    async fn wrap(
        &self,
        data_key: &SymmetricKey,
        context: &KeyContext,
    ) -> Result<WrappedKey, CustodyError> {
        let mut plain = data_key.expose().to_vec();
        let aad = context.aad();
        let (kek_id, current) = self.version(None)?;
        let bytes = self
            .with_session(current, move |session, key| {
                let mut iv = [0u8; 12];
                rand::rngs::OsRng.fill_bytes(&mut iv);
                let mut iv_param = iv;
                let params = GcmParams::new(&mut iv_param, &aad, 128.into())
                    .map_err(|e| CustodyError::Malformed(format!("GCM parameters: {e}")))?;
                let sealed = session.encrypt(&Mechanism::AesGcm(params), key, &plain);
                plain.zeroize();
                let sealed = sealed.map_err(|e| map_error("encrypting", e))?;
                Ok([iv.as_slice(), &sealed].concat())
            })
            .await?;
        Ok(WrappedKey {
            protector: self.kind().into(),
            kek_id,
            bytes,
        })
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<SymmetricKey, CustodyError> {
        let (_, key_handle) = self.version(Some(&wrapped.kek_id))?;
        let (iv, sealed) = wrapped
            .bytes
            .split_at_checked(12)
            .ok_or_else(|| CustodyError::Malformed("wrapped key too short".into()))?;
        let mut iv: [u8; 12] = iv
            .try_into()
            .map_err(|_| CustodyError::Malformed("iv".into()))?;
        let sealed = sealed.to_vec();
        let aad = context.aad();
        let what = context.key.clone();
        self.with_session(key_handle, move |session, key| {
            let params = GcmParams::new(&mut iv, &aad, 128.into())
                .map_err(|e| CustodyError::Malformed(format!("GCM parameters: {e}")))?;
            let mut plain = match session.decrypt(&Mechanism::AesGcm(params), key, &sealed) {
                Ok(plain) => plain,
                Err(error) => {
                    // Tokens report a failed GCM tag differently (SoftHSM2: CKR_GENERAL_ERROR).
                    // If the same key still encrypts and decrypts a probe, the HSM is fine and
                    // the record itself failed authentication.
                    return Err(match map_error("decrypting", error) {
                        CustodyError::Unavailable(reason) if !probe(session, key) => {
                            CustodyError::Unavailable(reason)
                        }
                        _ => CustodyError::Integrity(format!("data key of {what}")),
                    });
                }
            };
            let array = <[u8; 32]>::try_from(plain.as_slice())
                .map_err(|_| CustodyError::Malformed("data key must be 32 bytes".into()));
            plain.zeroize();
            Ok(SymmetricKey::from_bytes(array?))
        })
        .await
    }
}
