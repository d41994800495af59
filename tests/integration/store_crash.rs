//! The store survives kill -9: while a reply streams (including during WAL checkpoints), during
//! a schema migration, and during an import. The harness is `cria-store-harness`; the soak
//! binary runs the same streaming check hundreds of times.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use cria_store::{ConversationId, ExportOptions, Listing, MessageStatus, Role, Store, schema};
use cria_tests::store_crash::{
    KillAt, SplitMix64, kill_plan, kill_while_streaming, run_and_kill, run_to_end,
};

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cria-store-harness"))
}

#[test]
fn kill_9_while_a_reply_streams_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut during_checkpoint = 0;
    let mut with_text = 0;
    for seed in 0..30 {
        let run = kill_while_streaming(&harness(), dir.path(), seed)
            .unwrap_or_else(|error| panic!("seed {seed} ({:?}): {error:#}", kill_plan(seed)));
        during_checkpoint += usize::from(run.during_checkpoint);
        with_text += usize::from(run.stored_bytes > 0);
    }
    // The plan must really have hit the interesting moments, not only idle ones.
    assert!(
        during_checkpoint >= 3,
        "only {during_checkpoint} kills inside a checkpoint"
    );
    assert!(
        with_text >= 10,
        "only {with_text} runs were killed mid-reply"
    );
}

/// Copies a database (and its WAL, if any) so each run starts from the same fixture.
fn copy_db(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.parent().context("a database path has a folder")?)?;
    std::fs::copy(from, to)?;
    for suffix in ["-wal", "-shm"] {
        let mut source = from.as_os_str().to_owned();
        source.push(suffix);
        let mut target = to.as_os_str().to_owned();
        target.push(suffix);
        if Path::new(&source).exists() {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

fn dump_at(version: usize, dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(format!("reference-{version}.sqlite3"));
    let conn = schema::create_at_version(&path, version)?;
    Ok(schema::dump(&conn)?)
}

#[test]
fn kill_9_during_a_migration_never_leaves_a_mixed_schema() {
    let dir = tempfile::tempdir().unwrap();
    let previous = schema::LATEST_VERSION - 1;
    let fixture = dir.path().join("fixture.sqlite3");
    let messages = 20_000;
    {
        // A database as the previous release left it, big enough that indexing takes a while.
        let conn = schema::create_at_version(&fixture, previous).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO conversations (id, title, created_at_ms, updated_at_ms) \
             VALUES (1, 'old', 1, 1); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {messages}) \
             INSERT INTO messages (id, conversation_id, parent_id, role, content, status, created_at_ms) \
             SELECT i, 1, NULLIF(i - 1, 0), 'user', 'note n' || i || ' 기호를 사용하세요 ' || \
                    hex(randomblob(40)), 'complete', i FROM n;"
        ))
        .unwrap();
    }
    let old_dump = dump_at(previous, dir.path()).unwrap();
    let new_dump = dump_at(schema::LATEST_VERSION, dir.path()).unwrap();

    // How long a full migration takes here, so kills land before, inside and after it.
    let timing = dir.path().join("timing/cria.sqlite3");
    copy_db(&fixture, &timing).unwrap();
    let started = Instant::now();
    run_to_end(&harness(), &["migrate", &timing.to_string_lossy()]).unwrap();
    let full = started.elapsed().as_millis() as u64;

    let mut rng = SplitMix64::new(7);
    let mut seen_old = 0;
    for run in 0..8 {
        let db = dir.path().join(format!("run-{run}/cria.sqlite3"));
        copy_db(&fixture, &db).unwrap();
        let delay = Duration::from_millis(rng.below(full + full / 4 + 1));
        run_and_kill(
            &harness(),
            &["migrate", &db.to_string_lossy()],
            KillAt::After(delay),
        )
        .unwrap();
        {
            let dump = schema::dump_file(&db).unwrap();
            assert!(
                dump == old_dump || dump == new_dump,
                "run {run}: a mixed schema after a kill at {delay:?}:\n{dump}"
            );
            seen_old += usize::from(dump == old_dump);
        }
        let store = Store::open(&db).unwrap();
        assert!(store.check_integrity().unwrap().is_ok());
        assert_eq!(store.schema_dump().unwrap(), new_dump);
        let hits = store
            .search_messages(&format!("n{}", messages - 1), 10)
            .unwrap();
        assert_eq!(hits.len(), 1, "run {run}: the migration indexed everything");
        assert_eq!(
            store.all_messages(ConversationId(1)).unwrap().len(),
            messages
        );
    }
    assert!(
        seen_old > 0,
        "no kill landed before the migration committed (full run {full} ms)"
    );
}

#[test]
fn kill_9_during_an_import_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source/cria.sqlite3")).unwrap();
    let conversation = source.create_conversation("to import").unwrap();
    let mut parent = None;
    for n in 0..3000 {
        let role = if n % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        let message = source
            .append_message(
                conversation.id,
                parent,
                role,
                &format!("message {n} 회의는"),
                MessageStatus::Complete,
            )
            .unwrap();
        if n % 500 == 0 {
            let meta = cria_store::AttachmentMeta {
                original_name: format!("file{n}.bin"),
                mime: "application/octet-stream".into(),
                kind: cria_store::AttachmentKind::Other,
            };
            source
                .add_attachment(message.id, &meta, vec![n as u8; 200_000].as_slice())
                .unwrap();
        }
        parent = Some(message.id);
    }
    let options = ExportOptions {
        embed_attachments: true,
    };
    let expected = source.export_json(conversation.id, options).unwrap();
    let json = dir.path().join("export.json");
    std::fs::write(&json, serde_json::to_vec(&expected).unwrap()).unwrap();

    let timing = dir.path().join("timing/cria.sqlite3");
    let started = Instant::now();
    run_to_end(
        &harness(),
        &["import", &timing.to_string_lossy(), &json.to_string_lossy()],
    )
    .unwrap();
    let full = started.elapsed().as_millis() as u64;

    let mut rng = SplitMix64::new(11);
    let (mut empty, mut complete) = (0, 0);
    for run in 0..8 {
        let db = dir.path().join(format!("run-{run}/cria.sqlite3"));
        let delay = Duration::from_millis(rng.below(full + full / 4 + 1));
        run_and_kill(
            &harness(),
            &["import", &db.to_string_lossy(), &json.to_string_lossy()],
            KillAt::After(delay),
        )
        .unwrap();
        if !db.exists() {
            empty += 1;
            continue;
        }
        let store = Store::open(&db).unwrap();
        assert!(store.check_integrity().unwrap().is_ok());
        let listed = store.list_conversations_in(Listing::All, 10, 0).unwrap();
        match listed.as_slice() {
            [] => empty += 1,
            [imported] => {
                complete += 1;
                assert_eq!(store.export_json(imported.id, options).unwrap(), expected);
            }
            more => panic!("run {run}: {} conversations from one import", more.len()),
        }
        // Blob files from an import that never committed are collected; the next import works.
        store.collect_garbage().unwrap();
        let again = store
            .import_json(std::fs::File::open(&json).unwrap())
            .unwrap();
        assert_eq!(store.export_json(again, options).unwrap(), expected);
    }
    assert_eq!(empty + complete, 8);
}
