//! The `cria` command line, driven as a user would: the real binary (built as
//! `cria-cli-host`, same code), a temporary data folder per test (`CRIA_DATA_DIR`), the
//! scripted engine where a reply is needed, and a loopback HTTP server for downloads.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ingest::fixtures::{self, PageContent};

/// A data folder and the command line pointed at it.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A file of the test's own (outside the data folder).
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write a test file");
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cria-cli-host"));
        command
            .args(args)
            .env("CRIA_DATA_DIR", self.data())
            .env("CRIA_TEST_ENGINE", "scripted")
            .env_remove("CRIA_LOG")
            .env_remove("CRIA_TEST_CATALOG_BASE_URL")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run cria")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "cria {args:?} failed ({:?}): {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{args:?}: {error}: {text}"))
    }

    /// Every conversation as JSON exports, for "nothing changed" checks.
    fn snapshot(&self) -> Vec<String> {
        let listed = self.json(&["conversations", "list", "--json", "--limit", "1000"]);
        listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|conversation| {
                let id = conversation["id"].to_string();
                self.ok(&["conversations", "export", &id, "--format", "json"])
            })
            .collect()
    }
}

/// A failure as the contract wants it: this exit code, one `cria: …` line on stderr.
fn assert_fails_with(output: &Output, code: i32, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(code), "{what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got {stderr:?}");
    assert!(lines[0].starts_with("cria: "), "{what}: {stderr:?}");
    stderr
}

#[test]
fn conversations_round_trip_through_export_and_import() {
    let cli = Cli::new();
    cli.ok(&["ask", "Plan a trip to Jeju"]);
    let listed = cli.json(&["conversations", "list", "--json"]);
    let id = listed[0]["id"].to_string();
    cli.ok(&["ask", "--conversation", &id, "And the second day?"]);

    let shown = cli.json(&["conversations", "show", &id, "--json"]);
    let messages = shown["messages"].as_array().expect("messages");
    let texts: Vec<&str> = messages
        .iter()
        .map(|message| message["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Plan a trip to Jeju",
            "Echo: Plan a trip to Jeju",
            "And the second day?",
            "Echo: And the second day?"
        ]
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["status"], "complete");

    let exported = cli.ok(&["conversations", "export", &id, "--format", "json"]);
    let file = cli.file("export.json", exported.as_bytes());
    let imported = cli.ok(&["import", file.to_str().unwrap()]);
    let new_id = imported.trim();
    assert_ne!(new_id, id);
    let again = cli.ok(&["conversations", "export", new_id, "--format", "json"]);
    assert_eq!(
        again, exported,
        "the imported conversation exports identically"
    );
    let markdown = cli.ok(&["conversations", "export", &id, "--format", "md"]);
    assert_eq!(
        cli.ok(&["conversations", "export", new_id, "--format", "md"]),
        markdown
    );
    assert!(markdown.contains("And the second day?"));

    // --output writes a new file and never overwrites one.
    let target = cli.dir.path().join("trip.md");
    let target_arg = target.to_str().unwrap();
    cli.ok(&[
        "conversations",
        "export",
        &id,
        "--format",
        "md",
        "-o",
        target_arg,
    ]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), markdown);
    let refused = cli.run(&[
        "conversations",
        "export",
        &id,
        "--format",
        "json",
        "-o",
        target_arg,
    ]);
    assert_fails_with(&refused, 1, "export over an existing file");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), markdown);

    // Rename, and delete: refused without --yes when stdin is not a terminal.
    cli.ok(&["conversations", "rename", new_id, "Jeju (copy)"]);
    let refused = cli.run(&["conversations", "delete", new_id]);
    assert_fails_with(&refused, 1, "delete without --yes");
    let titles = cli.ok(&["conversations", "list"]);
    assert!(titles.contains("Jeju (copy)"), "{titles}");
    cli.ok(&["conversations", "delete", new_id, "--yes"]);
    let missing = cli.run(&["conversations", "show", new_id]);
    assert!(
        assert_fails_with(&missing, 1, "show a deleted conversation").contains("does not exist")
    );
    assert_eq!(cli.snapshot().len(), 1);
}

