//! Linux only: what keeps the app's memory small at idle, each measured with
//! `make bench-desktop` (PSS per process under Xvfb) and written beside it.
//!
//! Tried and left out, for no difference within 1 MB at idle on the login screen or on a list
//! of 600 subjects: WebKitGTK's document-viewer cache model, no back/forward page cache,
//! WebGL, WebAudio and media off, hardware acceleration "never" (the environment below has
//! already turned compositing off), `GDK_GL=disable`, at most two malloc arenas; JavaScriptCore
//! without its JIT (-3 MB, but the login screen came twice as late); mimalloc (no faster
//! subject list, and 160 MB more held at idle after it).

/// Environment the WebKit processes read at their start; set before the webview exists, each
/// overridable from outside. Forms need no GPU: without compositing, with Skia drawing on the
/// CPU and without the DMA-BUF renderer, WebKit's page process holds ~100 MB less (263 -> 169
/// MB RSS under Xvfb).
const WEBKIT_ENV: [(&str, &str); 3] = [
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ("WEBKIT_SKIA_ENABLE_CPU_RENDERING", "1"),
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
];

/// Runs first in `main`, before any other thread exists.
pub fn before_start() {
    for (name, value) in WEBKIT_ENV {
        if std::env::var_os(name).is_none() {
            // SAFETY: called first in `main`: no other thread exists to read the environment.
            unsafe { std::env::set_var(name, value) };
        }
    }
}

/// Gives the allocator's free pages back to the system: glibc keeps them otherwise. Called
/// after the subject list, which reads every value of every subject (880,000 for a site of
/// 600) and frees them once the rows are made: the app process then held 242 MB (PSS) at
/// idle without this, 98 MB with it.
#[cfg(target_env = "gnu")]
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases memory the allocator holds free; safe at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
pub fn trim_heap() {}
