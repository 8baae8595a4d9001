//! Where malt keeps its files, and how it writes the private ones.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where this user's files are: the database, the saved logins, MangaDex's id map.
#[derive(Clone, Debug)]
pub struct Files {
    pub data: PathBuf,
}

impl Files {
    /// The files under `$XDG_DATA_HOME/malt` (created, private).
    pub fn locate() -> Result<Files, String> {
        let data = data_dir().map_err(|e| format!("cannot create the data directory: {e}"))?;
        Ok(Files { data })
    }

    /// The list cache and the outbox.
    pub fn database(&self) -> PathBuf {
        self.data.join("malt.db")
    }

    /// A service's saved login.
    pub fn tokens(&self, service: crate::domain::Service) -> PathBuf {
        self.data.join(format!("{}-tokens.json", service.key()))
    }

    /// MangaDex's UUIDs for malt's ids.
    pub fn mangadex_ids(&self) -> PathBuf {
        self.data.join("mangadex-ids.json")
    }
}

/// `$XDG_DATA_HOME/malt`: the database and tokens. Created with mode 0700.
pub fn data_dir() -> io::Result<PathBuf> {
    let dir = dirs::data_dir()
        .ok_or_else(|| {
            io::Error::other("cannot tell where the data directory is: set XDG_DATA_HOME or HOME")
        })?
        .join("malt");
    create_private_dir(&dir)?;
    Ok(dir)
}

/// `$XDG_STATE_HOME/malt`: the log. Falls back to the data directory where there is no state dir.
pub fn state_dir() -> io::Result<PathBuf> {
    match dirs::state_dir() {
        Some(dir) => {
            let dir = dir.join("malt");
            create_private_dir(&dir)?;
            Ok(dir)
        }
        None => data_dir(),
    }
}

/// Creates `dir` (and parents) and makes it private to the user.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Writes `bytes` to `path` so that a reader sees either the old or the new content, never a mix:
/// a private temp file beside it, fsync, rename, fsync of the directory.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("file path has no directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("file path has no name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        set_mode(&tmp, 0o600)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            // Not every filesystem lets a directory be synced; the rename has happened either way.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Moves a damaged file out of the way, keeping it beside the original as
/// `NAME.damaged-YYYYMMDD-HHMMSS`, and returns where it went.
pub fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = jiff::ZonedDateTime::now()
        .strftime("%Y%m%d-%H%M%S")
        .to_string();
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("file path has no name"))?
        .to_string_lossy()
        .into_owned();
    let mut copy = path.with_file_name(format!("{name}.damaged-{stamp}"));
    let mut n = 1;
    while copy.exists() {
        n += 1;
        copy = path.with_file_name(format!("{name}.damaged-{stamp}-{n}"));
    }
    fs::rename(path, &copy)?;
    Ok(copy)
}

/// Sets unix permissions; a no-op elsewhere.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        write_private_atomic(&path, b"one").unwrap();
        write_private_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
