//! Running engine work from code that needs `Send` futures (kube-runtime controllers, for
//! one): rustc cannot yet prove the engine's futures `Send`, because they hold references
//! across awaits inside stream combinators (rust-lang/rust#102211). A blocking-pool thread
//! that blocks on them needs no such proof, and engine work spends its time moving data
//! anyway.

/// Run `work` on a blocking-pool thread, handing it the current runtime to block on (build
/// the engine future inside it: `move |rt| rt.block_on(…)`). Fails only if the work
/// panicked; its own result is passed through.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce(tokio::runtime::Handle) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(rt))
        .await
        .map_err(|e| format!("task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn results_and_panics_come_back() {
        let ok = super::run(|rt| Ok(rt.block_on(async { 6 * 7 }))).await;
        assert_eq!(ok, Ok(42));
        let err = super::run::<u8>(|_| Err("no".into())).await;
        assert_eq!(err, Err("no".into()));
        let panicked = super::run::<u8>(|_| panic!("boom")).await.unwrap_err();
        assert!(panicked.starts_with("task failed"), "{panicked}");
    }
}