/// Starts `cria ask` with stdout piped and waits until its reply has begun streaming.
fn ask_streaming(cli: &Cli, question: &str) -> (Child, mpsc::Receiver<Vec<u8>>) {
    let mut child = cli
        .command(&["ask", question])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cria ask");
    let mut stdout = child.stdout.take().expect("stdout");
    let (sender, received) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 256];
        while let Ok(read) = stdout.read(&mut buffer) {
            if read == 0 || sender.send(buffer[..read].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut streamed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&streamed).contains("word3 ") {
        let wait = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(wait) {
            Ok(bytes) => streamed.extend(bytes),
            Err(_) => panic!(
                "no reply streamed: {:?}",
                String::from_utf8_lossy(&streamed)
            ),
        }
    }
    (child, received)
}

/// `word1 word2 … word<count>`, a question the scripted engine takes 40 ms a word to echo.
fn words(count: usize) -> String {
    (1..=count)
        .map(|n| format!("word{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn ask_works_while_another_process_writes_to_the_database() {
    let cli = Cli::new();
    // The first process is streaming (and owns the database) when the second starts, as
    // when the app is answering and the CLI is used beside it.
    let (writer, _stdout) = ask_streaming(&cli, &words(30));
    cli.ok(&["ask", "a question from a second process"]);
    let output = writer
        .wait_with_output()
        .expect("wait for the first cria ask");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = cli.json(&["conversations", "list", "--json"]);
    let listed = listed.as_array().expect("conversations");
    assert_eq!(listed.len(), 2);
    for conversation in listed {
        let id = conversation["id"].to_string();
        let shown = cli.json(&["conversations", "show", &id, "--json"]);
        let question = shown["messages"][0]["content"].as_str().unwrap().to_owned();
        assert_eq!(shown["messages"][1]["status"], "complete");
        assert_eq!(shown["messages"][1]["content"], format!("Echo: {question}"));
    }
}

#[test]
fn search_finds_korean_text_with_highlights() {
    let cli = Cli::new();
    // The question comes from stdin, as in `echo … | cria ask`.
    let mut asking = cli
        .command(&["ask"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start cria ask");
    asking
        .stdin
        .take()
        .expect("stdin")
        .write_all("오늘 서울 날씨가 좋네요\n".as_bytes())
        .expect("write the question");
    let asked = asking.wait_with_output().expect("wait for cria ask");
    assert!(asked.status.success());
    assert_eq!(
        String::from_utf8_lossy(&asked.stdout).trim(),
        "Echo: 오늘 서울 날씨가 좋네요"
    );
    cli.ok(&["ask", "Something else entirely"]);
    let hits = cli.json(&["search", "날씨", "--json"]);
    let hits = hits.as_array().expect("hits");
    assert!(!hits.is_empty());
    for hit in hits {
        let snippet = hit["snippet"].as_str().unwrap();
        let range = &hit["highlights"][0];
        let (start, end) = (
            range["start"].as_u64().unwrap() as usize,
            range["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(&snippet[start..end], "날씨", "{hit}");
        assert_eq!(hit["source"]["kind"], "message");
    }
    let limited = cli.json(&["search", "날씨", "--json", "--limit", "1"]);
    assert_eq!(limited.as_array().unwrap().len(), 1);
    // Piped output is plain text: no colour codes.
    let plain = cli.ok(&["search", "날씨"]);
    assert!(plain.contains("오늘 서울 날씨가 좋네요"), "{plain}");
    assert!(!plain.contains('\u{1b}'));
    assert!(
        cli.json(&["search", "없는단어", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn ingest_reports_text_pages_and_scanned_pages() {
    let cli = Cli::new();
    let pdf = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["Alpha page one introduces the topic.", "A second line."]),
        PageContent::Scan,
    ]);
    let path = cli.file("report.pdf", &pdf);
    let report = cli.json(&["ingest", path.to_str().unwrap(), "--json"]);
    assert_eq!(report["type"], "pdf");
    assert_eq!(report["metadata"]["title"], "Generated");
    let pages = report["pages"].as_array().expect("pages");
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["number"], 1);
    assert_eq!(pages[0]["text_layer_usable"], true);
    let text = pages[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Alpha page one introduces the topic."),
        "{text}"
    );
    assert_eq!(pages[0]["chars"], text.chars().count());
    assert!(pages[0]["rendered"].is_null());
    assert_eq!(pages[1]["text_layer_usable"], false);
    assert!(pages[1]["rendered"]["width"].as_u64().unwrap() > 0);
    assert_eq!(report["scanned_pages"], serde_json::json!([2]));
    let chunk = &report["chunks"][0];
    assert_eq!(chunk["page"], 1);
    assert_eq!(chunk["line_start"], 1);
    assert!(chunk["text"].as_str().unwrap().contains("Alpha"));

    let summary = cli.ok(&["ingest", path.to_str().unwrap()]);
    assert!(summary.contains("scanned: 2"), "{summary}");
    // Ingest never creates the data folder: it reads a file and nothing else.
    assert!(!cli.data().exists());
}

#[test]
fn bad_input_is_one_line_exit_1_and_changes_nothing() {
    let cli = Cli::new();
    cli.ok(&["ask", "keep me"]);
    let before = cli.snapshot();
    let library_index = cli.data().join("library").join("library.json");
    let index_before = std::fs::read(&library_index).ok();

    let missing = cli.dir.path().join("missing.pdf");
    let folder = cli.dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let bomb = cli.file(
        "huge.png",
        &fixtures::png_raw(100_000, 100_000, &[], &fixtures::zlib(&[0; 16])),
    );
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let random = cli.file("random.bin", &random);
    // A GGUF header that claims 2^60 tensors.
    let mut hostile = b"GGUF".to_vec();
    hostile.extend_from_slice(&3u32.to_le_bytes());
    hostile.extend_from_slice(&(1u64 << 60).to_le_bytes());
    hostile.extend_from_slice(&0u64.to_le_bytes());
    let hostile = cli.file("hostile.gguf", &hostile);
    let not_json = cli.file("notes.json", b"{ this is not an export");

    let path = |path: &Path| path.to_str().unwrap().to_owned();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("missing file", vec!["ingest".into(), path(&missing)]),
        ("a folder", vec!["ingest".into(), path(&folder)]),
        ("a bomb image", vec!["ingest".into(), path(&bomb)]),
        ("random bytes", vec!["ingest".into(), path(&random)]),
        (
            "hostile GGUF",
            vec!["models".into(), "import".into(), path(&hostile)],
        ),
        (
            "missing GGUF",
            vec!["models".into(), "import".into(), path(&missing)],
        ),
        (
            "hostile GGUF fit",
            vec!["models".into(), "fit".into(), path(&hostile)],
        ),
        ("not an export", vec!["import".into(), path(&not_json)]),
        ("import a folder", vec!["import".into(), path(&folder)]),
        (
            "unknown conversation",
            vec!["conversations".into(), "show".into(), "999".into()],
        ),
        (
            "unknown model",
            vec!["models".into(), "use".into(), "nope".into()],
        ),
        (
            "an unknown option",
            vec!["search".into(), "x".into(), "--bogus".into()],
        ),
        ("no command", vec!["models".into()]),
        (
            "a search limit out of range",
            vec!["search".into(), "x".into(), "--limit".into(), "0".into()],
        ),
    ];
    for (what, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_fails_with(&cli.run(&args), 1, what);
    }

    let unreadable = cli.file("locked.pdf", b"%PDF-1.4");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    // Root reads any file; the check only means something for an ordinary user.
    if std::fs::File::open(&unreadable).is_err() {
        let output = cli.run(&["ingest", unreadable.to_str().unwrap()]);
        assert!(assert_fails_with(&output, 1, "unreadable").contains("ermission denied"));
    } else {
        eprintln!("running as root: the unreadable-file case cannot be checked");
    }

    let help = cli.run(&["models", "pull", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Example: cria models pull"));

    assert_eq!(cli.snapshot(), before, "no conversation changed");
    assert_eq!(
        std::fs::read(&library_index).ok(),
        index_before,
        "the library did not change"
    );
}

#[test]
fn ask_without_a_model_exits_2_with_the_reason() {
    let cli = Cli::new();
    // The real engine (no test double): its worker starts and has no model.
    let output = cli
        .command(&["ask", "hello"])
        .env_remove("CRIA_TEST_ENGINE")
        .output()
        .expect("run cria");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No model is loaded"), "{stderr}");
    let shown = cli.json(&["conversations", "show", "1", "--json"]);
    assert_eq!(shown["messages"][1]["status"], "failed");
    assert_eq!(shown["messages"][0]["content"], "hello");
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_ask_keeps_the_partial_reply_as_cancelled() {
    let cli = Cli::new();
    // The scripted engine streams a word every 40 ms: this reply takes about 3 s.
    let (mut child, _stdout) = ask_streaming(&cli, &words(80));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait for cria") {
            break exit;
        }
        assert!(Instant::now() < deadline, "cria did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(exit.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");

    let shown = cli.json(&["conversations", "show", "1", "--json"]);
    let reply = &shown["messages"][1];
    assert_eq!(reply["status"], "cancelled");
    let partial = reply["content"].as_str().unwrap();
    assert!(partial.starts_with("Echo: word1 word2 word3"), "{partial}");
    assert!(
        !partial.contains("word80"),
        "the reply was cut short: {partial}"
    );
}

/// Serves one catalog file the way the model hub does: the resolve URL redirects to the
/// content and names its sha256 and size; `Range` requests get the rest of the file. With
/// `stall_first`, the first transfer sends half the file and then stalls until the client goes
/// away. Bounded: a few connections, then it stops.
fn serve_model(body: Vec<u8>, sha256: String, stall_first: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut transfers = 0;
        for stream in listener.incoming().take(12) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            if path.contains("/resolve/") {
                let redirect = format!(
                    "HTTP/1.1 302 Found\r\nLocation: /blob\r\nX-Linked-Etag: \"{sha256}\"\r\n\
                     X-Linked-Size: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(redirect.as_bytes());
                continue;
            }
            transfers += 1;
            let from: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("range: bytes="))
                .and_then(|range| range.trim().trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            let mut response = if from > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\n".to_owned()
            };
            response.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() - from
            ));
            let _ = stream.write_all(response.as_bytes());
            if stall_first && transfers == 1 {
                let _ = stream.write_all(&body[..body.len() / 2]);
                let _ = stream.flush();
                // Until the client hangs up (bounded by the read timeout's retries).
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                let stalled = Instant::now();
                while stalled.elapsed() < Duration::from_secs(15) {
                    match stream.read(&mut byte) {
                        Ok(0) => break,
                        Err(error)
                            if !matches!(
                                error.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            break;
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let _ = stream.write_all(&body[from..]);
        }
    });
    port
}

fn fixture_model() -> (Vec<u8>, String) {
    let model = cria_gguf::fixture::llama4_text_model(1)
        .expect("fixture builds")
        .to_bytes();
    let sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(&model)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    (model, sha256)
}

const PULLED_ENTRY: &str = "llama-3-2-1b-instruct-q4-k-m";
const PULLED_FILE: &str = "Llama-3.2-1B-Instruct-Q4_K_M.gguf";

#[test]
fn models_pull_import_use_fit_and_remove() {
    let cli = Cli::new();
    let (model, sha256) = fixture_model();
    let port = serve_model(model.clone(), sha256, false);
    let entry = PULLED_ENTRY;
    let pulled = cli
        .command(&["models", "pull", entry])
        .env(
            "CRIA_TEST_CATALOG_BASE_URL",
            format!("http://localhost:{port}"),
        )
        .output()
        .expect("run cria models pull");
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&pulled.stdout).trim(), entry);
    let file = cli
        .data()
        .join("library/models")
        .join(entry)
        .join(PULLED_FILE);
    assert_eq!(std::fs::read(&file).expect("the pulled file"), model);

    // A second copy of the fixture, imported from where it lies.
    let local = cli.file("tiny-llama4.gguf", &model);
    let imported = cli.ok(&["models", "import", local.to_str().unwrap()]);
    let imported = imported.trim();
    cli.ok(&["models", "use", imported]);
    let listed = cli.json(&["models", "list", "--json"]);
    let listed = listed.as_array().expect("models");
    assert_eq!(listed.len(), 2);
    let active: Vec<&str> = listed
        .iter()
        .filter(|model| model["active"] == true)
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert_eq!(active, [imported]);
    assert!(listed.iter().all(|model| model["verdict"] != ""));

    let fit = cli.json(&["models", "fit", imported, "--json"]);
    assert_eq!(fit["source"]["kind"], "library");
    assert!(fit["plan"]["context"].as_u64().unwrap() > 0, "{fit}");
    let fit = cli.json(&["models", "fit", "llama-4-scout-ud-iq1-s", "--json"]);
    assert_eq!(fit["source"]["kind"], "catalog");
    assert!(!fit["verdict_label"].as_str().unwrap().is_empty());

    cli.ok(&["models", "remove", entry]);
    assert!(!file.exists(), "a pulled model's files go with it");
    cli.ok(&["models", "remove", imported]);
    assert!(local.exists(), "an imported file stays where it was");
    assert!(
        cli.json(&["models", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_a_pull_keeps_a_part_that_the_next_pull_resumes() {
    let cli = Cli::new();
    let (model, sha256) = fixture_model();
    let port = serve_model(model.clone(), sha256, true);
    let base = format!("http://localhost:{port}");
    let folder = cli.data().join("library/models").join(PULLED_ENTRY);
    let part = folder.join(format!("{PULLED_FILE}.part"));
    let child = cli
        .command(&["models", "pull", PULLED_ENTRY])
        .env("CRIA_TEST_CATALOG_BASE_URL", &base)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cria models pull");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&part).map_or(0, |meta| meta.len()) < (model.len() / 2) as u64 {
        assert!(Instant::now() < deadline, "the first half never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    let output = child.wait_with_output().expect("wait for cria");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("partial file is kept"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        (model.len() / 2) as u64
    );
    assert!(
        !folder.join(PULLED_FILE).exists(),
        "nothing under the final name"
    );

    let resumed = cli
        .command(&["models", "pull", PULLED_ENTRY])
        .env("CRIA_TEST_CATALOG_BASE_URL", &base)
        .output()
        .expect("run cria models pull again");
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("resuming at"), "{stderr}");
    assert_eq!(std::fs::read(folder.join(PULLED_FILE)).unwrap(), model);
    assert!(!part.exists());
}

#[test]
fn ask_with_attachments_prints_citations_in_json_and_reads_stdin_as_a_file() {
    let cli = Cli::new();
    let reply = cli.file("reply.txt", b"The reactor restarts in May [p. 2].");
    let pdf = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["Quarterly report", "Revenue grew by 12 percent."]),
        PageContent::Latin(&["Outlook", "The reactor restarts in May."]),
    ]);
    let path = cli.file("report.pdf", &pdf);
    let output = cli
        .command(&[
            "ask",
            "--attach",
            path.to_str().unwrap(),
            "--json",
            "When does the reactor restart?",
        ])
        .env(
            "CRIA_TEST_ENGINE",
            format!("scripted-file:{}", reply.display()),
        )
        .output()
        .expect("run cria");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(answer["status"], "complete");
    assert_eq!(answer["content"], "The reactor restarts in May [p. 2].");
    let citation = &answer["citations"][0];
    assert_eq!(citation["file_name"], "report.pdf");
    assert_eq!(citation["page_number"], 2);
    let (start, end) = (
        citation["span_start"].as_u64().unwrap() as usize,
        citation["span_end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&answer["content"].as_str().unwrap()[start..end], "[p. 2]");

    // `--attach -`: stdin is the file, the question an argument.
    let mut child = cli
        .command(&["ask", "--attach", "-", "--json", "summarise"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cria");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# Notes\nShip on Friday.\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    // The echo engine repeats what the model was shown: stdin went inline as a document.
    let shown = answer["content"].as_str().unwrap();
    assert!(shown.contains("name=\"stdin.txt\""), "{shown}");
    assert!(
        shown.contains("[p. 1]\n# Notes\nShip on Friday."),
        "{shown}"
    );
    assert!(shown.ends_with("summarise"), "{shown}");

    // A file that cannot be read: exit 1, one line, nothing stored.
    let before = cli.snapshot();
    let bomb = cli.file(
        "bomb.png",
        &fixtures::png_raw(100_000, 100_000, &[], &fixtures::zlib(&[0u8; 64])),
    );
    let output = cli.run(&["ask", "--attach", bomb.to_str().unwrap(), "what is this?"]);
    let stderr = assert_fails_with(&output, 1, "a bomb image");
    assert!(stderr.contains("bomb.png"), "{stderr}");
    assert_eq!(cli.snapshot(), before);
}

#[test]
fn chat_keeps_a_conversation_with_attachments_and_starts_a_new_one_on_request() {
    let cli = Cli::new();
    let notes = cli.file("notes.txt", b"Ship on Friday.");
    let script = format!(
        "hello\n/attach {}\nwhat do the notes say?\n/new\nsecond conversation\n",
        notes.display()
    );
    let mut child = cli
        .command(&["chat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cria chat");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Echo: hello"), "{stdout}");
    let listed = cli.json(&["conversations", "list", "--json"]);
    let conversations = listed.as_array().unwrap();
    assert_eq!(conversations.len(), 2, "{listed}");
    // The older conversation has both turns, the second with the attached file.
    let first = conversations
        .iter()
        .find(|c| c["title"] == "hello")
        .expect("the first conversation");
    let id = first["id"].to_string();
    let exported: Value =
        serde_json::from_str(&cli.ok(&["conversations", "export", &id, "--format", "json"]))
            .unwrap();
    let text = exported.to_string();
    assert!(text.contains("what do the notes say?"), "{text}");
    assert!(text.contains("notes.txt"), "{text}");
}
