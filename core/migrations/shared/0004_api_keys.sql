-- API keys of services (publishers, operators). Only a SHA-256 of each key's secret part is
-- kept; `id` is the key's public part, by which a presented key is looked up.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
