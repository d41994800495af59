//! Downloads against a hostile loopback HTTP server.
//!
//! The server is a small HTTP/1.1 responder on 127.0.0.1 written here; each test gives it a
//! handler that decides, per request, what to send (error pages, truncated bodies, wrong ranges,
//! redirects, changed files). The invariant checked everywhere: the final path holds nothing or
//! the complete verified file, and `.part` files are either resumable or gone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cria_models::ModelsError;
use cria_models::download::{
    CancelToken, DownloadEvent, DownloadFile, DownloadJob, Downloader, FsStorage, PartStorage,
    PartWriter,
};
use cria_models::net::{self, Credential, NetworkPolicy};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// The loopback server

#[derive(Debug, Clone)]
struct Request {
    path: String,
    host: String,
    headers: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Declare the full length but close after this many body bytes.
    truncate_at: Option<usize>,
    /// Send the body chunked, without Content-Length.
    chunked: bool,
    /// Send this many body bytes, then stall (until the client goes away).
    stall_after: Option<usize>,
}

impl Reply {
    fn ok(body: &[u8]) -> Self {
        Self {
            status: 200,
            body: body.to_vec(),
            ..Self::default()
        }
    }

    fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: body.as_bytes().to_vec(),
            ..Self::default()
        }
    }

    fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            ..Self::default()
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A `206` for `Range: bytes=<start>-` of `body`.
    fn partial(body: &[u8], start: usize) -> Self {
        Self {
            status: 206,
            headers: vec![(
                "Content-Range".into(),
                format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
            )],
            body: body[start..].to_vec(),
            ..Self::default()
        }
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    async fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        tokio::spawn(async move {
            // Bounded: a test never needs more than a few dozen connections.
            for _ in 0..200 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(20), serve(stream, handler, seen))
                            .await;
                });
            }
        });
        Self { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("request log").clone()
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Request>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let request = Request {
        path,
        host: headers.get("host").cloned().unwrap_or_default(),
        headers,
    };
    let count = {
        let mut seen = seen.lock().expect("request log");
        let count = seen
            .iter()
            .filter(|earlier| earlier.path == request.path)
            .count();
        seen.push(request.clone());
        count
    };
    let reply = handler(&request, count);
    let mut response = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.chunked {
        response.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        for chunk in reply.body.chunks(8192) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        return;
    }
    response.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    let _ = stream.write_all(response.as_bytes()).await;
    let send = reply
        .truncate_at
        .or(reply.stall_after)
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    let _ = stream.write_all(&reply.body[..send]).await;
    let _ = stream.flush().await;
    if reply.stall_after.is_some() {
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    let _ = stream.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn file(url: String, name: &str, content: &[u8]) -> DownloadFile {
    DownloadFile {
        url,
        file_name: name.to_owned(),
        size: Some(content.len() as u64),
        sha256: Some(sha(content)),
    }
}

fn downloader() -> Downloader {
    Downloader::new(NetworkPolicy::loopback_for_tests()).expect("HTTP client")
}

async fn run(
    downloader: &Downloader,
    dir: &Path,
    files: Vec<DownloadFile>,
) -> (Result<Vec<PathBuf>, ModelsError>, Vec<DownloadEvent>) {
    let mut events = Vec::new();
    let result = downloader
        .download(
            dir,
            &DownloadJob { files },
            &CancelToken::new(),
            &mut |event| events.push(event),
        )
        .await
        .map(|done| done.into_iter().map(|file| file.path).collect());
    (result, events)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The final file is either absent or exactly `content`.
fn assert_final_is_nothing_or(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    if path.exists() {
        assert_eq!(
            std::fs::read(&path).expect("read the final file"),
            content,
            "{name} holds wrong bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Plain success, several files, split parts

#[tokio::test]
async fn a_job_of_split_parts_and_mmproj_arrives_verified_with_progress() {
    let parts = [body(300_000, 1), body(200_000, 2), body(50_000, 3)];
    let served = parts.clone();
    let server = Server::start(move |request, _| match request.path.as_str() {
        "/m-00001-of-00002.gguf" => Reply::ok(&served[0]).header("ETag", "\"a\""),
        "/m-00002-of-00002.gguf" => Reply::ok(&served[1]),
        "/mmproj.gguf" => Reply::ok(&served[2]),
        _ => Reply::status(404, "<html>no</html>"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        file(
            server.url("/m-00001-of-00002.gguf"),
            "m-00001-of-00002.gguf",
            &parts[0],
        ),
        file(
            server.url("/m-00002-of-00002.gguf"),
            "m-00002-of-00002.gguf",
            &parts[1],
        ),
        file(server.url("/mmproj.gguf"), "mmproj.gguf", &parts[2]),
    ];
    let (result, events) = run(&downloader(), dir.path(), files.clone()).await;
    let paths = result.unwrap();
    assert_eq!(paths.len(), 3);
    for (path, content) in paths.iter().zip(&parts) {
        assert_eq!(&std::fs::read(path).unwrap(), content);
    }
    assert_eq!(
        listing(dir.path()),
        [
            "m-00001-of-00002.gguf",
            "m-00002-of-00002.gguf",
            "mmproj.gguf"
        ]
    );
    let progress: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            DownloadEvent::Progress(progress) => Some(progress.clone()),
            _ => None,
        })
        .collect();
    let last = progress.last().unwrap();
    assert_eq!(last.job_bytes, 550_000);
    assert_eq!(last.job_total, Some(550_000));
    assert!(
        progress
            .windows(2)
            .all(|pair| pair[0].job_bytes <= pair[1].job_bytes)
    );
    assert!(
        progress
            .iter()
            .all(|p| p.bytes_per_second.is_finite() && p.bytes_per_second >= 0.0)
    );
    assert_eq!(
        events
            .iter()
            .filter(|event| matches!(event, DownloadEvent::Verified { .. }))
            .count(),
        3
    );

    // Running the job again re-verifies the files and fetches nothing.
    let before = server.requests().len();
    let (again, _) = run(&downloader(), dir.path(), files.clone()).await;
    assert_eq!(again.unwrap().len(), 3);
    assert_eq!(server.requests().len(), before);

    // An incomplete split set is refused before any request.
    let (partial, _) = run(
        &downloader(),
        tempfile::tempdir().unwrap().path(),
        files[..1].to_vec(),
    )
    .await;
    assert!(
        matches!(partial, Err(ModelsError::CatalogInvalid(_))),
        "{partial:?}"
    );
    assert_eq!(server.requests().len(), before);
}

// ---------------------------------------------------------------------------------------------
// Error pages and broken bodies

#[tokio::test]
async fn an_error_page_is_never_saved() {
    let server =
        Server::start(|_, _| Reply::status(403, "<html><body>Access denied</body></html>")).await;
    let dir = tempfile::tempdir().unwrap();
    let content = body(1000, 1);
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::HttpStatus { status: 403, .. })),
        "{result:?}"
    );
    assert!(
        listing(dir.path())
            .iter()
            .all(|name| !name.ends_with(".gguf") && !name.ends_with(".part"))
    );
}

#[tokio::test]
async fn an_empty_200_is_refused() {
    let server = Server::start(|_, _| Reply::ok(b"")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut wanted = file(server.url("/m.gguf"), "m.gguf", b"x");
    wanted.size = None;
    let (result, _) = run(&downloader(), dir.path(), vec![wanted]).await;
    assert!(
        matches!(result, Err(ModelsError::EmptyBody { .. })),
        "{result:?}"
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[tokio::test]
async fn wrong_bytes_fail_the_checksum_and_are_deleted() {
    let good = body(100_000, 1);
    let evil = body(100_000, 9);
    let server = Server::start(move |_, _| Reply::ok(&evil)).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &good)],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::ChecksumMismatch { .. })),
        "{result:?}"
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[tokio::test]
async fn a_truncated_transfer_resumes_with_range_and_if_range() {
    let content = body(400_000, 4);
    let served = content.clone();
    let server = Server::start(move |request, attempt| {
        if attempt == 0 {
            return Reply {
                truncate_at: Some(150_000),
                ..Reply::ok(&served)
            }
            .header("ETag", "\"v1\"");
        }
        let start: usize = request.headers["range"]
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        Reply::partial(&served, start).header("ETag", "\"v1\"")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), content);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].headers["range"], "bytes=150000-");
    assert_eq!(requests[1].headers["if-range"], "\"v1\"");
    assert_eq!(listing(dir.path()), ["m.gguf"]);
}

#[tokio::test]
async fn a_server_that_always_truncates_leaves_a_resumable_part_only() {
    let content = body(200_000, 5);
    let served = content.clone();
    let server = Server::start(move |request, _| {
        let start = request.headers.get("range").map_or(0, |range| {
            range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap()
        });
        let reply = if start == 0 {
            Reply::ok(&served)
        } else {
            Reply::partial(&served, start)
        };
        Reply {
            truncate_at: Some(10_000),
            ..reply
        }
        .header("ETag", "\"t\"")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    assert!(result.is_err());
    assert!(!dir.path().join("m.gguf").exists());
    let part = std::fs::read(dir.path().join("m.gguf.part")).unwrap();
    assert!(!part.is_empty() && part.len() < content.len());
    assert_eq!(
        part,
        content[..part.len()],
        "the part holds a correct prefix"
    );
}

#[tokio::test]
async fn range_ignored_restarts_from_zero_instead_of_appending() {
    let content = body(300_000, 6);
    let served = content.clone();
    let server = Server::start(move |_, attempt| {
        let reply = Reply::ok(&served).header("ETag", "\"r\"");
        if attempt == 0 {
            Reply {
                truncate_at: Some(100_000),
                ..reply
            }
        } else {
            reply
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, events) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), content);
    assert!(
        server.requests()[1].headers.contains_key("range"),
        "it did try to resume"
    );
    assert!(
        events
            .iter()
            .any(|event| matches!(event, DownloadEvent::Restarted { .. }))
    );
}

#[tokio::test]
async fn a_wrong_content_range_is_refused_and_the_part_kept() {
    let content = body(100_000, 7);
    let served = content.clone();
    let server = Server::start(move |request, attempt| {
        if attempt == 0 {
            return Reply {
                truncate_at: Some(40_000),
                ..Reply::ok(&served)
            }
            .header("ETag", "\"c\"");
        }
        assert!(request.headers.contains_key("range"));
        // Claims to start at 0 although bytes 40000- were asked for.
        let mut reply = Reply::partial(&served, 40_000);
        reply.headers = vec![(
            "Content-Range".into(),
            format!("bytes 0-59999/{}", served.len()),
        )];
        reply.header("ETag", "\"c\"")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::BadContentRange { .. })),
        "{result:?}"
    );
    assert!(!dir.path().join("m.gguf").exists());
    assert_eq!(
        std::fs::read(dir.path().join("m.gguf.part")).unwrap(),
        content[..40_000]
    );
}

#[tokio::test]
async fn a_file_changed_between_attempts_is_never_spliced() {
    let old = body(120_000, 8);
    let new = body(120_000, 18);
    let (served_old, served_new) = (old.clone(), new.clone());
    // The server ignores If-Range and answers 206 from the new file with a new ETag.
    let server = Server::start(move |request, attempt| {
        if attempt == 0 {
            return Reply {
                truncate_at: Some(60_000),
                ..Reply::ok(&served_old)
            }
            .header("ETag", "\"v1\"");
        }
        match request.headers.get("range") {
            Some(_) => Reply::partial(&served_new, 60_000).header("ETag", "\"v2\""),
            None => Reply::ok(&served_new).header("ETag", "\"v2\""),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, events) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &old)],
    )
    .await;
    // The old checksum cannot match the new file: refused, and nothing spliced or kept.
    assert!(
        matches!(result, Err(ModelsError::ChecksumMismatch { .. })),
        "{result:?}"
    );
    assert!(events.iter().any(|event| matches!(event, DownloadEvent::Restarted { reason, .. } if reason.contains("changed"))));
    assert_eq!(server.requests()[1].headers["if-range"], "\"v1\"");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    assert_final_is_nothing_or(dir.path(), "m.gguf", &old);
}

#[tokio::test]
async fn range_not_satisfiable_on_a_complete_part_just_verifies_it() {
    let content = body(50_000, 9);
    let server = Server::start(|_, _| Reply::status(416, "")).await;
    let downloader = downloader();
    // With the exact size known, a 416 on a complete part verifies and finishes it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.gguf.part"), &content).unwrap();
    let state = serde_json::json!({"url": server.url("/m.gguf"), "etag": "\"z\"", "size": content.len(), "sha256": sha(&content)});
    std::fs::write(dir.path().join("m.gguf.part.json"), state.to_string()).unwrap();
    let (result, _) = run(
        &downloader,
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), content);
    assert_eq!(listing(dir.path()), ["m.gguf"]);
}

