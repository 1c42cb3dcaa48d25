//! What the Backup and Restore controllers share: the outcome of a reconcile, ending an
//! operation as Failed with its reason, and the timeout of its pod volume operations.

use crate::Result;
use arca_api::common::{now, OperationPhase};
use arca_reconcile::status::patch_status;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use serde_json::json;
use std::time::Duration;

/// Default time to wait for each pod volume backup or restore.
pub const DEFAULT_VOLUME_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// What a Backup or Restore reconcile did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ignored,
    /// Pod volume operations (or a repository) are not done: look again after this long at
    /// the latest (their watches normally bring it back sooner).
    Waiting(Duration),
    Finished(OperationPhase),
}

/// End operation `name` as Failed, saying why.
pub async fn fail<K>(api: &Api<K>, name: &str, reason: impl std::fmt::Display) -> Result<Outcome>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let status = json!({
        "phase": OperationPhase::Failed,
        "failureReason": reason.to_string(),
        "completionTimestamp": now(),
    });
    patch_status(api, name, &status).await?;
    Ok(Outcome::Finished(OperationPhase::Failed))
}

/// How long each pod volume operation may take (`spec`, a duration such as `4h`, or the
/// default), and whether operations started at `started` have run past it.
pub fn volume_timeout(spec: Option<&str>, started: Option<&Time>) -> (Duration, bool) {
    let timeout = spec
        .and_then(|t| humantime::parse_duration(t).ok())
        .unwrap_or(DEFAULT_VOLUME_TIMEOUT);
    let started = started.map(|t| t.0).unwrap_or_else(jiff::Timestamp::now);
    let timed_out =
        jiff::Timestamp::now().duration_since(started).as_secs_f64() > timeout.as_secs_f64();
    (timeout, timed_out)
}
