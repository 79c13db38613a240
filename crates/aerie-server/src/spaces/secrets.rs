//! A space's data key, wrapped by the master keys, and the installation secrets it seals: the
//! host's secrets provider, setting a secret, and re-wrapping every key under a new master key.

use aerie_core::name::PluginName;
use aerie_core::sealed::WrappedKey;
use aerie_db::{Actor, Database, Space, installation_scope};
use aerie_host::{Secrets, StoreError};
use async_trait::async_trait;

use super::apply::package;
use super::changes::not_installed;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::keys::MasterKeys;
use crate::state::AppState;

/// Installation secrets for the host: read from the database and opened with the space's
/// data key when a plugin asks.
pub struct SpaceSecrets {
    /// The metadata store.
    pub db: Database,
    /// The master keys.
    pub keys: MasterKeys,
}

/// Where a secret's sealed value belongs: the place its seal is bound to.
fn secret_place(scope: &str, name: &str) -> String {
    format!("{scope}/secret/{name}")
}

#[async_trait]
impl Secrets for SpaceSecrets {
    async fn get(&self, scope: &str, name: &str) -> Result<Option<String>, StoreError> {
        // Local spaces (`aerie run`) have no secret store.
        let Some((space_id, plugin)) = scope
            .strip_prefix("space:")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(id, plugin)| Some((id.parse::<i64>().ok()?, plugin)))
        else {
            return Ok(None);
        };
        let fail = |err: &dyn std::fmt::Display| StoreError(format!("secrets unavailable: {err}"));
        let Some(space) = self.db.space_by_id(space_id).await.map_err(|e| fail(&e))? else {
            return Ok(None);
        };
        let Some(installation) = self
            .db
            .installation(space_id, plugin)
            .await
            .map_err(|e| fail(&e))?
        else {
            return Ok(None);
        };
        let secrets = self
            .db
            .installation_secrets(installation.id)
            .await
            .map_err(|e| fail(&e))?;
        let Some((_, sealed)) = secrets.iter().find(|(stored, _)| stored == name) else {
            return Ok(None);
        };
        let key = self
            .keys
            .unwrap(&wrapped_key(&space), DATA_KEY_OWNER)
            .map_err(|e| fail(&e))?;
        let value = key
            .open(sealed, &secret_place(scope, name))
            .map_err(|e| fail(&e))?;
        String::from_utf8(value.to_vec())
            .map(Some)
            .map_err(|_| StoreError("the secret is not text".into()))
    }
}

fn wrapped_key(space: &Space) -> WrappedKey {
    WrappedKey {
        master_key_id: space.master_key_id.clone(),
        sealed: space.wrapped_key.clone(),
    }
}

/// What every space's data key is bound to when wrapped. (Each secret is bound to its own
/// place — space id, plugin, name — so a sealed value moved anywhere else does not open.)
const DATA_KEY_OWNER: &str = "space";

/// Creates a space owned by `owner_id`, with a new data key.
pub async fn new_space(
    state: &AppState,
    actor: &Actor,
    name: &str,
    owner_id: i64,
) -> ApiResult<Space> {
    // No rotation runs, here or on another replica, from reading the key file until the
    // space is stored: a data key wrapped by a key a rotation retires meanwhile is lost.
    // (The database's lock first, as a rotation takes them, or the two could wait on each
    // other.)
    let _not_rotating = state.db.shared(aerie_db::ReplicaLock::MasterKeys).await?;
    let _wrapping = state.keys.wrapping().await;
    state.keys.refresh().map_err(ApiError::internal)?;
    let (_, wrapped) = state.keys.keyring().new_data_key(DATA_KEY_OWNER);
    Ok(state
        .db
        .create_space(
            actor,
            name,
            owner_id,
            &wrapped.master_key_id,
            &wrapped.sealed,
        )
        .await?)
}

/// The largest secret value accepted.
const MAX_SECRET_LEN: usize = 64 * 1024;

/// Sets (`Some`) or removes (`None`) one of an installation's secrets. Plugins read secrets
/// when they ask, so the change takes effect at once.
pub async fn set_secret(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    name: &str,
    value: Option<&str>,
) -> ApiResult<()> {
    let installation = state
        .db
        .installation(space.id, plugin.as_str())
        .await?
        .ok_or_else(|| not_installed(plugin, space))?;
    let package = package(state, &installation.installation.digest).await?;
    let declared = &package.manifest.permissions.secrets;
    if value.is_some() && !declared.iter().any(|declared| declared == name) {
        return Err(ApiError::unprocessable(
            "secret_not_declared",
            format!(
                "{plugin} does not read a secret named `{name}`; it reads {}",
                if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                }
            ),
        ));
    }
    let sealed = match value {
        Some(value) => {
            if value.is_empty() || value.len() > MAX_SECRET_LEN {
                return Err(ApiError::unprocessable(
                    "invalid_secret",
                    "a secret's value must be 1 byte to 64 KiB",
                ));
            }
            let key = state
                .keys
                .unwrap(&wrapped_key(space), DATA_KEY_OWNER)
                .map_err(ApiError::internal)?;
            let scope = installation_scope(space.id, plugin.as_str());
            Some(key.seal(value.as_bytes(), &secret_place(&scope, name)))
        }
        None => None,
    };
    state
        .db
        .set_installation_secret(
            &caller.actor(),
            space,
            &installation,
            name,
            sealed.as_deref(),
        )
        .await
        .map_err(|err| match err {
            aerie_db::DbError::NotFound(_) => ApiError::not_found(
                "secret_not_found",
                format!("{plugin} has no secret `{name}` set"),
            ),
            other => other.into(),
        })
}

/// Re-wraps every space's data key with a new master key (or, with keys from the
/// environment, with the first one there), then retires the old keys that no space uses any
/// more. One rotation runs at a time across every replica sharing the database, and no space
/// is created meanwhile on any of them ([`new_space`] holds the same lock, shared).
pub async fn rotate_master_key(
    state: &AppState,
    actor: &Actor,
) -> ApiResult<aerie_api_types::RotationView> {
    let _exclusive = state
        .db
        .exclusive(aerie_db::ReplicaLock::MasterKeys)
        .await?;
    let _rotating = state.keys.rotating().await;
    let keyring = state
        .keys
        .begin_rotation()
        .map_err(|err| ApiError::conflict("rotation_failed", err.to_string()))?;
    let primary = keyring.primary().id().to_string();
    let mut rewrapped = Vec::new();
    for space in state.db.all_spaces().await? {
        if space.master_key_id == primary {
            continue;
        }
        let key = state
            .keys
            .unwrap(&wrapped_key(&space), DATA_KEY_OWNER)
            .map_err(|err| {
                ApiError::internal(format!("the data key of `{}`: {err}", space.name))
            })?;
        let wrapped = keyring.wrap(&key, DATA_KEY_OWNER);
        rewrapped.push((space.id, wrapped.master_key_id, wrapped.sealed));
    }
    state
        .db
        .rewrap_space_keys(actor, &rewrapped, &primary)
        .await?;
    // A key is retired only once no data key needs it.
    let in_use = state.db.master_keys_in_use().await?;
    let retired = state
        .keys
        .finish_rotation(&in_use)
        .map_err(|err| ApiError::internal(err.to_string()))?;
    Ok(aerie_api_types::RotationView {
        master_key_id: primary,
        rewrapped: rewrapped.len(),
        retired,
    })
}
