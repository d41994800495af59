-- What the model was shown for each turn, so that later turns send earlier ones unchanged (the
-- engine's KV cache then only prefills what is new), plus the reply's citations and routing.
-- Append-only: never edit a shipped migration, add the next one.

-- For user messages: the text the model saw (the message with its document excerpts); NULL
-- means exactly `content`. A JSON array of the prepared images (blob sha256, in order) sent
-- with it; NULL means none.
ALTER TABLE messages ADD COLUMN prompt_text TEXT;
ALTER TABLE messages ADD COLUMN prompt_images TEXT;
-- For replies: prompt positions taken from the engine's cache, why this model was chosen, and
-- notes for the user (a JSON array of strings: material that was left out, and why).
ALTER TABLE messages ADD COLUMN reused_tokens INTEGER CHECK (reused_tokens >= 0);
ALTER TABLE messages ADD COLUMN route_reason TEXT;
-- For replies: why generation ended (`stop`, `stop_string`, `length`, `context_full`,
-- `cancelled`), so a reply cut by its length can be continued.
ALTER TABLE messages ADD COLUMN finish_reason TEXT;
ALTER TABLE messages ADD COLUMN notices TEXT;
-- For replies: the first message of the conversation that was in its prompt (older ones were
-- left out to fit the context). The next turn starts no earlier, so its prompt keeps the same
-- prefix and the engine's cache stays valid.
ALTER TABLE messages ADD COLUMN context_from_id INTEGER REFERENCES messages (id) ON DELETE SET NULL;

-- Images ready for the vision encoder (downscaled RGB stored as PNG) made from a stored file:
-- page 1 of an image file, or a rendered PDF page without a usable text layer. Kept so a
-- conversation's images are decoded from small files, not re-parsed from the originals.
CREATE TABLE prepared_images (
    source_sha256 TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    page_number   INTEGER NOT NULL CHECK (page_number >= 1),
    image_sha256  TEXT    NOT NULL REFERENCES blobs (sha256),
    width         INTEGER NOT NULL CHECK (width >= 1),
    height        INTEGER NOT NULL CHECK (height >= 1),
    PRIMARY KEY (source_sha256, page_number)
) STRICT, WITHOUT ROWID;

CREATE INDEX prepared_images_by_image ON prepared_images (image_sha256);

-- "[p. N]" in a reply, resolved to the attached document and page it names. Offsets are byte
-- offsets into the reply's content.
CREATE TABLE citations (
    id            INTEGER PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    span_start    INTEGER NOT NULL CHECK (span_start >= 0),
    span_end      INTEGER NOT NULL CHECK (span_end >= span_start),
    attachment_id INTEGER NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    page_number   INTEGER NOT NULL CHECK (page_number >= 1)
) STRICT;

CREATE INDEX citations_by_message ON citations (message_id, span_start);
CREATE INDEX citations_by_attachment ON citations (attachment_id);
