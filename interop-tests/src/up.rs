//! A `shoal up` process for tests: started from the workspace binary, its stdout and stderr
//! collected line by line, ready once it printed its ready line, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{run_ok, shoal_binary, ChildGuard};

/// One `shoal up` process and everything it printed and logged so far.
pub struct Up {
    child: ChildGuard,
    stdout: Arc<Mutex<String>>,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Appends each line `from` yields to `into` (echoed to the test's output), sending `()` on
/// `ready` at the ready line.
fn collect(
    from: impl std::io::Read + Send + 'static,
    into: &Arc<Mutex<String>>,
    ready: Option<std::sync::mpsc::Sender<()>>,
) -> std::thread::JoinHandle<()> {
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            eprintln!("[shoal up] {line}");
            if line.starts_with("shoal up: ready") {
                if let Some(ready) = &ready {
                    let _ = ready.send(());
                }
            }
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}

impl Up {
    /// Runs `shoal up ARGS` in `dir` (its default data directory lands there) and waits for
    /// its ready line.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = ChildGuard::spawn(
            Command::new(shoal_binary())
                .current_dir(dir)
                .arg("up")
                .args(args)
                .env("RUST_LOG", "info,librqbit=warn,librqbit_core=warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let (stdout, log) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let readers = vec![
            collect(child.0.stdout.take().unwrap(), &stdout, Some(ready_tx)),
            collect(child.0.stderr.take().unwrap(), &log, None),
        ];
        ready_rx.recv_timeout(Duration::from_secs(120)).expect("`shoal up` printed its ready line");
        Self { child, stdout, log, readers }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether its log (stderr) has `needle` yet.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().contains(needle)
    }

    /// SIGTERM, then waits for a clean exit: its data directory is free when this returns.
    /// Returns what it printed (stdout) and logged (stderr).
    pub fn stop(mut self) -> (String, String) {
        run_ok(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "`shoal up` did not stop within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "`shoal up` stopped with {status}");
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let printed = self.stdout.lock().unwrap().clone();
        let logged = self.log.lock().unwrap().clone();
        (printed, logged)
    }
}
