//! The real desktop app in a real window under Xvfb, driven through WebDriver (tauri-driver in
//! front of WebKitWebDriver), as a nurse would use it. Screenshots of each step are kept in
//! `target/desktop-screenshots/`.
//!
//! Needs `Xvfb`, `WebKitWebDriver` (Debian `webkit2gtk-driver`) and `tauri-driver` on PATH or
//! in `~/.cargo/bin`; `make test` installs them.
//!
//! driver.rs is the WebDriver client, harness.rs starts and stops processes, seeds.rs prepares
//! stores, steps.rs holds steps shared by scenarios; one file per scenario.

mod driver;
mod harness;
mod seeds;
mod steps;

mod demo;
mod lab;
mod nurse;
mod oversight;
mod sync;
