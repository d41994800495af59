-- user_version 4

-- index attachments_by_blob on attachments
CREATE INDEX attachments_by_blob ON attachments (sha256);

-- index attachments_by_message on attachments
CREATE INDEX attachments_by_message ON attachments (message_id, id);

-- index attachments_by_thumbnail on attachments
CREATE INDEX attachments_by_thumbnail ON attachments (thumbnail_sha256)
    WHERE thumbnail_sha256 IS NOT NULL;

-- index citations_by_attachment on citations
CREATE INDEX citations_by_attachment ON citations (attachment_id);

-- index citations_by_message on citations
CREATE INDEX citations_by_message ON citations (message_id, span_start);

-- index conversations_recent on conversations
CREATE INDEX conversations_recent ON conversations (archived, pinned DESC, updated_at_ms DESC, id DESC);

-- index messages_by_conversation on messages
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

-- index messages_by_parent on messages
CREATE INDEX messages_by_parent ON messages (parent_id, id);

-- index messages_streaming on messages
CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';

-- index prepared_images_by_image on prepared_images
CREATE INDEX prepared_images_by_image ON prepared_images (image_sha256);

-- table attachments on attachments
CREATE TABLE attachments (
    id               INTEGER PRIMARY KEY,
    message_id       INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    sha256           TEXT    NOT NULL REFERENCES blobs (sha256),
    original_name    TEXT    NOT NULL,
    mime             TEXT    NOT NULL,
    size             INTEGER NOT NULL CHECK (size >= 0),
    kind             TEXT    NOT NULL CHECK (kind IN ('image', 'document', 'text', 'other')),
    thumbnail_sha256 TEXT    REFERENCES blobs (sha256),
    created_at_ms    INTEGER NOT NULL
) STRICT;

-- table blobs on blobs
CREATE TABLE blobs (
    sha256        TEXT    PRIMARY KEY
        CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size          INTEGER NOT NULL CHECK (size >= 0),
    created_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- table chunks_fts on chunks_fts
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);

-- table chunks_fts_config on chunks_fts_config
CREATE TABLE 'chunks_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;

-- table chunks_fts_data on chunks_fts_data
CREATE TABLE 'chunks_fts_data'(id INTEGER PRIMARY KEY, block BLOB);

-- table chunks_fts_docsize on chunks_fts_docsize
CREATE TABLE 'chunks_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB, origin INTEGER);

-- table chunks_fts_idx on chunks_fts_idx
CREATE TABLE 'chunks_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;

-- table citations on citations
CREATE TABLE citations (
    id            INTEGER PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    span_start    INTEGER NOT NULL CHECK (span_start >= 0),
    span_end      INTEGER NOT NULL CHECK (span_end >= span_start),
    attachment_id INTEGER NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    page_number   INTEGER NOT NULL CHECK (page_number >= 1)
) STRICT;

-- table conversations on conversations
CREATE TABLE conversations (
    id             INTEGER PRIMARY KEY,
    title          TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    pinned         INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    archived       INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    system_prompt  TEXT,
    model_profile  TEXT,
    -- Which root message starts the visible branch (editing the first message adds a root);
    -- NULL means the newest root.
    active_root_id INTEGER REFERENCES messages (id) ON DELETE SET NULL
) STRICT;

-- table document_chunks on document_chunks
CREATE TABLE document_chunks (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL CHECK (ordinal >= 0),
    page_number INTEGER NOT NULL CHECK (page_number >= 1),
    line_start  INTEGER NOT NULL CHECK (line_start >= 1),
    line_end    INTEGER NOT NULL CHECK (line_end >= line_start),
    text        TEXT    NOT NULL,
    UNIQUE (sha256, ordinal)
) STRICT;

-- table document_pages on document_pages
CREATE TABLE document_pages (
    sha256            TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    page_number       INTEGER NOT NULL CHECK (page_number >= 1),
    text              TEXT    NOT NULL,
    -- 0 when the page had no usable text layer (a scan): the text is empty or came from OCR.
    text_layer_usable INTEGER NOT NULL CHECK (text_layer_usable IN (0, 1)),
    PRIMARY KEY (sha256, page_number)
) STRICT, WITHOUT ROWID;

-- table messages on messages
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    conversation_id   INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id         INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT    NOT NULL,
    status            TEXT    NOT NULL
        CHECK (status IN ('streaming', 'complete', 'interrupted', 'failed', 'cancelled')),
    -- Which child continues the visible branch; NULL means the newest child.
    active_child_id   INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    model_id          TEXT,
    error             TEXT,
    prompt_tokens     INTEGER CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER CHECK (completion_tokens >= 0),
    ttft_ms           INTEGER CHECK (ttft_ms >= 0),
    tokens_per_second REAL    CHECK (tokens_per_second >= 0),
    -- Which engine path produced a reply (for example "fast" or "vision").
    route             TEXT,
    created_at_ms     INTEGER NOT NULL,
    finished_at_ms    INTEGER
, prompt_text TEXT, prompt_images TEXT, reused_tokens INTEGER CHECK (reused_tokens >= 0), route_reason TEXT, finish_reason TEXT, notices TEXT, context_from_id INTEGER REFERENCES messages (id) ON DELETE SET NULL) STRICT;

-- table messages_fts on messages_fts
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);

-- table messages_fts_config on messages_fts_config
CREATE TABLE 'messages_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;

-- table messages_fts_data on messages_fts_data
CREATE TABLE 'messages_fts_data'(id INTEGER PRIMARY KEY, block BLOB);

-- table messages_fts_docsize on messages_fts_docsize
CREATE TABLE 'messages_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB, origin INTEGER);

-- table messages_fts_idx on messages_fts_idx
CREATE TABLE 'messages_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;

-- table prepared_images on prepared_images
CREATE TABLE prepared_images (
    source_sha256 TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    page_number   INTEGER NOT NULL CHECK (page_number >= 1),
    image_sha256  TEXT    NOT NULL REFERENCES blobs (sha256),
    width         INTEGER NOT NULL CHECK (width >= 1),
    height        INTEGER NOT NULL CHECK (height >= 1),
    PRIMARY KEY (source_sha256, page_number)
) STRICT, WITHOUT ROWID;

-- table settings on settings
CREATE TABLE settings (
    key           TEXT    PRIMARY KEY,
    value         TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- trigger chunks_fts_delete on document_chunks
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON document_chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
END;

-- trigger chunks_fts_insert on document_chunks
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON document_chunks BEGIN
    INSERT INTO chunks_fts (rowid, body) VALUES (new.id, cria_search_text(new.text));
END;

-- trigger messages_fts_delete on messages
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;

-- trigger messages_fts_finish on messages
CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages
WHEN old.status = 'streaming' AND new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, cria_search_text(new.content));
END;

-- trigger messages_fts_insert on messages
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, cria_search_text(new.content));
END;

-- trigger messages_fts_update on messages
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.status <> 'streaming' AND new.status <> 'streaming' BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, cria_search_text(new.content));
END;
