//! Feature tests of the store through its public API.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn temp_store() -> (tempfile::TempDir, Store, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data").join("cria.sqlite3");
    let store = Store::open(&path).expect("open store");
    (dir, store, path)
}

fn user_and_reply(store: &Store, question: &str, answer: &str) -> (Conversation, Message, Message) {
    let conversation = store.create_conversation(question).unwrap();
    let user = store
        .append_message(
            conversation.id,
            None,
            Role::User,
            question,
            MessageStatus::Complete,
        )
        .unwrap();
    let reply = store
        .append_message(
            conversation.id,
            Some(user.id),
            Role::Assistant,
            "",
            MessageStatus::Streaming,
        )
        .unwrap();
    store.append_text(reply.id, answer).unwrap();
    store
        .finalize_message(reply.id, MessageStatus::Complete, None)
        .unwrap();
    let reply = store.get_message(reply.id).unwrap();
    (conversation, user, reply)
}

fn texts(store: &Store, conversation: ConversationId) -> Vec<String> {
    store
        .active_path(conversation)
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect()
}

fn meta(name: &str) -> AttachmentMeta {
    AttachmentMeta {
        original_name: name.into(),
        mime: "application/pdf".into(),
        kind: AttachmentKind::Document,
    }
}

/// Every file and folder under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

// --- Schema --------------------------------------------------------------------------------

#[test]
fn migrations_are_valid() {
    schema::migrations().validate().unwrap();
}

/// The schema a fresh database gets is the committed `schema.sql`. After an intended schema
/// change (a new migration), regenerate it with `CRIA_UPDATE_SCHEMA_SNAPSHOT=1`.
#[test]
fn schema_matches_the_committed_snapshot() {
    let store = Store::open_in_memory().unwrap();
    let dump = store.schema_dump().unwrap();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.sql");
    if std::env::var_os("CRIA_UPDATE_SCHEMA_SNAPSHOT").is_some() {
        std::fs::write(&snapshot, &dump).unwrap();
    }
    let committed = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert_eq!(
        committed, dump,
        "the schema changed; if intended, run with CRIA_UPDATE_SCHEMA_SNAPSHOT=1 and commit schema.sql"
    );
}

#[test]
fn every_previous_schema_upgrades_with_its_data() {
    for version in 1..schema::LATEST_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite3");
        {
            let conn = schema::create_at_version(&path, version).unwrap();
            conn.execute_batch(
                "INSERT INTO conversations (id, title, created_at_ms, updated_at_ms) \
                 VALUES (1, 'old', 1, 1); \
                 INSERT INTO messages (id, conversation_id, role, content, status, created_at_ms) \
                 VALUES (1, 1, 'user', 'the 기호를 ancient question', 'complete', 1), \
                        (2, 1, 'assistant', 'half an ans', 'streaming', 2); \
                 UPDATE messages SET parent_id = 1 WHERE id = 2;",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let messages = store.active_path(ConversationId(1)).unwrap();
        assert_eq!(messages.len(), 2, "from version {version}");
        assert_eq!(messages[1].status, MessageStatus::Interrupted);
        let hits = store.search("기호", 10).unwrap();
        assert_eq!(
            hits.len(),
            1,
            "old messages are indexed when search arrives"
        );
        let hits = store.search("ans", 10).unwrap();
        assert_eq!(hits.len(), 1, "the recovered reply is searchable");
        assert!(store.check_integrity().unwrap().is_ok());
    }
}

#[test]
fn two_processes_upgrading_at_once_both_open_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    {
        let conn = schema::create_at_version(&path, schema::LATEST_VERSION - 1).unwrap();
        conn.execute_batch(
            "INSERT INTO conversations (id, title, created_at_ms, updated_at_ms) \
             VALUES (1, 'old', 1, 1); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO messages (conversation_id, role, content, status, created_at_ms) \
             SELECT 1, 'user', 'row ' || i, 'complete', i FROM n;",
        )
        .unwrap();
    }
    // Separate stores are separate connections, as two processes would have.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let openers: Vec<_> = (0..2)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Store::open(&path).map(|store| store.schema_dump().unwrap())
            })
        })
        .collect();
    let fresh = Store::open_in_memory().unwrap().schema_dump().unwrap();
    for opener in openers {
        let dump = opener.join().unwrap().expect("both opens succeed");
        assert_eq!(dump, fresh);
    }
}

#[test]
fn a_database_from_a_newer_cria_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite3");
    {
        let conn = schema::create_at_version(&path, schema::LATEST_VERSION).unwrap();
        conn.pragma_update(None, "user_version", schema::LATEST_VERSION as i64 + 1)
            .unwrap();
    }
    match Store::open(&path) {
        Err(StoreError::NewerSchema { found, supported }) => {
            assert_eq!(
                (found, supported),
                (schema::LATEST_VERSION + 1, schema::LATEST_VERSION)
            );
        }
        other => panic!("expected NewerSchema, got {:?}", other.map(|_| ())),
    }
}

#[cfg(unix)]
#[test]
fn database_wal_and_blobs_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store, path) = temp_store();
    let (_, user, _) = user_and_reply(&store, "q", "a");
    let attachment = store
        .add_attachment(user.id, &meta("a.pdf"), &b"secret"[..])
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("data/cria.sqlite3-wal")), 0o600);
    assert_eq!(mode(&dir.path().join("data/cria.sqlite3-shm")), 0o600);
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("data/blobs")), 0o700);
    let blob = store.blob_path(&attachment.sha256).unwrap();
    assert_eq!(mode(&blob), 0o600);
    assert_eq!(mode(blob.parent().unwrap()), 0o700);
}