// ---------------------------------------------------------------------------------------------
// Checksums from the hub's redirect

#[tokio::test]
async fn the_linked_etag_on_a_redirect_supplies_the_checksum() {
    let content = body(80_000, 10);
    let digest = sha(&content);
    let served = content.clone();
    let wrong = "0".repeat(64);
    let server = Server::start(move |request, _| match request.path.as_str() {
        "/resolve/m.gguf" => Reply::redirect("/cdn/m.gguf")
            .header("X-Linked-Etag", &format!("\"{digest}\""))
            .header("X-Linked-Size", &served.len().to_string()),
        "/resolve/bad.gguf" => {
            Reply::redirect("/cdn/m.gguf").header("X-Linked-Etag", &format!("\"{wrong}\""))
        }
        "/resolve/none.gguf" => Reply::redirect("/cdn/m.gguf"),
        _ => Reply::ok(&served),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let unknown = |path: &str, name: &str| DownloadFile {
        url: server.url(path),
        file_name: name.to_owned(),
        size: None,
        sha256: None,
    };
    let (ok, _) = run(
        &downloader(),
        dir.path(),
        vec![unknown("/resolve/m.gguf", "m.gguf")],
    )
    .await;
    ok.unwrap();
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), content);
    let (bad, _) = run(
        &downloader(),
        dir.path(),
        vec![unknown("/resolve/bad.gguf", "bad.gguf")],
    )
    .await;
    assert!(
        matches!(bad, Err(ModelsError::ChecksumMismatch { .. })),
        "{bad:?}"
    );
    let (none, _) = run(
        &downloader(),
        dir.path(),
        vec![unknown("/resolve/none.gguf", "none.gguf")],
    )
    .await;
    assert!(
        matches!(none, Err(ModelsError::MissingChecksum { .. })),
        "{none:?}"
    );
    assert_eq!(listing(dir.path()), ["m.gguf"]);
}

