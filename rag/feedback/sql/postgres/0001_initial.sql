-- Drafts the service returned, the agents' verdicts on them, and a person's review of each accepted or edited one.
-- The same tables as the SQLite file at its version 2, typed for PostgreSQL.
CREATE TABLE drafts (
    id text PRIMARY KEY,
    created timestamptz NOT NULL,
    product text NOT NULL,
    subcategory text NOT NULL,
    title text NOT NULL,
    ticket text NOT NULL,
    draft_text text NOT NULL,
    draft_json json NOT NULL                  -- json, not jsonb: kept as written, and jsonb refuses an escaped NUL (\u0000)
);
CREATE INDEX drafts_product ON drafts (product);

CREATE TABLE feedback (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    draft_id text NOT NULL REFERENCES drafts (id),
    created timestamptz NOT NULL,
    verdict text NOT NULL CHECK (verdict IN ('accepted', 'edited', 'rejected')),
    final_text text,
    reason text,
    product text,                             -- the product as the agent corrected it
    scenarios text[] NOT NULL DEFAULT '{}'    -- the agent's scenarios
);
-- the latest verdict per draft is read by (draft_id, id)
CREATE INDEX feedback_draft ON feedback (draft_id, id);

CREATE TABLE reviews (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feedback_id bigint NOT NULL REFERENCES feedback (id),
    created timestamptz NOT NULL,
    decision text NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reviewer text NOT NULL,
    reason text
);
CREATE INDEX reviews_feedback ON reviews (feedback_id, id);