// --- Conversations -------------------------------------------------------------------------

#[test]
fn conversations_are_listed_pinned_first_then_recent_and_paged() {
    let store = Store::open_in_memory().unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store.create_conversation(&format!("c{n}")).unwrap().id);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    store.set_pinned(ids[1], true).unwrap();
    store.set_archived(ids[4], true).unwrap();
    store
        .rename_conversation(ids[0], "  renamed\nfirst  ")
        .unwrap();
    let titles = |listing, limit, offset| -> Vec<String> {
        store
            .list_conversations_in(listing, limit, offset)
            .unwrap()
            .into_iter()
            .map(|c| c.title)
            .collect()
    };
    assert_eq!(
        titles(Listing::Active, 10, 0),
        ["c1", "renamed first", "c3", "c2"]
    );
    assert_eq!(titles(Listing::Active, 2, 2), ["c3", "c2"]);
    assert_eq!(titles(Listing::Archived, 10, 0), ["c4"]);
    assert_eq!(titles(Listing::All, 10, 0).len(), 5);
    store.set_system_prompt(ids[2], Some("be brief")).unwrap();
    store.set_model_profile(ids[2], Some("scout-q4")).unwrap();
    let c2 = store.get_conversation(ids[2]).unwrap();
    assert_eq!(c2.system_prompt.as_deref(), Some("be brief"));
    assert_eq!(c2.model_profile.as_deref(), Some("scout-q4"));
    assert!(matches!(
        store.rename_conversation(ConversationId(999), "x"),
        Err(StoreError::NotFound {
            what: "conversation",
            ..
        })
    ));
}

#[test]
fn deleting_a_conversation_removes_its_messages_from_everywhere() {
    let (_dir, store, _) = temp_store();
    let (conversation, user, _) = user_and_reply(&store, "zebra question", "zebra answer");
    let (other, _, _) = user_and_reply(&store, "keep me", "zebra kept");
    let attachment = store
        .add_attachment(user.id, &meta("z.pdf"), &b"zebra file"[..])
        .unwrap();
    let blob = store.blob_path(&attachment.sha256).unwrap();
    store.delete_conversation(conversation.id).unwrap();
    assert!(matches!(
        store.get_conversation(conversation.id),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_message(user.id),
        Err(StoreError::NotFound { .. })
    ));
    let hits = store.search("zebra", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(matches!(
        &hits[0].source,
        SearchSource::Message { conversation_id, .. } if *conversation_id == other.id
    ));
    assert!(
        !blob.exists(),
        "the unreferenced attachment file is collected"
    );
    assert!(store.check_integrity().unwrap().is_ok());
}

// --- Messages ------------------------------------------------------------------------------

#[test]
fn a_conversation_and_its_messages_survive_reopening() {
    let (_dir, store, path) = temp_store();
    let (conversation, _, reply) = user_and_reply(&store, "hi", "Hello!");
    assert_eq!(reply.status, MessageStatus::Complete);
    assert!(reply.finished_at_ms.is_some());
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.list_conversations(10, 0).unwrap()[0].title, "hi");
    assert_eq!(texts(&store, conversation.id), ["hi", "Hello!"]);
}

#[test]
fn a_reply_left_streaming_is_recovered_as_interrupted() {
    let (_dir, store, path) = temp_store();
    let conversation = store.create_conversation("Crash").unwrap();
    let reply = store
        .append_message(
            conversation.id,
            None,
            Role::Assistant,
            "",
            MessageStatus::Streaming,
        )
        .unwrap();
    store.append_text(reply.id, "partial").unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let message = store.get_message(reply.id).unwrap();
    assert_eq!(message.status, MessageStatus::Interrupted);
    assert_eq!(message.content, "partial");
    assert!(message.error.is_some());
}

