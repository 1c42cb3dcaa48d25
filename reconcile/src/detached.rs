//! Running engine work from a kube-runtime controller, whose reconcilers must return `Send`
//! futures: rustc cannot yet prove the engine's futures `Send`, because they hold references
//! across awaits inside stream combinators (rust-lang/rust#102211). A blocking-pool thread
//! that blocks on them needs no such proof, and engine work spends its time moving data
//! anyway.

use crate::Error;

/// Run `work` on a blocking-pool thread, handing it the current runtime to block on (build
/// the engine future inside it: `move |rt| rt.block_on(…)`). Its own result is passed
/// through; a panic comes back as [`Error::Task`].
pub async fn run<T, E>(
    work: impl FnOnce(tokio::runtime::Handle) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(rt))
        .await
        .map_err(|e| E::from(Error::Task(e)))?
}

#[cfg(test)]
mod tests {
    use crate::Error;

    /// A controller crate's own error, as the callers of `run` have.
    #[derive(Debug)]
    enum Own {
        Refused,
        Reconcile(Error),
    }

    impl From<Error> for Own {
        fn from(e: Error) -> Own {
            Own::Reconcile(e)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn results_and_panics_come_back() {
        let ok = super::run::<_, Own>(|rt| Ok(rt.block_on(async { 6 * 7 }))).await;
        assert_eq!(ok.unwrap(), 42);
        let err = super::run::<u8, Own>(|_| Err(Own::Refused)).await;
        assert!(matches!(err, Err(Own::Refused)), "{err:?}");
        let panicked = super::run::<u8, Own>(|_| panic!("boom")).await;
        match panicked {
            Err(Own::Reconcile(e @ Error::Task(_))) => {
                assert!(e.to_string().starts_with("task failed"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
}
