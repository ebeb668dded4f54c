//! Files that hold secrets or traces of them: the key slots (`<store>.keys` and its temporary
//! file), backups (and their temporary file), the noted failed logins.
//!
//! Invariants: such a file is created readable and writable by its owner only (0600 on Unix),
//! always as a new file (`create_new`: `O_CREAT | O_EXCL`, which never follows a symbolic link
//! and never opens a file someone placed there), and a leftover temporary file is removed first
//! (removing a link removes the link, never its target). The failed-login file is the one file
//! opened again to append: that open refuses a symbolic link (`O_NOFOLLOW`; on Windows the link
//! is opened as itself and refused). On Windows there is no mode: the files take the ACL of
//! the store's folder (the user's profile by default).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

fn owner_only(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates `path` as a new owner-only file; fails if anything (a file, a link) is there.
pub fn create_new(path: &Path) -> io::Result<File> {
    owner_only(OpenOptions::new().write(true).create_new(true)).open(path)
}

/// Creates the temporary file `path` afresh: a leftover of an interrupted write (or a link
/// someone put in its place) is removed first, then the file is created new, owner-only.
pub fn create_temporary(path: &Path) -> io::Result<File> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    create_new(path)
}

/// Opens `path` to append, creating it owner-only when missing; refuses a symbolic link.
pub fn append(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // Windows has no O_NOFOLLOW: FILE_FLAG_OPEN_REPARSE_POINT opens a symbolic link (or
        // junction) as itself, never its target, and it is refused below.
        o.custom_flags(0x0020_0000);
    }
    let file = owner_only(&mut o).open(path)?;
    #[cfg(windows)]
    if file.metadata()?.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: a symbolic link, refused", path.display()),
        ));
    }
    Ok(file)
}