#[test]
fn finished_messages_cannot_grow_or_finish_twice() {
    let store = Store::open_in_memory().unwrap();
    let (_, user, reply) = user_and_reply(&store, "q", "a");
    assert!(matches!(
        store.append_text(user.id, "more"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.finalize_message(reply.id, MessageStatus::Failed, Some("x")),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get_message(reply.id).unwrap().status,
        MessageStatus::Complete
    );
}

#[test]
fn edit_and_regenerate_add_siblings_and_switching_shows_any_branch() {
    let store = Store::open_in_memory().unwrap();
    let (conversation, user, reply) = user_and_reply(&store, "What is 2+2?", "5");
    let again = store.regenerate_message(reply.id).unwrap();
    assert_eq!(again.status, MessageStatus::Streaming);
    let mut stream = store.stream_reply(again.id, StreamPolicy::default());
    stream.push("4").unwrap();
    let stats = GenerationStats {
        model_id: Some("llama-4-scout".into()),
        prompt_tokens: Some(12),
        completion_tokens: Some(1),
        ttft_ms: Some(80),
        tokens_per_second: Some(42.5),
        route: Some("fast".into()),
        reused_tokens: Some(8),
        route_reason: Some("plain text goes to the fast model".into()),
        finish_reason: Some("length".into()),
    };
    let finished = stream
        .finish(MessageStatus::Complete, None, &stats)
        .unwrap();
    assert_eq!(finished.stats, stats);
    assert_eq!(texts(&store, conversation.id), ["What is 2+2?", "4"]);

    let entries = store.active_path_entries(conversation.id).unwrap();
    assert_eq!((entries[1].sibling_index, entries[1].sibling_count), (1, 2));
    let siblings = store.siblings(again.id).unwrap();
    assert_eq!(siblings.ids, [reply.id, again.id]);
    assert_eq!(siblings.index, 1);

    store.switch_branch(reply.id).unwrap();
    assert_eq!(texts(&store, conversation.id), ["What is 2+2?", "5"]);

    // Editing the first message adds a second root; its branch starts empty.
    let edited = store.edit_message(user.id, "What is 3+3?").unwrap();
    assert_eq!(edited.parent_id, None);
    assert_eq!(texts(&store, conversation.id), ["What is 3+3?"]);
    let reply2 = store
        .append_message(
            conversation.id,
            Some(edited.id),
            Role::Assistant,
            "6",
            MessageStatus::Complete,
        )
        .unwrap();
    assert_eq!(texts(&store, conversation.id), ["What is 3+3?", "6"]);
    // Switching to a reply deep in the old branch brings back its whole path.
    store.switch_branch(again.id).unwrap();
    assert_eq!(texts(&store, conversation.id), ["What is 2+2?", "4"]);
    store.switch_branch(reply2.id).unwrap();
    assert_eq!(texts(&store, conversation.id), ["What is 3+3?", "6"]);
    assert_eq!(store.all_messages(conversation.id).unwrap().len(), 5);

    assert!(matches!(
        store.regenerate_message(user.id),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.switch_branch(MessageId(999)),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn editing_keeps_the_attachments() {
    let (_dir, store, _) = temp_store();
    let (_, user, _) = user_and_reply(&store, "see file", "ok");
    store
        .add_attachment(user.id, &meta("a.pdf"), &b"pdf"[..])
        .unwrap();
    let edited = store.edit_message(user.id, "see this file").unwrap();
    let copied = store.attachments(edited.id).unwrap();
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0].original_name, "a.pdf");
}

#[test]
fn messages_cannot_hang_under_another_conversations_message() {
    let store = Store::open_in_memory().unwrap();
    let (_, user, _) = user_and_reply(&store, "q", "a");
    let other = store.create_conversation("other").unwrap();
    assert!(matches!(
        store.append_message(
            other.id,
            Some(user.id),
            Role::User,
            "x",
            MessageStatus::Complete
        ),
        Err(StoreError::InvalidInput(_))
    ));
}

#[test]
fn a_reply_stream_commits_in_batches() {
    let (_dir, store, path) = temp_store();
    let conversation = store.create_conversation("s").unwrap();
    let reply = store
        .append_message(
            conversation.id,
            None,
            Role::Assistant,
            "",
            MessageStatus::Streaming,
        )
        .unwrap();
    let policy = StreamPolicy {
        max_pieces: 4,
        max_interval: std::time::Duration::from_secs(3600),
        max_bytes: 1 << 20,
    };
    let mut stream = store.stream_reply(reply.id, policy);
    let mut commits = 0;
    for n in 0..10 {
        if stream.push(&format!("t{n} ")).unwrap() {
            commits += 1;
        }
    }
    assert_eq!(commits, 2);
    // What another process sees is exactly the committed batches, and it does not take the
    // reply for a dead one: this process owns the database.
    let other = Store::open(&path).unwrap();
    assert!(!other.owns_database());
    let seen = other.get_message(reply.id).unwrap();
    assert_eq!(seen.content, "t0 t1 t2 t3 t4 t5 t6 t7 ");
    assert_eq!(seen.status, MessageStatus::Streaming);
    drop(other);
    assert_eq!(stream.committed_bytes(), 24);
    let done = stream
        .finish(MessageStatus::Cancelled, None, &GenerationStats::default())
        .unwrap();
    assert_eq!(done.content, "t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 ");
    assert_eq!(done.status, MessageStatus::Cancelled);
}

// --- Search --------------------------------------------------------------------------------

#[test]
fn search_ranks_and_highlights_matches() {
    let store = Store::open_in_memory().unwrap();
    user_and_reply(
        &store,
        "Tell me about the llama",
        "The llama is a camelid. A llama hums.",
    );
    user_and_reply(&store, "Other", "Alpacas are smaller than a llama.");
    user_and_reply(&store, "Nothing", "Unrelated text.");
    let hits = store.search("LLAMA", 10).unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.windows(2).all(|w| w[0].rank <= w[1].rank));
    for hit in &hits {
        assert!(!hit.highlights.is_empty());
        for range in &hit.highlights {
            assert_eq!(hit.snippet[range.clone()].to_lowercase(), "llama");
        }
    }
    assert!(
        store.search("camelid hums", 10).unwrap().len() == 1,
        "all words must match"
    );
    assert!(
        store.search("\"unbalanced OR NEAR(", 10).is_ok(),
        "no FTS syntax errors"
    );
    assert!(store.search("   ", 10).unwrap().is_empty());
}

#[test]
fn a_very_common_word_is_ranked_among_its_newest_matches() {
    let store = Store::open_in_memory().unwrap();
    let conversation = store.create_conversation("many").unwrap();
    let total = RANKED_MATCHES as i64 + 300;
    store
        .with_tx(|tx| {
            // The oldest message is the best match of all; the rest mention the word once.
            tx.execute(
                "INSERT INTO messages (id, conversation_id, role, content, status, created_at_ms) \
                 VALUES (1, ?1, 'user', 'needle needle needle', 'complete', 1)",
                [conversation.id.0],
            )?;
            tx.execute(
                "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
                 INSERT INTO messages (id, conversation_id, role, content, status, created_at_ms) \
                 SELECT i, ?1, 'user', 'a needle in ' || i || ' bales of hay and more hay', \
                        'complete', i FROM n",
                (conversation.id.0, total),
            )?;
            Ok(())
        })
        .unwrap();
    let hits = store.search_messages("needle", 50).unwrap();
    assert_eq!(hits.len(), 50);
    assert!(hits.windows(2).all(|w| w[0].rank <= w[1].rank));
    let oldest_ranked = total - i64::from(RANKED_MATCHES) + 1;
    for hit in &hits {
        let SearchSource::Message { message_id, .. } = hit.source else {
            panic!("a message hit")
        };
        assert!(
            message_id.0 >= oldest_ranked,
            "{message_id:?} is older than the ranked window"
        );
    }
    // Narrower queries have fewer matches than the window and reach the whole history.
    let hits = store.search_messages("needle 7", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].snippet.contains("needle in 7 bales"));
}

#[test]
fn korean_chinese_and_japanese_are_found_without_spaces() {
    let store = Store::open_in_memory().unwrap();
    user_and_reply(&store, "질문", "이 기호를 사용하세요. 회의는 내일입니다.");
    user_and_reply(&store, "中文", "我们在北京大学学习。");
    user_and_reply(&store, "日本語", "東京都に住んでいます。");
    for (query, expected) in [
        ("기호", "기호를"),
        ("회의", "회의는"),
        ("사용", "사용하세요"),
        ("北京", "北京"),
        ("大学", "大学"),
        ("東京", "東京"),
        ("기", "기호를"),
    ] {
        let hits = store.search(query, 10).unwrap();
        assert_eq!(hits.len(), 1, "query {query}");
        let highlighted: Vec<&str> = hits[0]
            .highlights
            .iter()
            .map(|r| &hits[0].snippet[r.clone()])
            .collect();
        assert!(
            highlighted.contains(&query),
            "query {query}: {highlighted:?}"
        );
        assert!(hits[0].snippet.contains(expected));
    }
    assert!(
        store.search("기호가", 10).unwrap().is_empty(),
        "a different particle is another word"
    );
}

#[test]
fn streaming_replies_become_searchable_when_they_end() {
    let store = Store::open_in_memory().unwrap();
    let conversation = store.create_conversation("s").unwrap();
    let reply = store
        .append_message(
            conversation.id,
            None,
            Role::Assistant,
            "",
            MessageStatus::Streaming,
        )
        .unwrap();
    store.append_text(reply.id, "quokka").unwrap();
    assert!(store.search("quokka", 10).unwrap().is_empty());
    store
        .finalize_message(reply.id, MessageStatus::Failed, Some("boom"))
        .unwrap();
    assert_eq!(store.search("quokka", 10).unwrap().len(), 1);
}

#[test]
fn document_chunks_are_searchable_with_provenance() {
    let (_dir, store, _) = temp_store();
    let (_, user, _) = user_and_reply(&store, "read", "ok");
    let report = store
        .add_attachment(user.id, &meta("report.pdf"), &b"%PDF report"[..])
        .unwrap();
    let other = store
        .add_attachment(user.id, &meta("other.pdf"), &b"%PDF other"[..])
        .unwrap();
    let pages = vec![
        DocumentPage {
            page_number: 1,
            text: "Intro".into(),
            text_layer_usable: true,
        },
        DocumentPage {
            page_number: 2,
            text: String::new(),
            text_layer_usable: false,
        },
    ];
    let chunks = vec![
        NewChunk {
            page_number: 1,
            line_start: 1,
            line_end: 3,
            text: "Revenue grew in 서울특별시.".into(),
        },
        NewChunk {
            page_number: 2,
            line_start: 4,
            line_end: 9,
            text: "Costs fell.".into(),
        },
    ];
    store.put_document(&report.sha256, &pages, &chunks).unwrap();
    store
        .put_document(
            &other.sha256,
            &[],
            &[NewChunk {
                page_number: 1,
                line_start: 1,
                line_end: 1,
                text: "Revenue too".into(),
            }],
        )
        .unwrap();
    assert_eq!(store.document_pages(&report.sha256).unwrap(), pages);
    assert_eq!(store.document_chunks(&report.sha256).unwrap().len(), 2);

    let hits = store
        .search_chunks("서울", Some(std::slice::from_ref(&report.sha256)), 10)
        .unwrap();
    assert_eq!(hits.len(), 1);
    match &hits[0].source {
        SearchSource::Chunk {
            page_number,
            line_start,
            line_end,
            sha256,
            attached,
            ..
        } => {
            assert_eq!((*page_number, *line_start, *line_end), (1, 1, 3));
            assert_eq!(sha256, &report.sha256);
            // A hit opens the conversation the document was attached in.
            let home = attached
                .as_ref()
                .expect("the document is attached to a message");
            assert_eq!(home.message_id, user.id);
            assert_eq!(home.conversation_id, user.conversation_id);
            assert_eq!(home.file_name, "report.pdf");
        }
        other => panic!("expected a chunk, got {other:?}"),
    }
    assert_eq!(store.search_chunks("revenue", None, 10).unwrap().len(), 2);
    assert_eq!(
        store
            .search_chunks("revenue", Some(std::slice::from_ref(&other.sha256)), 10)
            .unwrap()
            .len(),
        1
    );
    // Replacing a document replaces its index entries.
    store
        .put_document(&report.sha256, &pages, &chunks[1..])
        .unwrap();
    assert!(store.search_chunks("서울", None, 10).unwrap().is_empty());
    assert!(matches!(
        store.put_document(&"0".repeat(64), &pages, &chunks),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.put_document(
            &report.sha256,
            &[],
            &[NewChunk {
                page_number: 0,
                line_start: 1,
                line_end: 1,
                text: "x".into()
            }]
        ),
        Err(StoreError::InvalidInput(_))
    ));
}

// --- Attachments ---------------------------------------------------------------------------

#[test]
fn identical_attachments_are_stored_once_and_collected_when_unused() {
    let (dir, store, _) = temp_store();
    let (conversation, user, reply) = user_and_reply(&store, "q", "a");
    let bytes = vec![7u8; 300_000];
    let first = store
        .add_attachment(user.id, &meta("../../etc/a.bin"), bytes.as_slice())
        .unwrap();
    let second = store
        .add_attachment(reply.id, &meta("b.bin"), bytes.as_slice())
        .unwrap();
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.original_name, "a.bin");
    assert_eq!(first.size, 300_000);
    let path = store.blob_path(&first.sha256).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let thumb = store.set_thumbnail(first.id, &b"png"[..]).unwrap();
    assert_eq!(
        store
            .get_attachment(first.id)
            .unwrap()
            .thumbnail_sha256
            .as_deref(),
        Some(thumb.sha256.as_str())
    );

    // Nothing is collected while referenced; a stray file (crash after rename) is.
    let stray = dir.path().join("data/blobs/ab").join("ab".repeat(32));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left by a crash").unwrap();
    let report = store.collect_garbage().unwrap();
    assert_eq!((report.blobs_removed, report.stray_files_removed), (0, 1));
    assert!(path.exists() && !stray.exists());

    store.delete_conversation(conversation.id).unwrap();
    assert!(!path.exists());
    assert!(matches!(
        store.blob_path(&thumb.sha256),
        Err(StoreError::BlobMissing { .. })
    ));
    assert!(matches!(
        store.blob_path("../../etc/passwd"),
        Err(StoreError::InvalidInput(_))
    ));
    let leftovers: Vec<_> = tree(&dir.path().join("data/blobs"))
        .into_iter()
        .filter(|p| p.components().count() > 1)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_in_memory_store_keeps_no_files() {
    let store = Store::open_in_memory().unwrap();
    let (_, user, _) = user_and_reply(&store, "q", "a");
    assert!(matches!(
        store.add_attachment(user.id, &meta("a"), &b"x"[..]),
        Err(StoreError::NoBlobFolder)
    ));
}

// --- Disk full -----------------------------------------------------------------------------

#[test]
fn a_full_disk_is_a_typed_error_and_the_database_stays_usable() {
    let (_dir, store, _) = temp_store();
    let (conversation, _, _) = user_and_reply(&store, "q", "a");
    let reply = store
        .append_message(
            conversation.id,
            None,
            Role::Assistant,
            "",
            MessageStatus::Streaming,
        )
        .unwrap();
    // SQLite reports SQLITE_FULL at max_page_count exactly as it does on a full disk.
    let pages: i64 = store
        .with_tx(|tx| Ok(tx.query_row("PRAGMA page_count", [], |r| r.get(0))?))
        .unwrap();
    store
        .with_tx(|tx| Ok(tx.pragma_update(None, "max_page_count", pages + 2)?))
        .unwrap();
    let chunk = "x".repeat(4096);
    let mut full = None;
    for _ in 0..100 {
        if let Err(error) = store.append_text(reply.id, &chunk) {
            full = Some(error);
            break;
        }
    }
    let error = full.expect("the store must fill up");
    assert!(matches!(error, StoreError::DiskFull), "{error:?}");
    assert!(error.to_string().contains("free some disk space"));
    assert!(store.check_integrity().unwrap().is_ok());
    let before = store.get_message(reply.id).unwrap().content.len();
    assert_eq!(before % 4096, 0, "only whole batches were committed");
    // Space comes back: everything works again.
    store
        .with_tx(|tx| Ok(tx.pragma_update(None, "max_page_count", 1 << 30)?))
        .unwrap();
    store.append_text(reply.id, "after").unwrap();
    store
        .finalize_message(reply.id, MessageStatus::Complete, None)
        .unwrap();
    assert!(
        store
            .get_message(reply.id)
            .unwrap()
            .content
            .ends_with("after")
    );
}

/// Fails with "no space left on device" after `budget` bytes, as a full disk does.
struct FullDisk<'f> {
    file: &'f mut std::fs::File,
    budget: usize,
}

