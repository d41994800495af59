//! Where Cria keeps its files. `CRIA_DATA_DIR` overrides everything (tests, portable installs).

use std::path::{Path, PathBuf};

use crate::{CoreError, Result};

/// Overrides the data folder; tests point it at a temporary directory.
pub const DATA_DIR_ENV: &str = "CRIA_DATA_DIR";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPaths {
    data_dir: PathBuf,
    log_dir: PathBuf,
}

impl AppPaths {
    /// The user's platform data folder (e.g. `~/.local/share/cria`), or `CRIA_DATA_DIR`.
    pub fn from_env() -> Result<Self> {
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|dir| !dir.is_empty()) {
            return Ok(Self::in_dir(PathBuf::from(dir)));
        }
        let dirs =
            directories::ProjectDirs::from("app", "Cria", "cria").ok_or(CoreError::NoDataDir)?;
        let data_dir = dirs.data_dir().to_path_buf();
        let log_dir = dirs
            .state_dir()
            .map_or_else(|| data_dir.join("logs"), |state| state.join("logs"));
        Ok(AppPaths { data_dir, log_dir })
    }

    /// Everything under one folder.
    pub fn in_dir(data_dir: PathBuf) -> Self {
        let log_dir = data_dir.join("logs");
        AppPaths { data_dir, log_dir }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    pub fn database_file(&self) -> PathBuf {
        self.data_dir.join("cria.sqlite3")
    }

    /// The model library: its index, and the models downloaded or copied into it.
    pub fn library_dir(&self) -> PathBuf {
        self.data_dir.join("library")
    }

    /// Creates the data and log folders readable by the owner only: conversations are private.
    pub fn create_private_dirs(&self) -> Result<()> {
        for dir in [&self.data_dir, &self.log_dir] {
            create_private_dir(dir).map_err(|error| {
                CoreError::InvalidInput(format!("cannot create {}: {error}", dir.display()))
            })?;
        }
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}
