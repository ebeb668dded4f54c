//! Starting and stopping what a scenario needs: the desktop under Xvfb with tauri-driver, the `ecrf` binary, a fresh PostgreSQL database, free ports; every process started ends with its guard.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

/// A child process, with every process it started, killed when dropped.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        // Each guarded child leads its own process group (see `spawn_group`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn_group(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .spawn()
        .expect("start a helper process")
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) fn tool(name: &str) -> PathBuf {
    let home_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin").join(name));
    if let Some(p) = home_bin.filter(|p| p.exists()) {
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run `make test` (it installs it)");
}

pub(crate) fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/desktop-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// How many windows (each a WebKit process) run at once: two or more on this machine's two
/// cores made WebDriver sessions time out while starting (the scenarios run one by one).
const WINDOWS_AT_ONCE: usize = 1;

static WINDOWS: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// One of the [`WINDOWS_AT_ONCE`] places, given back when dropped.
struct WindowSlot;

impl WindowSlot {
    fn take() -> WindowSlot {
        let (count, freed) = &WINDOWS;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= WINDOWS_AT_ONCE {
            n = freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        WindowSlot
    }
}

impl Drop for WindowSlot {
    fn drop(&mut self) {
        let (count, freed) = &WINDOWS;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// Xvfb and tauri-driver for one test, with the app's store in a temporary folder.
pub(crate) struct Desktop {
    _xvfb: Guard,
    _driver: Guard,
    pub(crate) port: u16,
    pub(crate) app: PathBuf,
    pub(crate) display: String,
    // Last: given back only after the processes above are stopped.
    _slot: WindowSlot,
}

pub(crate) fn desktop(data: &Path) -> Desktop {
    let slot = WindowSlot::take();
    // The first free display from :90 on: a number in use makes Xvfb exit at once.
    let (display, xvfb) = (90..150)
        .find_map(|n| {
            let display = format!(":{n}");
            let mut child = spawn_group(
                Command::new(tool("Xvfb"))
                    .args([
                        display.as_str(),
                        "-screen",
                        "0",
                        "1280x800x24",
                        "-nolisten",
                        "tcp",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            sleep(Duration::from_millis(700));
            match child.try_wait() {
                Ok(None) => Some((display, child)),
                _ => None,
            }
        })
        .expect("a free X display between :90 and :149");
    let port = free_port();
    let native = free_port();
    let driver = spawn_group(
        Command::new(tool("tauri-driver"))
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", &display)
            .env("ECRF_STORE", data.join("ward.ecrf"))
            .env("ECRF_DEMO_STORE", data.join("demo.ecrf"))
            .env("XDG_DATA_HOME", data.join("xdg"))
            .env("ECRF_NO_OPEN", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    Desktop {
        _xvfb: Guard(xvfb),
        _driver: Guard(driver),
        port,
        app: PathBuf::from(env!("CARGO_BIN_EXE_ecrf-desktop")),
        display,
        _slot: slot,
    }
}

/// The `ecrf` command line built beside this test binary (`cargo test --workspace` builds it).
pub(crate) fn ecrf_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("ecrf"))
        .expect("target folder");
    assert!(
        bin.exists(),
        "{} missing: build the workspace",
        bin.display()
    );
    bin
}

/// A fresh PostgreSQL database: under `DATABASE_URL` (make test starts a throwaway cluster), or
/// a cluster started for this test process by scripts/pg.sh.
pub(crate) fn fresh_database() -> String {
    let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh");
        let out = Command::new("bash")
            .arg(script)
            .args(["serve-while", &std::process::id().to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/pg.sh");
        assert!(out.status.success(), "scripts/pg.sh failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    let name = format!(
        "ecrf_desktop_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let out = Command::new("psql")
        .args([&admin, "-XAtq", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = admin.rsplit_once('/').expect("database URL ends in /name");
    format!("{base}/{name}")
}

/// `ecrf … --database-url` against the server's database; its output.
pub(crate) fn server_admin(db: &str, args: &[&str]) -> String {
    let out = Command::new(ecrf_bin())
        .args(args)
        .args(["--database-url", db])
        .output()
        .expect("ecrf");
    assert!(
        out.status.success(),
        "ecrf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