impl std::io::Write for FullDisk<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.budget == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        self.file.write(&buf[..n])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[test]
fn a_full_disk_while_storing_a_file_leaves_no_partial_blob() {
    let (dir, store, _) = temp_store();
    let (_, user, _) = user_and_reply(&store, "q", "a");
    let blobs = store.blobs.clone().unwrap();
    let result = attachments::stage(&blobs, vec![1u8; 1 << 20].as_slice(), |file| {
        Box::new(FullDisk {
            file,
            budget: 100_000,
        })
    });
    assert!(matches!(result, Err(StoreError::DiskFull)));
    let files: Vec<_> = tree(&dir.path().join("data/blobs"))
        .into_iter()
        .filter(|p| p.components().count() > 1)
        .collect();
    assert!(
        files.is_empty(),
        "no temporary or partial file stays: {files:?}"
    );
    let attachment = store
        .add_attachment(user.id, &meta("ok.bin"), &b"fine"[..])
        .unwrap();
    assert_eq!(
        std::fs::read(store.blob_path(&attachment.sha256).unwrap()).unwrap(),
        b"fine"
    );
    assert!(store.check_integrity().unwrap().is_ok());
}

// --- Settings ------------------------------------------------------------------------------

#[test]
fn settings_are_set_replaced_listed_and_removed() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.get_setting("theme").unwrap(), None);
    store.set_setting("theme", "\"dark\"").unwrap();
    store.set_setting("theme", "\"light\"").unwrap();
    store.set_setting("a", "1").unwrap();
    assert_eq!(
        store.get_setting("theme").unwrap().as_deref(),
        Some("\"light\"")
    );
    assert_eq!(
        store.settings().unwrap(),
        [
            ("a".into(), "1".into()),
            ("theme".into(), "\"light\"".into())
        ]
    );
    assert!(store.remove_setting("theme").unwrap());
    assert!(!store.remove_setting("theme").unwrap());
    assert!(matches!(
        store.set_setting("", "x"),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.set_setting("big", &"x".repeat(settings::MAX_VALUE_BYTES + 1)),
        Err(StoreError::TooLarge { .. })
    ));
}