// ---------------------------------------------------------------------------------------------
// Redirect policy

async fn redirect_refused(location: &str) -> (ModelsError, Vec<Request>) {
    let location = location.to_owned();
    let server = Server::start(move |request, _| {
        if request.path == "/start.gguf" {
            Reply::redirect(&location)
        } else {
            Reply::ok(b"secret")
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/start.gguf"), "m.gguf", b"secret")],
    )
    .await;
    assert!(listing(dir.path()).is_empty());
    (
        result.expect_err("the redirect must be refused"),
        server.requests(),
    )
}

#[tokio::test]
async fn redirects_to_internal_or_unsafe_targets_are_refused() {
    for target in [
        "http://127.0.0.1:1/internal",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:1/x",
        "file:///etc/passwd",
        "http://example.com/plain-http",
        "https://evil.example/x.gguf",
        "http://user:pw@localhost:1/x",
        "ftp://localhost/x",
    ] {
        let (error, requests) = redirect_refused(target).await;
        assert!(
            matches!(error, ModelsError::UrlRejected { .. }),
            "{target}: {error:?}"
        );
        assert_eq!(
            requests.len(),
            1,
            "{target}: only the first hop was requested"
        );
    }
    let (error, _) = redirect_refused("http://127.0.0.1:1/internal").await;
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn the_token_goes_only_to_its_own_host() {
    let content = body(10_000, 11);
    let served = content.clone();
    let cdn = Server::start(move |_, _| Reply::ok(&served)).await;
    let cdn_url = format!("http://cdn.localhost:{}/blob", cdn.port);
    let hub = Server::start(move |_, _| Reply::redirect(&cdn_url)).await;
    let mut policy = NetworkPolicy::loopback_for_tests();
    policy.allowed_hosts.push("cdn.localhost".to_owned());
    policy.credential = Some(Credential {
        host: "localhost".to_owned(),
        bearer_token: "hf_secret".to_owned(),
    });
    let downloader = Downloader::new(policy.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader,
        dir.path(),
        vec![file(hub.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    result.unwrap();
    assert_eq!(
        hub.requests()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer hf_secret")
    );
    let at_cdn = cdn.requests();
    assert_eq!(at_cdn.len(), 1);
    assert!(at_cdn[0].host.starts_with("cdn.localhost"));
    assert!(
        !at_cdn[0].headers.contains_key("authorization"),
        "token leaked to another host"
    );

    // A host that is not allow-listed is never contacted at all.
    let evil = Server::start(|_, _| Reply::ok(b"x")).await;
    let evil_url = format!("http://evil.localhost:{}/steal", evil.port);
    let hub = Server::start(move |_, _| Reply::redirect(&evil_url)).await;
    let downloader = Downloader::new(policy).unwrap();
    let (result, _) = run(
        &downloader,
        dir.path(),
        vec![file(hub.url("/n.gguf"), "n.gguf", b"x")],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::UrlRejected { .. })),
        "{result:?}"
    );
    assert!(evil.requests().is_empty());
}

#[tokio::test]
async fn redirect_loops_end() {
    let server = Server::start(|request, _| {
        let next: u32 = request.path.trim_start_matches("/hop").parse().unwrap_or(0) + 1;
        Reply::redirect(&format!("/hop{next}"))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/hop0"), "m.gguf", b"x")],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::TooManyRedirects(..))),
        "{result:?}"
    );
    assert!(server.requests().len() <= net::MAX_REDIRECTS + 1);
}

// ---------------------------------------------------------------------------------------------
// Metadata bodies

#[tokio::test]
async fn metadata_is_capped_and_never_inflated() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &vec![b'['; 64 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024, "the bomb is small on the wire");
    let listing_body = br#"[{"type":"file","oid":"x","size":10,"path":"m.gguf","lfs":{"oid":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","size":42,"pointerSize":130}}]"#.to_vec();
    let server = Server::start(move |request, _| {
        if request.path.contains("/bomb/") {
            Reply::ok(&bomb)
                .header("Content-Encoding", "gzip")
                .header("Content-Type", "application/json")
        } else if request.path.contains("/huge/") {
            Reply {
                chunked: true,
                ..Reply::ok(&vec![b' '; 6 * 1024 * 1024])
            }
        } else if request.path.contains("/long/") {
            Reply::ok(&vec![b' '; 5 * 1024 * 1024])
        } else {
            Reply::ok(&listing_body)
        }
    })
    .await;
    let policy = NetworkPolicy::loopback_for_tests();
    let client = net::build_client(&policy).unwrap();
    let base = server.url("");
    let files = net::list_repository(&client, &policy, &base, "o/r", "main")
        .await
        .unwrap();
    assert_eq!(files[0].size, 42);
    assert_eq!(files[0].sha256.as_deref().unwrap().len(), 64);
    let bomb = net::list_repository(&client, &policy, &base, "bomb/r", "main").await;
    assert!(
        matches!(bomb, Err(ModelsError::UnexpectedEncoding { .. })),
        "{bomb:?}"
    );
    let huge = net::list_repository(&client, &policy, &base, "huge/r", "main").await;
    assert!(
        matches!(huge, Err(ModelsError::BodyTooLarge { .. })),
        "{huge:?}"
    );
    let long = net::list_repository(&client, &policy, &base, "long/r", "main").await;
    assert!(
        matches!(long, Err(ModelsError::BodyTooLarge { .. })),
        "{long:?}"
    );
    // Accept-Encoding: identity was asked for.
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.headers["accept-encoding"] == "identity")
    );
}

#[tokio::test]
async fn a_compressed_model_body_is_refused() {
    let content = body(1000, 12);
    let served = content.clone();
    let server =
        Server::start(move |_, _| Reply::ok(&served).header("Content-Encoding", "gzip")).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::UnexpectedEncoding { .. })),
        "{result:?}"
    );
    assert!(
        listing(dir.path())
            .iter()
            .all(|name| !name.ends_with(".gguf"))
    );
}

