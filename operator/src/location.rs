//! BackupStorageLocation: check periodically that the store answers with the given
//! credentials, and say why when it does not; keep its recovery key (generated when the user
//! gives none); bring in the Backups its bucket holds (backup sync, `crate::sync`).

use crate::context::Context;
use crate::sync;
use crate::{Error, Result};
use arca_api::common::{now, secret_strings, set_condition};
use arca_api::location::{
    LocationPhase, GENERATED_RECOVERY_KEY_ANNOTATION, RECOVERY_KEY_CONDITION,
};
use arca_api::repository::STORAGE_LOCATION_LABEL;
use arca_api::BackupStorageLocation;
use arca_engine::recovery::RecoveryKey;
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use arca_storage::FileType;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// Checks happen this often unless the location says otherwise.
pub const DEFAULT_VALIDATION: Duration = Duration::from_secs(60);

/// The storage options and credentials of a location, for opening repositories in it.
pub async fn storage_options(
    ctx: &Context,
    bsl: &BackupStorageLocation,
) -> Result<arca_storage::options::Options> {
    let mut options =
        arca_storage::options::Options::parse(bsl.spec.options().iter().map(String::as_str))
            .map_err(Error::storage("options"))?;
    if let Some(cred) = &bsl.spec.credential {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let secret = secrets
            .get_opt(&cred.name)
            .await
            .map_err(Error::api(format!("cannot read Secret {}", cred.name)))?
            .ok_or_else(|| Error::Refused(format!("credential Secret {} not found", cred.name)))?;
        options.env = secret_strings(&secret);
    }
    Ok(options)
}

