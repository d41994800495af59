//! Owner-only files and folders, and flushing folder entries to disk.
//!
//! Chat history is private: every folder the store creates is 0700 and every file 0600 (on
//! Unix; elsewhere the platform's per-user profile folders already keep others out).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// Creates `path` and any missing parents owner-only; an existing folder is made owner-only.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    set_mode(path, 0o700)
}

/// Creates a new file (failing if it exists) readable and writable by the owner only.
pub(crate) fn create_private_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|source| StoreError::from_io(path, source))
}

/// Creates `path` owner-only if it does not exist yet (SQLite then opens it as it is).
pub(crate) fn ensure_private_file(path: &Path) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|source| StoreError::from_io(path, source))?;
    set_mode(path, 0o600)
}

/// Sets Unix permission bits if the file exists (a no-op elsewhere).
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::from_io(path, source)),
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Flushes a folder so that a rename into it survives a power loss (Unix; elsewhere the
/// rename itself is what the platform offers).
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| StoreError::from_io(path, source))?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The lock file every process holds while it has the database open.
///
/// Each process holds a shared lock for as long as its store lives. At open, a process first
/// tries the exclusive lock: it gets it only when no other process has the database open, and
/// only then may it treat replies left `streaming` as interrupted (nobody can be writing them).
/// It then converts to shared. A process that finds the database in use waits for the shared
/// lock, so it never starts streaming while another process is still recovering.
pub(crate) struct DatabaseLock {
    file: File,
    path: PathBuf,
    /// This process had the database to itself when it opened it.
    alone_at_open: bool,
}

impl DatabaseLock {
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .map_err(|source| StoreError::from_io(path, source))?;
        let alone_at_open = match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => {
                file.lock_shared()
                    .map_err(|source| StoreError::from_io(path, source))?;
                false
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StoreError::from_io(path, source));
            }
        };
        Ok(DatabaseLock {
            file,
            path: path.to_path_buf(),
            alone_at_open,
        })
    }

    pub(crate) fn alone_at_open(&self) -> bool {
        self.alone_at_open
    }

    /// After recovery: let other processes in (exclusive becomes shared).
    pub(crate) fn share(&self) -> Result<()> {
        self.file
            .lock_shared()
            .map_err(|source| StoreError::from_io(&self.path, source))
    }
}
