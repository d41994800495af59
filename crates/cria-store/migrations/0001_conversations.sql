-- Conversations and their messages, stored as a tree so that edit, regenerate and branch never
-- lose anything. Append-only: never edit a shipped migration, add the next one.
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

CREATE INDEX conversations_recent ON conversations (archived, pinned DESC, updated_at_ms DESC, id DESC);

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
) STRICT;

CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX messages_by_parent ON messages (parent_id, id);
CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';
