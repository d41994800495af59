-- Attachments are content-addressed: the bytes live once on disk under blobs/ by sha256, rows
-- here say who uses them. Documents (pages, chunks) belong to the blob they were extracted from,
-- so the same file attached twice is parsed and indexed once.
CREATE TABLE blobs (
    sha256        TEXT    PRIMARY KEY
        CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size          INTEGER NOT NULL CHECK (size >= 0),
    created_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

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

CREATE INDEX attachments_by_message ON attachments (message_id, id);
CREATE INDEX attachments_by_blob ON attachments (sha256);
CREATE INDEX attachments_by_thumbnail ON attachments (thumbnail_sha256)
    WHERE thumbnail_sha256 IS NOT NULL;

CREATE TABLE document_pages (
    sha256            TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    page_number       INTEGER NOT NULL CHECK (page_number >= 1),
    text              TEXT    NOT NULL,
    -- 0 when the page had no usable text layer (a scan): the text is empty or came from OCR.
    text_layer_usable INTEGER NOT NULL CHECK (text_layer_usable IN (0, 1)),
    PRIMARY KEY (sha256, page_number)
) STRICT, WITHOUT ROWID;

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

CREATE TABLE settings (
    key           TEXT    PRIMARY KEY,
    value         TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
