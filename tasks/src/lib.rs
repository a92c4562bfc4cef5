//! One shutdown tree for every service: named, tracked, cancellable tasks.
//!
//! `main` makes the root [`Tasks`]; each service gets a [`Tasks::child`], and everything it
//! spawns goes through [`Tasks::spawn`] (or [`Tasks::spawn_blocking`]) with a name. Cancelling
//! a node cancels its subtree (tokio-util's `CancellationToken`); [`Tasks::shutdown`] cancels,
//! then waits until every task of the subtree has ended (tokio-util's `TaskTracker`), so a
//! test can check that nothing is left running ([`Tasks::running`]). A spawned future is
//! dropped at its next await once its node is cancelled; its handle then yields `None`.
//! [`single_flight`] lets concurrent callers share one piece of work.

pub mod single_flight;

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A node of the task tree: a cancellation token and the tasks spawned under it.
#[derive(Clone, Debug)]
pub struct Tasks {
    name: Arc<str>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// The root of a process's tree.
    pub fn root(name: &str) -> Self {
        Self { name: name.into(), token: CancellationToken::new(), tracker: TaskTracker::new() }
    }

    /// A subtree: cancelled with this node (or on its own), and waited for by this node's
    /// [`shutdown`](Self::shutdown).
    pub fn child(&self, name: &str) -> Self {
        let child = Self {
            name: format!("{}/{name}", self.name).into(),
            token: self.token.child_token(),
            tracker: TaskTracker::new(),
        };
        // The parent waits for the child's tasks through this one task of its own.
        let (token, tracker) = (child.token.clone(), child.tracker.clone());
        self.tracker.spawn(async move {
            token.cancelled().await;
            tracker.close();
            tracker.wait().await;
        });
        child
    }

    /// This node's path in the tree (`shoal/up/shim`), for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Spawns `fut` as a task called `name`, in a span of that name; it is dropped when this
    /// node is cancelled, and the handle then yields `Ok(None)`.
    pub fn spawn<F>(&self, name: &'static str, fut: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let token = self.token.clone();
        let span = task_span(name, &self.name);
        self.tracker.spawn(
            async move {
                tokio::select! {
                    biased;
                    () = token.cancelled() => None,
                    out = fut => Some(out),
                }
            }
            .instrument(span),
        )
    }

    /// Like [`Self::spawn`], but once this node is cancelled `fut` runs on for up to `grace`
    /// before it is dropped: a connection told to stop (it watches [`Self::cancelled`]) finishes
    /// the response in flight.
    pub fn spawn_with_grace<F>(
        &self,
        name: &'static str,
        grace: std::time::Duration,
        fut: F,
    ) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let token = self.token.clone();
        let span = task_span(name, &self.name);
        self.tracker.spawn(
            async move {
                tokio::pin!(fut);
                tokio::select! {
                    biased;
                    () = token.cancelled() => {}
                    out = &mut fut => return Some(out),
                }
                tokio::time::timeout(grace, fut).await.ok()
            }
            .instrument(span),
        )
    }

    /// Runs blocking `f` on tokio's blocking pool as a tracked task called `name`. It cannot be
    /// interrupted: shutdown waits for it to return.
    pub fn spawn_blocking<F, T>(&self, name: &'static str, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let span = task_span(name, &self.name);
        self.tracker.spawn_blocking(move || span.in_scope(f))
    }

    /// Resolves once this node is cancelled: the `shutdown` future a server is handed.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let token = self.token.clone();
        async move { token.cancelled().await }
    }

    /// Resolves `grace` after this node is cancelled: how long a server that was told to stop
    /// waits for requests in flight before it drops them.
    pub fn cancelled_for(&self, grace: std::time::Duration) -> impl Future<Output = ()> + Send + 'static {
        let cancelled = self.cancelled();
        async move {
            cancelled.await;
            tokio::time::sleep(grace).await;
        }
    }

    /// Whether this node has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Cancels this node and its subtree without waiting.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Cancels this subtree and waits until every task in it has ended.
    pub async fn shutdown(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Tasks of this node still running (a child's subtree counts as one until it ends).
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

/// The span a task runs in: `task{task, tree}` when debug spans are on; otherwise the spawner's
/// own span, so the task's logs keep its fields (`digest`, the service) even when the task
/// span itself is filtered out (a disabled span would drop them).
fn task_span(name: &'static str, tree: &str) -> tracing::Span {
    let span = tracing::debug_span!("task", task = name, tree = %tree);
    if span.is_disabled() {
        tracing::Span::current()
    } else {
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_keeps_its_spawners_span_when_task_spans_are_filtered_out() {
        use tracing::Instrument;
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let root = Tasks::root("t");
        let spawned = async {
            root.spawn("probe", async { tracing::Span::current().metadata().map(|m| m.name()) }).await.unwrap()
        }
        .instrument(tracing::info_span!("service"))
        .await;
        assert_eq!(spawned, Some(Some("service")), "the debug `task` span is off, the info span goes on");
    }

    #[tokio::test]
    async fn shutdown_cancels_and_waits_for_the_whole_tree() {
        let root = Tasks::root("t");
        let service = root.child("service");
        let never = service.spawn("never", std::future::pending::<()>());
        let done = service.spawn("done", async { 7 });
        assert_eq!(done.await.unwrap(), Some(7));
        assert!(root.running() >= 1);
        tokio::time::timeout(Duration::from_secs(5), root.shutdown()).await.expect("shutdown ends");
        assert_eq!(never.await.unwrap(), None, "a cancelled task yields None");
        assert_eq!(root.running(), 0);
        assert_eq!(service.running(), 0);
        assert!(service.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_with_grace_finishes_after_cancel_but_not_past_its_grace() {
        let root = Tasks::root("t");
        let cancelled = root.cancelled();
        let finishing = root.spawn_with_grace("finishing", Duration::from_secs(5), async move {
            cancelled.await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            "finished"
        });
        let stuck = root.spawn_with_grace("stuck", Duration::from_secs(5), std::future::pending::<()>());
        root.shutdown().await;
        assert_eq!(finishing.await.unwrap(), Some("finished"));
        assert_eq!(stuck.await.unwrap(), None, "dropped once its grace ran out");
    }

    #[tokio::test]
    async fn a_child_stops_alone_and_the_parent_keeps_running() {
        let root = Tasks::root("t");
        let a = root.child("a");
        let b = root.child("b");
        let b_task = b.spawn("b", std::future::pending::<()>());
        a.spawn("a", std::future::pending::<()>());
        a.shutdown().await;
        assert_eq!(a.running(), 0);
        assert!(!b.is_cancelled());
        assert!(!b_task.is_finished());
        root.shutdown().await;
        assert_eq!(b_task.await.unwrap(), None);
    }

    #[tokio::test]
    async fn blocking_work_is_waited_for() {
        let root = Tasks::root("t");
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = flag.clone();
        root.spawn_blocking("sleep", move || {
            std::thread::sleep(Duration::from_millis(50));
            f.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        root.shutdown().await;
        assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(root.name(), "t");
        assert_eq!(root.child("c").name(), "t/c");
    }
}