/// The location's recovery key and whether the operator generated it. When the location names
/// no Secret and the default one is missing, a random key is generated into it (created
/// exclusively: of two racing reconciles, the loser reads the winner's key). Errors name the
/// Secret, never its content.
pub async fn recovery_key(
    ctx: &Context,
    bsl: &BackupStorageLocation,
) -> Result<(RecoveryKey, bool)> {
    let name = bsl.name_any();
    let key_ref = bsl.spec.recovery_key_ref(&name);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let read = |secret: &Secret| -> Result<(RecoveryKey, bool)> {
        let generated = secret
            .annotations()
            .contains_key(GENERATED_RECOVERY_KEY_ANNOTATION);
        let text = secret_strings(secret).remove(&key_ref.key).ok_or_else(|| {
            Error::Refused(format!(
                "recovery key Secret {} has no key {}",
                key_ref.name, key_ref.key
            ))
        })?;
        let key = RecoveryKey::parse(&text)
            .map_err(|e| Error::Refused(format!("recovery key in Secret {}: {e}", key_ref.name)))?;
        Ok((key, generated))
    };
    if let Some(secret) = secrets
        .get_opt(&key_ref.name)
        .await
        .map_err(Error::api(format!("reading Secret {}", key_ref.name)))?
    {
        return read(&secret);
    }
    if bsl.spec.recovery_key.is_some() {
        return Err(Error::Refused(format!(
            "recovery key Secret {} not found",
            key_ref.name
        )));
    }
    let key = RecoveryKey::generate();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(key_ref.name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some([(STORAGE_LOCATION_LABEL.to_string(), name.clone())].into()),
            annotations: Some(
                [(
                    GENERATED_RECOVERY_KEY_ANNOTATION.to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some(
            [(
                key_ref.key.clone(),
                ByteString(key.expose().as_bytes().to_vec()),
            )]
            .into(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(location = %name, secret = %key_ref.name, "generated a recovery key");
            Ok((key, true))
        }
        Err(kube::Error::Api(e)) if e.code == 409 => read(
            &secrets
                .get(&key_ref.name)
                .await
                .map_err(Error::api(format!("reading Secret {}", key_ref.name)))?,
        ),
        Err(e) => Err(Error::api(format!("creating Secret {}", key_ref.name))(e)),
    }
}

/// The message of a location whose recovery key the operator generated.
pub fn generated_key_message(bsl: &BackupStorageLocation) -> String {
    let name = bsl.name_any();
    format!(
        "the operator generated this location's recovery key in Secret {}: keep a copy outside \
         the cluster (arca cluster location export-recovery-key {name}); without it no backup \
         in this location can be opened once the cluster is lost",
        bsl.spec.recovery_key_ref(&name).name
    )
}

/// Whether the location answers: list the keys of a repository path under its prefix (none
/// need exist). Errors are the storage layer's one-line reasons (access denied, no such
/// bucket, cannot reach).
pub async fn probe(ctx: &Context, bsl: &BackupStorageLocation) -> Result<()> {
    let options = storage_options(ctx, bsl).await?;
    let url = bsl.spec.repository_url("");
    let backend = arca_storage::open_with(&url, &options).map_err(Error::storage(&url))?;
    match backend.list(FileType::Key).await {
        Ok(_) => Ok(()),
        Err(arca_storage::StorageError::NotFound { .. })
        | Err(arca_storage::StorageError::NoRepository(_)) => Ok(()),
        Err(e) => Err(Error::storage(url)(e)),
    }
}

/// What one check found, as recorded in the location's status.
#[derive(Debug)]
pub struct Checked {
    pub phase: LocationPhase,
    /// Why it is unavailable.
    pub problem: Option<String>,
    /// When to check again.
    pub again: Duration,
    /// The recovery key is one the operator generated (it must be kept outside the cluster).
    pub generated_recovery_key: bool,
    /// What backup sync did, when it ran.
    pub synced: Option<Result<sync::Synced>>,
}

/// The location's condition on backup sync.
pub const SYNCED_CONDITION: &str = "BackupsSynced";

/// How often the location is checked: its validation frequency, or its sync period if
/// shorter.
pub fn check_period(bsl: &BackupStorageLocation) -> Duration {
    let validation = bsl
        .spec
        .validation_frequency
        .as_deref()
        .and_then(|f| humantime::parse_duration(f).ok())
        .unwrap_or(DEFAULT_VALIDATION);
    sync::period(bsl).map_or(validation, |p| p.min(validation))
}

/// `None` when a check of `bsl` is due: never checked, its spec changed since, its period
/// passed, or a backup sync waits and its resource repository is ready now. Otherwise how
/// long until the next check.
pub async fn nothing_due(ctx: &Context, bsl: &BackupStorageLocation) -> Option<Duration> {
    let status = bsl.status.as_ref()?;
    let last = status.last_validation_time.as_ref()?;
    if status.observed_generation != bsl.metadata.generation {
        return None;
    }
    let since = jiff::Timestamp::now()
        .duration_since(last.0)
        .as_secs_f64()
        .max(0.0);
    let period = check_period(bsl).as_secs_f64();
    if since >= period {
        return None;
    }
    let sync_waits = sync::period(bsl).is_some() && status.last_synced_time.is_none();
    if sync_waits && status.phase == Some(LocationPhase::Available) {
        let resources =
            crate::repository::name_for(crate::backup::RESOURCES_REPOSITORY, &bsl.name_any());
        let repos: Api<arca_api::BackupRepository> =
            Api::namespaced(ctx.client.clone(), &ctx.namespace);
        if let Ok(Some(r)) = repos.get_opt(&resources).await {
            if crate::repository::readiness(&r) == crate::repository::Readiness::Ready {
                return None;
            }
        }
    }
    Some(Duration::from_secs_f64((period - since).max(1.0)))
}

/// Check one location (its store answers, its recovery key is there) and record the result.
pub async fn reconcile(bsl: &BackupStorageLocation, ctx: &Context) -> Result<Checked> {
    let name = bsl.name_any();
    let recovery = recovery_key(ctx, bsl).await;
    let problem = match (probe(ctx, bsl).await, &recovery) {
        (Err(e), _) => Some(e.to_string()),
        (Ok(()), Err(e)) => Some(e.to_string()),
        (Ok(()), Ok(_)) => None,
    };
    let phase = match problem {
        Some(_) => LocationPhase::Unavailable,
        None => LocationPhase::Available,
    };
    let mut conditions = bsl
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generated = matches!(recovery, Ok((_, true)));
    if generated {
        set_condition(
            &mut conditions,
            RECOVERY_KEY_CONDITION,
            true,
            "GeneratedInCluster",
            &generated_key_message(bsl),
            bsl.metadata.generation,
            now(),
        );
    } else {
        conditions.retain(|c| c.type_ != RECOVERY_KEY_CONDITION);
    }
    let fingerprint = recovery.as_ref().ok().map(|(k, _)| k.fingerprint());
    // Backup sync, when due: the bucket's Backups that the cluster lacks.
    let mut synced = None;
    let mut last_synced = bsl.status.as_ref().and_then(|s| s.last_synced_time.clone());
    let sync_period = sync::period(bsl);
    if let (LocationPhase::Available, Some(period)) = (phase, sync_period) {
        let due = last_synced.as_ref().is_none_or(|t| {
            jiff::Timestamp::now().duration_since(t.0).as_secs_f64() >= period.as_secs_f64()
        });
        if due {
            let result = sync::sync(ctx, bsl).await;
            match &result {
                Ok(s) if s.waiting => {}
                Ok(_) => {
                    last_synced = Some(now());
                    set_condition(
                        &mut conditions,
                        SYNCED_CONDITION,
                        true,
                        "Synced",
                        "the cluster has every Backup the bucket holds",
                        bsl.metadata.generation,
                        now(),
                    );
                }
                Err(e) => set_condition(
                    &mut conditions,
                    SYNCED_CONDITION,
                    false,
                    "SyncFailed",
                    &e.to_string(),
                    bsl.metadata.generation,
                    now(),
                ),
            }
            synced = Some(result);
        }
    }
    let api: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    patch_status(
        &api,
        &name,
        &json!({
            "phase": phase,
            "message": problem,
            "lastValidationTime": now(),
            "observedGeneration": bsl.metadata.generation,
            "lastSyncedTime": last_synced,
            "recoveryKeyFingerprint": fingerprint,
            "conditions": conditions,
        }),
    )
    .await?;
    let again = check_period(bsl);
    Ok(Checked {
        phase,
        problem,
        again,
        generated_recovery_key: generated,
        synced,
    })
}