// ---------------------------------------------------------------------------------------------
// Disk space and disk full

/// Real files, but writes fail with "no space left" once `budget` bytes were written.
struct FillingDisk {
    budget: Arc<AtomicU64>,
    free: u64,
}

struct FillingWriter {
    inner: Box<dyn PartWriter>,
    budget: Arc<AtomicU64>,
}

impl PartWriter for FillingWriter {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let left = self.budget.load(Ordering::SeqCst);
        if (bytes.len() as u64) > left {
            self.inner.write_all(&bytes[..left as usize])?;
            self.budget.store(0, Ordering::SeqCst);
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        self.budget.fetch_sub(bytes.len() as u64, Ordering::SeqCst);
        self.inner.write_all(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.inner.sync()
    }
}

impl PartStorage for FillingDisk {
    fn open(&self, path: &Path, append: bool) -> std::io::Result<Box<dyn PartWriter>> {
        Ok(Box::new(FillingWriter {
            inner: FsStorage.open(path, append)?,
            budget: self.budget.clone(),
        }))
    }

    fn available_space(&self, _dir: &Path) -> std::io::Result<u64> {
        Ok(self.free)
    }
}

#[tokio::test]
async fn disk_full_mid_download_keeps_a_resumable_part() {
    let content = body(200_000, 13);
    let served = content.clone();
    let server = Server::start(move |request, _| match request.headers.get("range") {
        Some(range) => {
            let start: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            Reply::partial(&served, start).header("ETag", "\"d\"")
        }
        None => Reply::ok(&served).header("ETag", "\"d\""),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let full = downloader().with_storage(Arc::new(FillingDisk {
        budget: Arc::new(AtomicU64::new(70_000)),
        free: u64::MAX,
    }));
    let wanted = file(server.url("/m.gguf"), "m.gguf", &content);
    let (result, _) = run(&full, dir.path(), vec![wanted.clone()]).await;
    assert!(
        matches!(result, Err(ModelsError::DiskFull { .. })),
        "{result:?}"
    );
    assert!(!dir.path().join("m.gguf").exists());
    assert_eq!(
        std::fs::read(dir.path().join("m.gguf.part")).unwrap(),
        content[..70_000]
    );

    // After space was freed, the same job resumes where it stopped.
    let (result, _) = run(&downloader(), dir.path(), vec![wanted]).await;
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), content);
    assert_eq!(
        server.requests().last().unwrap().headers["range"],
        "bytes=70000-"
    );
}

#[tokio::test]
async fn too_little_free_space_is_reported_before_any_request() {
    let server = Server::start(|_, _| Reply::ok(b"x")).await;
    let dir = tempfile::tempdir().unwrap();
    let small = downloader().with_storage(Arc::new(FillingDisk {
        budget: Arc::new(AtomicU64::new(u64::MAX)),
        free: 1_000_000,
    }));
    let mut wanted = file(server.url("/m.gguf"), "m.gguf", b"x");
    wanted.size = Some(50_000_000_000);
    let (result, _) = run(&small, dir.path(), vec![wanted]).await;
    assert!(
        matches!(result, Err(ModelsError::InsufficientSpace { .. })),
        "{result:?}"
    );
    assert!(server.requests().is_empty());
    assert!(listing(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Kill, cancel, resume

#[tokio::test]
async fn a_killed_download_resumes_from_its_part() {
    let content = body(500_000, 14);
    let served = content.clone();
    let server = Server::start(move |request, attempt| {
        if attempt == 0 {
            return Reply {
                stall_after: Some(200_000),
                ..Reply::ok(&served)
            }
            .header("ETag", "\"k\"");
        }
        let start: usize = request.headers["range"]
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        Reply::partial(&served, start).header("ETag", "\"k\"")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let wanted = file(server.url("/m.gguf"), "m.gguf", &content);
    let task = {
        let dir = dir.path().to_path_buf();
        let wanted = wanted.clone();
        tokio::spawn(async move { run(&downloader(), &dir, vec![wanted]).await.0.map(|_| ()) })
    };
    // Wait until the stalled transfer has written its 200000 bytes, then kill the task.
    let part = dir.path().join("m.gguf.part");
    for _ in 0..200 {
        if std::fs::metadata(&part).map(|meta| meta.len()).unwrap_or(0) >= 200_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    task.abort();
    let _ = task.await;
    assert!(!dir.path().join("m.gguf").exists());
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 200_000);

    let (result, _) = run(&downloader(), dir.path(), vec![wanted]).await;
    result.unwrap();
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), content);
    let last = server.requests().last().unwrap().clone();
    assert_eq!(last.headers["range"], "bytes=200000-");
    assert_eq!(listing(dir.path()), ["m.gguf"]);
}

#[tokio::test]
async fn cancel_stops_a_stalled_transfer_promptly() {
    let content = body(300_000, 15);
    let served = content.clone();
    let server = Server::start(move |_, _| {
        Reply {
            stall_after: Some(100_000),
            ..Reply::ok(&served)
        }
        .header("ETag", "\"s\"")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancelToken::new();
    let job = DownloadJob {
        files: vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    };
    let trigger = cancel.clone();
    let part = dir.path().join("m.gguf.part");
    let watcher = tokio::spawn(async move {
        for _ in 0..200 {
            if std::fs::metadata(&part).map(|meta| meta.len()).unwrap_or(0) >= 100_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let result = downloader()
        .download(dir.path(), &job, &cancel, &mut |_| {})
        .await;
    watcher.await.unwrap();
    assert!(matches!(result, Err(ModelsError::Cancelled)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        started.elapsed()
    );
    assert!(!dir.path().join("m.gguf").exists());
    assert_eq!(
        std::fs::metadata(dir.path().join("m.gguf.part"))
            .unwrap()
            .len(),
        100_000
    );
}

// ---------------------------------------------------------------------------------------------
// Names and destinations

#[tokio::test]
async fn hostile_file_names_create_nothing_anywhere() {
    let server = Server::start(|_, _| Reply::ok(b"payload")).await;
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("library");
    std::fs::create_dir(&dir).unwrap();
    for name in [
        "../evil.gguf",
        "/tmp/evil.gguf",
        "..\\evil.gguf",
        "a\0b.gguf",
        "..",
        "",
        ".hidden.gguf",
        "sub/x.gguf",
    ] {
        let (result, _) = run(
            &downloader(),
            &dir,
            vec![file(server.url("/x"), name, b"payload")],
        )
        .await;
        assert!(
            matches!(result, Err(ModelsError::UnsafeName { .. })),
            "{name:?}: {result:?}"
        );
    }
    assert!(server.requests().is_empty());
    assert_eq!(listing(outer.path()), ["library"]);
    assert!(listing(&dir).is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_at_the_destination_is_not_followed() {
    let content = body(1000, 16);
    let served = content.clone();
    let server = Server::start(move |_, _| Reply::ok(&served)).await;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"important").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("m.gguf.part")).unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    assert!(
        matches!(result, Err(ModelsError::UnsafeName { .. })),
        "{result:?}"
    );
    std::fs::remove_file(dir.path().join("m.gguf.part")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("m.gguf")).unwrap();
    let (result, _) = run(
        &downloader(),
        dir.path(),
        vec![file(server.url("/m.gguf"), "m.gguf", &content)],
    )
    .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"important");
}

#[tokio::test]
async fn the_same_file_is_never_downloaded_twice_at_once() {
    let content = body(300_000, 17);
    let served = content.clone();
    let server = Server::start(move |_, _| {
        Reply {
            stall_after: Some(100_000),
            ..Reply::ok(&served)
        }
        .header("ETag", "\"l\"")
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let wanted = file(server.url("/m.gguf"), "m.gguf", &content);
    let cancel = CancelToken::new();
    let first = {
        let dir = dir.path().to_path_buf();
        let wanted = wanted.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            downloader()
                .download(
                    &dir,
                    &DownloadJob {
                        files: vec![wanted],
                    },
                    &cancel,
                    &mut |_| {},
                )
                .await
        })
    };
    let part = dir.path().join("m.gguf.part");
    for _ in 0..200 {
        if std::fs::metadata(&part).map(|meta| meta.len()).unwrap_or(0) >= 100_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (second, _) = run(&downloader(), dir.path(), vec![wanted]).await;
    assert!(
        matches!(second, Err(ModelsError::AlreadyDownloading { .. })),
        "{second:?}"
    );
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        100_000,
        "the second run wrote nothing"
    );
    cancel.cancel();
    assert!(matches!(first.await.unwrap(), Err(ModelsError::Cancelled)));
    assert_eq!(listing(dir.path()), ["m.gguf.part", "m.gguf.part.json"]);
}
