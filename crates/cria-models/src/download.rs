//! Resumable, verified downloads of model files.
//!
//! Contract: a file appears under its final name only when its size and sha256 match what is
//! expected (from the catalog, or from the hub's `X-Linked-Etag`/`X-Linked-Size` on the
//! redirect). Until then bytes go to `<name>.part`, with a `<name>.part.json` sidecar recording
//! the URL, the server's ETag and the expected checksum so a later run can resume with
//! `Range` + `If-Range`. A `200` to a resume request restarts the file from zero (never
//! appends); a `206` whose `Content-Range` does not start where the part ends is refused; an
//! error page is never written. Damaged data (checksum mismatch, more bytes than expected, a
//! changed file behind the same URL) deletes the part; an interruption (network, cancel, disk
//! full) keeps it for resuming. One download per file at a time (an OS lock on
//! `<name>.part.lock`). Free space is checked before each file, writes go through
//! [`PartStorage`] so disk-full is testable, and the finished file is fsynced, renamed
//! atomically and its folder fsynced.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::names;
use crate::net::{self, NetworkPolicy};
use crate::{ModelsError, Result};

/// Kept free on the disk beyond the file itself (index writes, logs, the OS).
pub const FREE_SPACE_MARGIN: u64 = 256 * 1024 * 1024;
/// Automatic resume attempts after an interrupted transfer, per file.
const MAX_ATTEMPTS: usize = 3;
/// Progress events at most this often (plus one at the end of each file).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadFile {
    pub url: String,
    /// Name in the destination folder (a plain file name).
    pub file_name: String,
    /// Exact size when known.
    pub size: Option<u64>,
    /// Expected sha256 (hex) when known.
    pub sha256: Option<String>,
}

/// Several files fetched as one job (a model's split parts and its mmproj).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadJob {
    pub files: Vec<DownloadFile>,
}

impl DownloadJob {
    /// Fills unknown sizes and checksums from the hub's file listing (its LFS metadata), matching
    /// each URL's path after `/resolve/<revision>/`. Known values are never overwritten; a listing
    /// that disagrees with a known checksum is reported, since one of them is wrong.
    pub fn fill_from_listing(&mut self, listing: &[net::RemoteFile]) -> Result<()> {
        for file in &mut self.files {
            let Some(repo_path) = resolve_path(&file.url) else {
                continue;
            };
            let Some(remote) = listing.iter().find(|remote| remote.path == repo_path) else {
                continue;
            };
            match (&file.sha256, &remote.sha256) {
                (Some(known), Some(listed)) if !known.eq_ignore_ascii_case(listed) => {
                    return Err(ModelsError::ChecksumMismatch {
                        file: file.file_name.clone(),
                        expected: known.clone(),
                        actual: listed.clone(),
                    });
                }
                (None, Some(listed)) => file.sha256 = Some(listed.clone()),
                _ => {}
            }
            if file.size.is_none() && remote.sha256.is_some() {
                // Only LFS entries carry the real size; plain entries may be pointer files.
                file.size = Some(remote.size);
            }
        }
        Ok(())
    }
}

/// The repository path of a hub resolve URL (`.../resolve/<revision>/<path>`), without query.
fn resolve_path(url: &str) -> Option<String> {
    let without_query = url.split(['?', '#']).next()?;
    let (_, after) = without_query.split_once("/resolve/")?;
    let (_revision, path) = after.split_once('/')?;
    (!path.is_empty()).then(|| path.to_owned())
}

/// A finished, verified file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadedFile {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Progress of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub file_index: usize,
    pub file_count: usize,
    pub file_name: String,
    pub file_bytes: u64,
    pub file_total: Option<u64>,
    pub job_bytes: u64,
    pub job_total: Option<u64>,
    pub bytes_per_second: f64,
    pub eta_seconds: Option<f64>,
}

/// What a job reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum DownloadEvent {
    Started {
        file_name: String,
        resume_from: u64,
    },
    Progress(Progress),
    /// The partial file was discarded and the transfer starts over.
    Restarted {
        file_name: String,
        reason: String,
    },
    Verified {
        file_name: String,
        sha256: String,
    },
}