// --- Export and import ---------------------------------------------------------------------

#[test]
fn markdown_export_shows_the_visible_branch() {
    let store = Store::open_in_memory().unwrap();
    let (conversation, _, reply) =
        user_and_reply(&store, "Why is the sky blue?", "Rayleigh scattering.");
    let again = store.regenerate_message(reply.id).unwrap();
    store
        .append_text(again.id, "Because of scattering")
        .unwrap();
    store
        .finalize_message(again.id, MessageStatus::Failed, Some("out of memory"))
        .unwrap();
    let markdown = store.export_markdown(conversation.id).unwrap();
    assert!(markdown.starts_with("# Why is the sky blue?\n"));
    assert!(markdown.contains("## You\n\nWhy is the sky blue?"));
    assert!(markdown.contains("Because of scattering"));
    assert!(markdown.contains("_(failed: out of memory)_"));
    assert!(
        !markdown.contains("Rayleigh"),
        "other branches are not in the Markdown"
    );
    // A store without files can still export and import conversations without attachments.
    let json = store
        .export_json_string(conversation.id, ExportOptions::default())
        .unwrap();
    let copy = store.import_json(json.as_bytes()).unwrap();
    assert_eq!(store.export_markdown(copy).unwrap(), markdown);
}

#[test]
fn json_round_trip_with_embedded_attachments_into_another_library() {
    let (_dir, store, _) = temp_store();
    let (conversation, user, reply) = user_and_reply(&store, "Summarise", "It says hi.");
    let attachment = store
        .add_attachment(user.id, &meta("notes.pdf"), &b"%PDF hi"[..])
        .unwrap();
    store.set_thumbnail(attachment.id, &b"thumb"[..]).unwrap();
    store
        .put_document(
            &attachment.sha256,
            &[DocumentPage {
                page_number: 1,
                text: "hi".into(),
                text_layer_usable: true,
            }],
            &[NewChunk {
                page_number: 1,
                line_start: 1,
                line_end: 1,
                text: "hi there".into(),
            }],
        )
        .unwrap();
    store.regenerate_message(reply.id).unwrap();
    let json = store
        .export_json_string(
            conversation.id,
            ExportOptions {
                embed_attachments: true,
            },
        )
        .unwrap();

    let (_dir2, other, _) = temp_store();
    let imported = other.import_json(json.as_bytes()).unwrap();
    let again = other
        .export_json_string(
            imported,
            ExportOptions {
                embed_attachments: true,
            },
        )
        .unwrap();
    let mut expected: ConversationExport = serde_json::from_str(&json).unwrap();
    // The reply left streaming comes back interrupted: nothing writes it any more.
    expected.messages[2].status = MessageStatus::Interrupted;
    let actual: ConversationExport = serde_json::from_str(&again).unwrap();
    assert_eq!(actual, expected);
    let hits = other.search_chunks("there", None, 10).unwrap();
    assert_eq!(hits.len(), 1);

    // Referenced-only exports import where the blobs already are, and nowhere else.
    let referenced = store
        .export_json_string(conversation.id, ExportOptions::default())
        .unwrap();
    assert!(store.import_json(referenced.as_bytes()).is_ok());
    let (_dir3, empty, _) = temp_store();
    match empty.import_json(referenced.as_bytes()) {
        Err(StoreError::Import(reason)) => assert!(reason.contains("notes.pdf"), "{reason}"),
        other => panic!("expected an import error, got {:?}", other.map(|_| ())),
    }
    assert!(
        empty
            .list_conversations_in(Listing::All, 10, 0)
            .unwrap()
            .is_empty()
    );
}

