-- A person's review of an accepted or edited draft, and the agent's corrections of product and scenarios.
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, feedback_id INTEGER NOT NULL REFERENCES feedback(id), created TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')), reviewer TEXT NOT NULL, reason TEXT
);
CREATE INDEX IF NOT EXISTS reviews_feedback ON reviews(feedback_id);
-- the product as the agent corrected it, checked against the store's set
ALTER TABLE feedback ADD COLUMN product TEXT;
-- the agent's scenarios, joined by '|', checked the same way
ALTER TABLE feedback ADD COLUMN scenarios TEXT;