/// Cancels a running job; clone it to hand to the UI.
#[derive(Debug, Clone)]
pub struct CancelToken {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::channel(false).0),
        }
    }

    pub fn cancel(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.sender.borrow()
    }

    async fn cancelled(&self) {
        let mut receiver = self.sender.subscribe();
        // wait_for returns at once if already cancelled; an error means the sender is gone,
        // which cannot happen while `self` holds it.
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

/// Where part files are written. The real one uses the file system; tests inject failures.
pub trait PartStorage: Send + Sync {
    /// Opens `path` for writing: appending to what is there, or truncated to empty.
    fn open(&self, path: &Path, append: bool) -> std::io::Result<Box<dyn PartWriter>>;
    /// Bytes free for an unprivileged user on the file system holding `dir`.
    fn available_space(&self, dir: &Path) -> std::io::Result<u64>;
}

/// An open part file.
pub trait PartWriter: Send {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Flushes to stable storage.
    fn sync(&mut self) -> std::io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

struct FilePart(std::fs::File);

impl PartWriter for FilePart {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self.0, bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

impl PartStorage for FsStorage {
    fn open(&self, path: &Path, append: bool) -> std::io::Result<Box<dyn PartWriter>> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        Ok(Box::new(FilePart(options.open(path)?)))
    }

    fn available_space(&self, dir: &Path) -> std::io::Result<u64> {
        fs4::available_space(dir)
    }
}

/// What a part file's sidecar remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartState {
    url: String,
    etag: Option<String>,
    size: Option<u64>,
    sha256: Option<String>,
}

/// Downloads jobs under one network policy.
pub struct Downloader {
    client: Client,
    policy: NetworkPolicy,
    storage: Arc<dyn PartStorage>,
    require_checksum: bool,
}

impl Downloader {
    pub fn new(policy: NetworkPolicy) -> Result<Self> {
        Ok(Self {
            client: net::build_client(&policy)?,
            policy,
            storage: Arc::new(FsStorage),
            require_checksum: true,
        })
    }

    /// Replaces the file-system access (tests inject disk-full and free-space figures).
    pub fn with_storage(mut self, storage: Arc<dyn PartStorage>) -> Self {
        self.storage = storage;
        self
    }

    /// Allows saving files for which no sha256 is known anywhere (size still checked). Off by
    /// default: an unverifiable model file is refused.
    pub fn allow_unverified(mut self, allow: bool) -> Self {
        self.require_checksum = !allow;
        self
    }

    /// Fetches every file of `job` into `dir`, in order. Files already complete and verified are
    /// kept. Stops at the first error; earlier files stay verified on disk.
    pub async fn download(
        &self,
        dir: &Path,
        job: &DownloadJob,
        cancel: &CancelToken,
        on_event: &mut (dyn FnMut(DownloadEvent) + Send),
    ) -> Result<Vec<DownloadedFile>> {
        validate_job(job)?;
        std::fs::create_dir_all(dir)
            .map_err(|error| ModelsError::io("creating the download folder", dir, error))?;
        let job_total: Option<u64> = job.files.iter().map(|file| file.size).sum();
        if let Some(total) = job_total {
            let already: u64 = job
                .files
                .iter()
                .map(|file| existing_len(&dir.join(format!("{}.part", file.file_name))))
                .sum();
            self.check_space(dir, total.saturating_sub(already))?;
        }
        let mut meter = Meter::new(job.files.len(), job_total);
        let mut done = Vec::with_capacity(job.files.len());
        for (index, file) in job.files.iter().enumerate() {
            meter.start_file(index, &file.file_name, file.size);
            let downloaded = self
                .download_file(dir, file, cancel, &mut meter, on_event)
                .await?;
            meter.finish_file(downloaded.size);
            done.push(downloaded);
        }
        Ok(done)
    }

    fn check_space(&self, dir: &Path, needed: u64) -> Result<()> {
        let available = self
            .storage
            .available_space(dir)
            .map_err(|error| ModelsError::io("checking free disk space", dir, error))?;
        let needed_with_margin = needed.saturating_add(FREE_SPACE_MARGIN);
        if needed > 0 && available < needed_with_margin {
            return Err(ModelsError::InsufficientSpace {
                dir: dir.to_path_buf(),
                needed: needed_with_margin,
                available,
            });
        }
        Ok(())
    }

    async fn download_file(
        &self,
        dir: &Path,
        file: &DownloadFile,
        cancel: &CancelToken,
        meter: &mut Meter,
        on_event: &mut (dyn FnMut(DownloadEvent) + Send),
    ) -> Result<DownloadedFile> {
        let name = names::file_name(&file.file_name)?;
        let final_path = names::confined_path(dir, name)?;
        let part_path = names::confined_path(dir, &format!("{name}.part"))?;
        let state_path = names::confined_path(dir, &format!("{name}.part.json"))?;
        let expected_sha = file.sha256.as_ref().map(|sha| sha.to_ascii_lowercase());

        if final_path.exists() {
            return verify_existing(&final_path, file.size, expected_sha.as_deref()).await;
        }
        let _lock = PartLock::acquire(dir, name)?;

        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .attempt(
                    file,
                    &final_path,
                    &part_path,
                    &state_path,
                    cancel,
                    meter,
                    on_event,
                )
                .await
            {
                Ok(done) => {
                    on_event(DownloadEvent::Verified {
                        file_name: name.to_owned(),
                        sha256: done.sha256.clone(),
                    });
                    return Ok(done);
                }
                Err(Retry::Restart(reason)) if attempts < MAX_ATTEMPTS => {
                    discard(&part_path, &state_path);
                    on_event(DownloadEvent::Restarted {
                        file_name: name.to_owned(),
                        reason,
                    });
                }
                Err(Retry::Resume(error)) if attempts < MAX_ATTEMPTS && !cancel.is_cancelled() => {
                    tracing::warn!(file = name, %error, "transfer interrupted; resuming");
                    tokio::time::sleep(Duration::from_millis(200 * attempts as u64)).await;
                }
                Err(Retry::Restart(reason)) => {
                    discard(&part_path, &state_path);
                    return Err(ModelsError::Network {
                        url: file.url.clone(),
                        message: reason,
                    });
                }
                Err(Retry::Resume(error) | Retry::Fatal(error)) => return Err(error),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        file: &DownloadFile,
        final_path: &Path,
        part_path: &Path,
        state_path: &Path,
        cancel: &CancelToken,
        meter: &mut Meter,
        on_event: &mut (dyn FnMut(DownloadEvent) + Send),
    ) -> std::result::Result<DownloadedFile, Retry> {
        let name = file.file_name.as_str();
        let expected_sha = file.sha256.as_ref().map(|sha| sha.to_ascii_lowercase());
        let wanted = PartState {
            url: file.url.clone(),
            etag: None,
            size: file.size,
            sha256: expected_sha.clone(),
        };
        // A part is resumable only if its sidecar says it belongs to this very URL and checksum.
        let mut state = read_state(state_path).filter(|state| {
            state.url == wanted.url && state.size == wanted.size && state.sha256 == wanted.sha256
        });
        let mut offset = existing_len(part_path);
        if state.is_none() || offset == 0 {
            discard(part_path, state_path);
            offset = 0;
            state = None;
        }
        if let Some(size) = file.size
            && offset > size
        {
            discard(part_path, state_path);
            offset = 0;
            state = None;
        }

        if cancel.is_cancelled() {
            return Err(Retry::Fatal(ModelsError::Cancelled));
        }
        if let Some(size) = file.size {
            self.check_space(part_path.parent().unwrap_or(Path::new(".")), size - offset)
                .map_err(Retry::Fatal)?;
        }

        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let resume_validator = state.as_ref().and_then(|state| state.etag.clone());
        if offset > 0 {
            let range = HeaderValue::from_str(&format!("bytes={offset}-"))
                .map_err(|_| Retry::Fatal(ModelsError::Cancelled))?;
            headers.insert(reqwest::header::RANGE, range);
            if let Some(etag) = &resume_validator
                && let Ok(value) = HeaderValue::from_str(etag)
            {
                headers.insert(reqwest::header::IF_RANGE, value);
            }
        }
        on_event(DownloadEvent::Started {
            file_name: name.to_owned(),
            resume_from: offset,
        });

        let send = net::send_checked(&self.client, &self.policy, Method::GET, &file.url, &headers);
        let (mut response, linked) = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Retry::Fatal(ModelsError::Cancelled)),
            result = send => result.map_err(classify_send_error)?,
        };
        let url_shown = net::redact(response.url());
        let status = response.status();
        let expected_sha = expected_sha.or(linked.sha256.clone());
        let expected_size = file.size.or(linked.size);
        if expected_sha.is_none() && self.require_checksum {
            return Err(Retry::Fatal(ModelsError::MissingChecksum {
                file: name.to_owned(),
            }));
        }
        net::refuse_encoded(response.headers(), &url_shown).map_err(Retry::Fatal)?;
        let response_etag = strong_etag(response.headers());

        let append = match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                check_content_range(response.headers(), offset, expected_size, &url_shown)
                    .map_err(Retry::Fatal)?;
                if let (Some(before), Some(now)) = (&resume_validator, &response_etag)
                    && before != now
                {
                    return Err(Retry::Restart(format!(
                        "the file on the server changed (ETag {before} became {now})"
                    )));
                }
                true
            }
            StatusCode::OK => {
                if offset > 0 {
                    on_event(DownloadEvent::Restarted {
                        file_name: name.to_owned(),
                        reason: "the server sent the whole file instead of the rest".to_owned(),
                    });
                    meter.rewind(offset);
                    offset = 0;
                }
                false
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                // The part may already be complete (a run killed between the last byte and
                // the rename): verify it; otherwise start over.
                if expected_size == Some(offset) {
                    return self
                        .finish(
                            name,
                            part_path,
                            state_path,
                            final_path,
                            offset,
                            expected_sha,
                        )
                        .await;
                }
                return Err(Retry::Restart("the server refused to resume".to_owned()));
            }
            other => {
                // An error page (403 with HTML, 404, 5xx) is never written anywhere.
                let error = ModelsError::HttpStatus {
                    status: other.as_u16(),
                    url: url_shown,
                };
                return Err(if other.is_server_error() {
                    Retry::Resume(error)
                } else {
                    Retry::Fatal(error)
                });
            }
        };

        let body_length = response.content_length();
        if body_length == Some(0) && offset == 0 {
            discard(part_path, state_path);
            return Err(Retry::Fatal(ModelsError::EmptyBody { url: url_shown }));
        }
        if let (Some(length), Some(size)) = (body_length, expected_size)
            && offset + length != size
        {
            return Err(Retry::Fatal(ModelsError::SizeMismatch {
                file: name.to_owned(),
                expected: size,
                actual: offset + length,
            }));
        }

        // Remember how to resume before writing the first byte.
        let new_state = PartState {
            url: file.url.clone(),
            etag: if append {
                resume_validator.clone()
            } else {
                response_etag.clone()
            },
            size: file.size,
            sha256: file.sha256.as_ref().map(|sha| sha.to_ascii_lowercase()),
        };
        write_state(state_path, &new_state).map_err(Retry::Fatal)?;

        let mut hasher = Sha256::new();
        if append {
            hash_existing(part_path, offset, &mut hasher)
                .await
                .map_err(Retry::Fatal)?;
        }
        let mut writer = self.storage.open(part_path, append).map_err(|error| {
            Retry::Fatal(ModelsError::io(
                "opening the partial file",
                part_path,
                error,
            ))
        })?;

        let mut received = offset;
        meter.set_file_bytes(received);
        loop {
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    let _ = writer.sync();
                    return Err(Retry::Fatal(ModelsError::Cancelled));
                }
                chunk = response.chunk() => chunk,
            };
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => {
                    let _ = writer.sync();
                    return Err(Retry::Resume(net::network_error(response.url(), &error)));
                }
            };
            if let Some(size) = expected_size
                && received + chunk.len() as u64 > size
            {
                drop(writer);
                discard(part_path, state_path);
                return Err(Retry::Fatal(ModelsError::SizeMismatch {
                    file: name.to_owned(),
                    expected: size,
                    actual: received + chunk.len() as u64,
                }));
            }
            if let Err(error) = writer.write_all(&chunk) {
                let _ = writer.sync();
                return Err(Retry::Fatal(ModelsError::io(
                    "writing the partial file",
                    part_path,
                    error,
                )));
            }
            hasher.update(&chunk);
            received += chunk.len() as u64;
            if let Some(progress) = meter.advance(received) {
                on_event(DownloadEvent::Progress(progress));
            }
        }
        writer.sync().map_err(|error| {
            Retry::Fatal(ModelsError::io(
                "flushing the partial file",
                part_path,
                error,
            ))
        })?;
        drop(writer);
        if let Some(progress) = meter.flush(received) {
            on_event(DownloadEvent::Progress(progress));
        }

        if received == 0 {
            discard(part_path, state_path);
            return Err(Retry::Fatal(ModelsError::EmptyBody { url: url_shown }));
        }
        if let Some(size) = expected_size
            && received != size
        {
            // Short: the connection ended early. Keep the part; the next attempt resumes.
            return Err(Retry::Resume(ModelsError::SizeMismatch {
                file: name.to_owned(),
                expected: size,
                actual: received,
            }));
        }
        let actual = hex(&hasher.finalize());
        self.check_and_rename(
            name,
            part_path,
            state_path,
            final_path,
            received,
            expected_sha,
            actual,
        )
    }

    async fn finish(
        &self,
        name: &str,
        part_path: &Path,
        state_path: &Path,
        final_path: &Path,
        size: u64,
        expected_sha: Option<String>,
    ) -> std::result::Result<DownloadedFile, Retry> {
        let mut hasher = Sha256::new();
        hash_existing(part_path, size, &mut hasher)
            .await
            .map_err(Retry::Fatal)?;
        let actual = hex(&hasher.finalize());
        self.check_and_rename(
            name,
            part_path,
            state_path,
            final_path,
            size,
            expected_sha,
            actual,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn check_and_rename(
        &self,
        name: &str,
        part_path: &Path,
        state_path: &Path,
        final_path: &Path,
        size: u64,
        expected_sha: Option<String>,
        actual: String,
    ) -> std::result::Result<DownloadedFile, Retry> {
        match expected_sha {
            Some(expected) if expected != actual => {
                discard(part_path, state_path);
                return Err(Retry::Fatal(ModelsError::ChecksumMismatch {
                    file: name.to_owned(),
                    expected,
                    actual,
                }));
            }
            Some(_) => {}
            None if self.require_checksum => {
                return Err(Retry::Fatal(ModelsError::MissingChecksum {
                    file: name.to_owned(),
                }));
            }
            None => {}
        }
        names::refuse_symlink(final_path).map_err(Retry::Fatal)?;
        std::fs::rename(part_path, final_path).map_err(|error| {
            Retry::Fatal(ModelsError::io(
                "moving the finished download into place",
                final_path,
                error,
            ))
        })?;
        sync_dir(final_path);
        let _ = std::fs::remove_file(state_path);
        Ok(DownloadedFile {
            path: final_path.to_path_buf(),
            size,
            sha256: actual,
        })
    }
}

/// Keeps two downloads (two windows, a double click) from writing the same part file: an OS file
/// lock on `<name>.part.lock`, released and removed when the download ends or is dropped.
struct PartLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl PartLock {
    fn acquire(dir: &Path, name: &str) -> Result<Self> {
        let path = names::confined_path(dir, &format!("{name}.part.lock"))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| ModelsError::io("creating the download lock", &path, error))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { path, _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(ModelsError::AlreadyDownloading {
                file: name.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(error)) => {
                Err(ModelsError::io("locking the download", &path, error))
            }
        }
    }
}

impl Drop for PartLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How an attempt ended, when it did not succeed.
enum Retry {
    /// Interrupted: the part is good so far; try again with a Range request.
    Resume(ModelsError),
    /// The part is useless: delete it and start over.
    Restart(String),
    /// Stop and report.
    Fatal(ModelsError),
}

fn classify_send_error(error: ModelsError) -> Retry {
    match error {
        ModelsError::Network { .. } => Retry::Resume(error),
        other => Retry::Fatal(other),
    }
}

/// Split GGUF parts must come complete: every `-0000k-of-0000N` for k in 1..=N, once.
fn validate_job(job: &DownloadJob) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for file in &job.files {
        names::file_name(&file.file_name)?;
        if !seen.insert(file.file_name.as_str()) {
            return Err(ModelsError::CatalogInvalid(format!(
                "{} appears twice in one download",
                file.file_name
            )));
        }
        if let Some(sha) = &file.sha256
            && !net::is_sha256_hex(sha)
        {
            return Err(ModelsError::CatalogInvalid(format!(
                "{}: {sha:?} is not a sha256",
                file.file_name
            )));
        }
    }
    for file in &job.files {
        if let Some(split) = crate::catalog::SplitName::parse(&file.file_name) {
            for index in 1..=split.count {
                let sibling = split.part_name(index);
                if !seen.contains(sibling.as_str()) {
                    return Err(ModelsError::CatalogInvalid(format!(
                        "{} is part of a split model but {sibling} is missing from the download",
                        file.file_name
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_content_range(
    headers: &HeaderMap,
    offset: u64,
    expected_size: Option<u64>,
    url: &str,
) -> Result<()> {
    let raw = headers
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bad = || ModelsError::BadContentRange {
        url: url.to_owned(),
        got: raw.clone(),
    };
    let spec = raw.strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    let total: Option<u64> = match total.trim() {
        "*" => None,
        value => Some(value.parse().map_err(|_| bad())?),
    };
    if start != offset || end < start {
        return Err(bad());
    }
    if let Some(total) = total {
        if end + 1 != total {
            return Err(bad());
        }
        if expected_size.is_some_and(|size| size != total) {
            return Err(bad());
        }
    }
    Ok(())
}

fn strong_etag(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get(reqwest::header::ETAG)?.to_str().ok()?.trim();
    // Weak validators cannot be used with If-Range.
    if etag.starts_with("W/") || etag.is_empty() {
        None
    } else {
        Some(etag.to_owned())
    }
}

fn existing_len(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => 0,
    }
}

fn discard(part_path: &Path, state_path: &Path) {
    let _ = std::fs::remove_file(part_path);
    let _ = std::fs::remove_file(state_path);
}

fn read_state(path: &Path) -> Option<PartState> {
    if names::refuse_symlink(path).is_err() {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() > 64 * 1024 {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

fn write_state(path: &Path, state: &PartState) -> Result<()> {
    let bytes = serde_json::to_vec(state).map_err(|error| ModelsError::Io {
        context: "encoding the download state".to_owned(),
        source: std::io::Error::other(error),
    })?;
    std::fs::write(path, bytes)
        .map_err(|error| ModelsError::io("saving the download state", path, error))
}

/// Feeds the first `len` bytes of an existing part into `hasher` (off the async threads).
async fn hash_existing(path: &Path, len: u64, hasher: &mut Sha256) -> Result<()> {
    let path = path.to_path_buf();
    let seed = hasher.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Sha256> {
        let mut hasher = seed;
        let file = std::fs::File::open(&path)
            .map_err(|error| ModelsError::io("reading the partial file", &path, error))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file.take(len));
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|error| ModelsError::io("reading the partial file", &path, error))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(hasher)
    })
    .await
    .map_err(|error| ModelsError::Io {
        context: "hashing the partial file".to_owned(),
        source: std::io::Error::other(error),
    })??;
    *hasher = result;
    Ok(())
}

/// An already present final file counts only if it verifies; a different file is never
/// overwritten.
async fn verify_existing(
    path: &Path,
    size: Option<u64>,
    sha256: Option<&str>,
) -> Result<DownloadedFile> {
    names::refuse_symlink(path)?;
    let len = existing_len(path);
    let mut hasher = Sha256::new();
    hash_existing(path, len, &mut hasher).await?;
    let actual = hex(&hasher.finalize());
    let size_ok = size.is_none_or(|size| size == len);
    let sha_ok = sha256.is_none_or(|sha| sha == actual);
    if size_ok && sha_ok {
        return Ok(DownloadedFile {
            path: path.to_path_buf(),
            size: len,
            sha256: actual,
        });
    }
    Err(ModelsError::Io {
        context: format!(
            "{} already exists and is a different file; move it away to download again",
            path.display()
        ),
        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    })
}

/// Makes a rename durable: fsync the folder holding it (Unix; elsewhere a no-op).
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent()
        && let Ok(handle) = std::fs::File::open(dir)
    {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Tracks bytes, rate (smoothed) and ETA across a job.
struct Meter {
    file_index: usize,
    file_count: usize,
    file_name: String,
    file_total: Option<u64>,
    file_bytes: u64,
    finished_bytes: u64,
    job_total: Option<u64>,
    last_emit: Instant,
    last_bytes: u64,
    rate: f64,
}

impl Meter {
    fn new(file_count: usize, job_total: Option<u64>) -> Self {
        Self {
            file_index: 0,
            file_count,
            file_name: String::new(),
            file_total: None,
            file_bytes: 0,
            finished_bytes: 0,
            job_total,
            last_emit: Instant::now(),
            last_bytes: 0,
            rate: 0.0,
        }
    }

    fn start_file(&mut self, index: usize, name: &str, total: Option<u64>) {
        self.file_index = index;
        self.file_name = name.to_owned();
        self.file_total = total;
        self.file_bytes = 0;
        self.last_bytes = 0;
        self.last_emit = Instant::now();
    }

    fn set_file_bytes(&mut self, bytes: u64) {
        self.file_bytes = bytes;
        self.last_bytes = bytes;
        self.last_emit = Instant::now();
    }

    fn rewind(&mut self, _bytes: u64) {
        self.set_file_bytes(0);
    }

    fn finish_file(&mut self, size: u64) {
        self.finished_bytes += size;
        self.file_bytes = 0;
    }

    fn advance(&mut self, bytes: u64) -> Option<Progress> {
        self.file_bytes = bytes;
        let elapsed = self.last_emit.elapsed();
        if elapsed < PROGRESS_INTERVAL {
            return None;
        }
        Some(self.emit(elapsed))
    }

    fn flush(&mut self, bytes: u64) -> Option<Progress> {
        self.file_bytes = bytes;
        let elapsed = self.last_emit.elapsed();
        Some(self.emit(elapsed))
    }

    fn emit(&mut self, elapsed: Duration) -> Progress {
        let seconds = elapsed.as_secs_f64().max(1e-3);
        let instant_rate = self.file_bytes.saturating_sub(self.last_bytes) as f64 / seconds;
        // Exponential smoothing keeps the ETA from jumping with every burst.
        self.rate = if self.rate == 0.0 {
            instant_rate
        } else {
            0.7 * self.rate + 0.3 * instant_rate
        };
        self.last_emit = Instant::now();
        self.last_bytes = self.file_bytes;
        let job_bytes = self.finished_bytes + self.file_bytes;
        let eta_seconds = match self.job_total {
            Some(total) if self.rate > 0.0 => {
                Some(total.saturating_sub(job_bytes) as f64 / self.rate)
            }
            _ => None,
        };
        Progress {
            file_index: self.file_index,
            file_count: self.file_count,
            file_name: self.file_name.clone(),
            file_bytes: self.file_bytes,
            file_total: self.file_total,
            job_bytes,
            job_total: self.job_total,
            bytes_per_second: self.rate,
            eta_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_fills_unknown_checksums_only() {
        let sha_a = "a".repeat(64);
        let sha_b = "b".repeat(64);
        let mut job = DownloadJob {
            files: vec![
                DownloadFile {
                    url: "https://huggingface.co/o/r/resolve/main/UD/m-00001-of-00002.gguf"
                        .to_owned(),
                    file_name: "m-00001-of-00002.gguf".to_owned(),
                    size: None,
                    sha256: None,
                },
                DownloadFile {
                    url: "https://huggingface.co/o/r/resolve/main/UD/m-00002-of-00002.gguf"
                        .to_owned(),
                    file_name: "m-00002-of-00002.gguf".to_owned(),
                    size: Some(7),
                    sha256: Some(sha_b.clone()),
                },
            ],
        };
        let listing = vec![
            net::RemoteFile {
                path: "UD/m-00001-of-00002.gguf".to_owned(),
                size: 42,
                sha256: Some(sha_a.clone()),
            },
            net::RemoteFile {
                path: "UD/m-00002-of-00002.gguf".to_owned(),
                size: 7,
                sha256: Some(sha_b.clone()),
            },
        ];
        job.fill_from_listing(&listing).unwrap();
        assert_eq!(job.files[0].sha256.as_deref(), Some(sha_a.as_str()));
        assert_eq!(job.files[0].size, Some(42));
        assert_eq!(job.files[1].sha256.as_deref(), Some(sha_b.as_str()));

        let conflicting = vec![net::RemoteFile {
            path: "UD/m-00002-of-00002.gguf".to_owned(),
            size: 7,
            sha256: Some(sha_a),
        }];
        assert!(matches!(
            job.fill_from_listing(&conflicting),
            Err(ModelsError::ChecksumMismatch { .. })
        ));
        assert_eq!(
            resolve_path("https://h/o/r/resolve/main/x.gguf?download=true").as_deref(),
            Some("x.gguf")
        );
        assert_eq!(resolve_path("https://h/o/r/blob/main/x.gguf"), None);
    }
}