/// A change that makes an export file malicious or malformed.
type Corruption = Box<dyn Fn(&mut serde_json::Value)>;

fn sample_export(store: &Store) -> serde_json::Value {
    let (conversation, user, _) = user_and_reply(store, "q", "a");
    store
        .add_attachment(user.id, &meta("f.txt"), &b"file"[..])
        .unwrap();
    let json = store
        .export_json_string(
            conversation.id,
            ExportOptions {
                embed_attachments: true,
            },
        )
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn malicious_imports_are_refused_and_write_nothing() {
    let (dir, store, _) = temp_store();
    let good = sample_export(&store);
    let conversations_before = store
        .list_conversations_in(Listing::All, 100, 0)
        .unwrap()
        .len();
    let cases: Vec<(&str, Corruption)> = vec![
        (
            "sha256 path traversal",
            Box::new(|v| {
                v["messages"][0]["attachments"][0]["sha256"] = "../../../../tmp/evil".into()
            }),
        ),
        (
            "absolute sha256",
            Box::new(|v| v["messages"][0]["attachments"][0]["sha256"] = "/etc/passwd".into()),
        ),
        (
            "thumbnail traversal",
            Box::new(|v| {
                v["messages"][0]["attachments"][0]["thumbnail_sha256"] = "..\\..\\x".into()
            }),
        ),
        (
            "bytes that do not match the hash",
            Box::new(|v| v["messages"][0]["attachments"][0]["data_base64"] = "ZXZpbA==".into()),
        ),
        (
            "not base64",
            Box::new(|v| v["messages"][0]["attachments"][0]["data_base64"] = "***".into()),
        ),
        (
            "huge message",
            Box::new(|v| {
                v["messages"][0]["content"] = "x".repeat(transfer::MAX_IMPORT_TEXT_BYTES + 1).into()
            }),
        ),
        (
            "huge title",
            Box::new(|v| v["conversation"]["title"] = "t".repeat(5000).into()),
        ),
        (
            "wrong type",
            Box::new(|v| v["messages"][0]["content"] = 42.into()),
        ),
        (
            "negative size",
            Box::new(|v| v["messages"][0]["attachments"][0]["size"] = (-1).into()),
        ),
        (
            "unknown status",
            Box::new(|v| v["messages"][0]["status"] = "hacked".into()),
        ),
        (
            "unknown field",
            Box::new(|v| v["messages"][0]["sql"] = "DROP TABLE messages".into()),
        ),
        (
            "parent after child",
            Box::new(|v| v["messages"][0]["parent"] = 1.into()),
        ),
        (
            "parent cycle to itself",
            Box::new(|v| v["messages"][1]["parent"] = 1.into()),
        ),
        (
            "active child not a child",
            Box::new(|v| v["messages"][1]["active_child"] = 0.into()),
        ),
        (
            "active root out of range",
            Box::new(|v| v["active_root"] = 99.into()),
        ),
        ("other format", Box::new(|v| v["format"] = "chatgpt".into())),
        ("future version", Box::new(|v| v["version"] = 99.into())),
        (
            "NaN-like rate",
            Box::new(|v| v["messages"][1]["stats"]["tokens_per_second"] = (-1.0).into()),
        ),
    ];
    let before = tree(dir.path());
    for (name, corrupt) in cases {
        let mut value = good.clone();
        corrupt(&mut value);
        let bytes = serde_json::to_vec(&value).unwrap();
        match store.import_json(bytes.as_slice()) {
            Err(StoreError::Import(_) | StoreError::InvalidInput(_)) => {}
            other => panic!(
                "{name}: expected a typed import error, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    for garbage in [
        &b""[..],
        b"null",
        b"[1,2]",
        b"{\"format\":",
        &[0xff, 0xfe, 0x00][..],
    ] {
        assert!(matches!(
            store.import_json(garbage),
            Err(StoreError::Import(_))
        ));
    }
    assert_eq!(
        store
            .list_conversations_in(Listing::All, 100, 0)
            .unwrap()
            .len(),
        conversations_before
    );
    store.collect_garbage().unwrap();
    let after = tree(dir.path());
    assert_eq!(
        before, after,
        "nothing was written anywhere by refused imports"
    );
    assert!(store.check_integrity().unwrap().is_ok());
}

fn arb_status() -> impl Strategy<Value = MessageStatus> {
    prop_oneof![
        Just(MessageStatus::Complete),
        Just(MessageStatus::Interrupted),
        Just(MessageStatus::Failed),
        Just(MessageStatus::Cancelled),
    ]
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::System), Just(Role::User), Just(Role::Assistant)]
}

#[derive(Debug, Clone)]
struct ArbMessage {
    parent_pick: Option<usize>,
    role: Role,
    content: String,
    status: MessageStatus,
    error: Option<String>,
    stats: GenerationStats,
    attachment: Option<Vec<u8>>,
}

fn arb_message() -> impl Strategy<Value = ArbMessage> {
    (
        proptest::option::of(0usize..1000),
        arb_role(),
        ".{0,40}",
        arb_status(),
        proptest::option::of(".{0,10}"),
        (
            proptest::option::of("[a-z0-9-]{1,12}"),
            proptest::option::of(0u32..100_000),
            proptest::option::of(0u32..100_000),
            proptest::option::of(0u32..10_000),
            proptest::option::of(0.0f64..500.0),
            proptest::option::of("fast|vision"),
        ),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(
            |(parent_pick, role, content, status, error, s, attachment)| ArbMessage {
                parent_pick,
                role,
                content,
                status,
                error,
                stats: GenerationStats {
                    model_id: s.0,
                    prompt_tokens: s.1,
                    completion_tokens: s.2,
                    ttft_ms: s.3,
                    tokens_per_second: s.4,
                    route: s.5,
                    reused_tokens: None,
                    route_reason: None,
                    finish_reason: None,
                },
                attachment,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever tree a conversation has, exporting, importing and exporting again gives the
    /// same export: nothing is lost or changed.
    #[test]
    fn export_import_export_is_lossless(
        title in ".{0,30}",
        pinned in any::<bool>(),
        archived in any::<bool>(),
        system_prompt in proptest::option::of(".{0,20}"),
        messages in proptest::collection::vec(arb_message(), 0..12),
        switch_pick in proptest::option::of(0usize..1000),
    ) {
        let (_dir, store, _) = temp_store();
        let conversation = store.create_conversation(&title).unwrap();
        store.set_pinned(conversation.id, pinned).unwrap();
        store.set_archived(conversation.id, archived).unwrap();
        store.set_system_prompt(conversation.id, system_prompt.as_deref()).unwrap();
        let mut ids: Vec<MessageId> = Vec::new();
        for message in &messages {
            let parent = match (message.parent_pick, ids.is_empty()) {
                (Some(pick), false) => Some(ids[pick % ids.len()]),
                _ => None,
            };
            let created = store
                .append_message(conversation.id, parent, message.role, "", MessageStatus::Streaming)
                .unwrap();
            store.append_text(created.id, &message.content).unwrap();
            store
                .finish_message(created.id, message.status, message.error.as_deref(), &message.stats)
                .unwrap();
            if let Some(bytes) = &message.attachment {
                store.add_attachment(created.id, &meta("file.bin"), bytes.as_slice()).unwrap();
            }
            ids.push(created.id);
        }
        if let (Some(pick), false) = (switch_pick, ids.is_empty()) {
            store.switch_branch(ids[pick % ids.len()]).unwrap();
        }
        let options = ExportOptions { embed_attachments: true };
        let first = store.export_json(conversation.id, options).unwrap();
        let json = serde_json::to_string(&first).unwrap();
        let (_dir2, other, _) = temp_store();
        let imported = other.import_json(json.as_bytes()).unwrap();
        let second = other.export_json(imported, options).unwrap();
        prop_assert_eq!(&second, &first);
        let visible = |s: &Store, c| s.active_path(c).unwrap().into_iter().map(|m| m.content).collect::<Vec<_>>();
        prop_assert_eq!(visible(&other, imported), visible(&store, conversation.id));
    }
}

mod turn_context {
    use super::*;
    use crate::{AttachmentKind, AttachmentMeta, Citation, PromptView};

    fn file_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cria.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_prompt_view_round_trips_and_defaults_to_the_content() {
        let (_dir, store) = file_store();
        let (_, user, _) = user_and_reply(&store, "question", "answer");
        assert_eq!(store.prompt_view(user.id).unwrap(), PromptView::default());
        let view = PromptView {
            text: Some("<document>…</document>\nquestion".into()),
            images: vec!["a".repeat(64)],
        };
        store.set_prompt_view(user.id, &view).unwrap();
        assert_eq!(store.prompt_view(user.id).unwrap(), view);
        let bad = PromptView {
            text: None,
            images: vec!["../../etc/passwd".into()],
        };
        assert!(matches!(
            store.set_prompt_view(user.id, &bad),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn prepared_images_survive_garbage_collection_while_their_source_is_attached() {
        let (_dir, store) = file_store();
        let (_, user, reply) = user_and_reply(&store, "look", "ok");
        let meta = AttachmentMeta {
            original_name: "shot.png".into(),
            mime: "image/png".into(),
            kind: AttachmentKind::Image,
        };
        let attachment = store
            .add_attachment(user.id, &meta, &b"original bytes"[..])
            .unwrap();
        let prepared = store
            .put_prepared_image(&attachment.sha256, 1, 4, 2, &b"small png"[..])
            .unwrap();
        assert_eq!(
            store.prepared_images(&attachment.sha256).unwrap(),
            std::slice::from_ref(&prepared)
        );
        let report = store.collect_garbage().unwrap();
        assert_eq!(report.blobs_removed, 0);
        assert!(store.blob_path(&prepared.image_sha256).is_ok());

        store
            .set_citations(
                reply.id,
                &[Citation {
                    span_start: 0,
                    span_end: 2,
                    attachment_id: attachment.id,
                    page_number: 1,
                }],
            )
            .unwrap();
        assert_eq!(store.citations(reply.id).unwrap().len(), 1);

        // Deleting the conversation frees the original first, then the prepared image.
        store.delete_conversation(user.conversation_id).unwrap();
        store.collect_garbage().unwrap();
        store.collect_garbage().unwrap();
        assert!(store.blob_path(&attachment.sha256).is_err());
        assert!(store.blob_path(&prepared.image_sha256).is_err());
    }

    #[test]
    fn a_finished_reply_can_be_reopened_for_continuation_but_a_user_message_cannot() {
        let (_dir, store) = file_store();
        let (_, user, reply) = user_and_reply(&store, "count", "1 2 3");
        store
            .set_notices(reply.id, &["Pages 4–9 were left out.".into()])
            .unwrap();
        let reopened = store.reopen_reply(reply.id).unwrap();
        assert_eq!(reopened.status, MessageStatus::Streaming);
        assert_eq!(reopened.notices, ["Pages 4–9 were left out."]);
        store.append_text(reply.id, " 4").unwrap();
        store
            .finalize_message(reply.id, MessageStatus::Complete, None)
            .unwrap();
        assert_eq!(store.get_message(reply.id).unwrap().content, "1 2 3 4");
        assert!(store.reopen_reply(user.id).is_err());
        // Search sees the continued reply once, with its new text.
        let hits = |query: &str| store.search_messages(query, 10).unwrap();
        assert_eq!(hits("3").len(), 1, "{:?}", hits("3"));
        assert_eq!(hits("4").len(), 1);
    }
}
