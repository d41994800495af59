-- Full-text search over finished messages and document chunks. The indexed text is the output
-- of cria_search_text() (registered by the app on every connection): Hangul, kana and Han runs
-- are split into overlapping two-character pieces so that unicode61 can match Korean nouns
-- followed by particles and Chinese/Japanese words without spaces. Contentless tables: the text
-- lives once, in messages/document_chunks; the index only maps terms to rowids.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);

CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);

-- A streaming reply changes with every batch; it is indexed once it ends.
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, cria_search_text(new.content));
END;

CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages
WHEN old.status = 'streaming' AND new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, cria_search_text(new.content));
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.status <> 'streaming' AND new.status <> 'streaming' BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, cria_search_text(new.content));
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;

CREATE TRIGGER chunks_fts_insert AFTER INSERT ON document_chunks BEGIN
    INSERT INTO chunks_fts (rowid, body) VALUES (new.id, cria_search_text(new.text));
END;

CREATE TRIGGER chunks_fts_delete AFTER DELETE ON document_chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
END;

-- Existing rows are indexed by this migration's hook (schema.rs), which first registers
-- cria_search_text on the migrating connection.
