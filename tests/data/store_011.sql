-- A store file as depin-monitor wrote it at schema 011 (commit 2871ef1, before the schema
-- moved to sqlite-utils): Store(path) with three runs added and closed (its rollups folded),
-- one model equality verdict (storage.equality.write_verdict) and one fingerprint verdict
-- with a reference network (storage.fingerprint.write_result); _migrations.applied_at set
-- to a fixed time; then sqlite3's Connection.iterdump(). tests/test_schema.py loads it.
BEGIN TRANSACTION;
CREATE TABLE _migrations (name text primary key, applied_at float not null);
INSERT INTO "_migrations" VALUES('001_create_probe_results',1790000000.0);
INSERT INTO "_migrations" VALUES('002_create_rollups',1790000000.0);
INSERT INTO "_migrations" VALUES('003_connection_columns',1790000000.0);
INSERT INTO "_migrations" VALUES('004_equality_verdicts',1790000000.0);
INSERT INTO "_migrations" VALUES('005_capacity_tables',1790000000.0);
INSERT INTO "_migrations" VALUES('006_weekly_rollups',1790000000.0);
INSERT INTO "_migrations" VALUES('007_quality_tables',1790000000.0);
INSERT INTO "_migrations" VALUES('008_contract_tables',1790000000.0);
INSERT INTO "_migrations" VALUES('009_fingerprint_tables',1790000000.0);
INSERT INTO "_migrations" VALUES('010_rollup_ignored',1790000000.0);
INSERT INTO "_migrations" VALUES('011_fingerprint_reference',1790000000.0);
CREATE TABLE capacity_ladders (id text primary key,
        network text not null, target text not null, job text not null, job_version integer,
        model text, location text, started_at float not null, elapsed_s float,
        stopped text not null, detail text, requests integer, spend_usd float,
        retry_after_s float, sustained integer, knee integer, criteria text);
CREATE TABLE "capacity_runs" (
   "ladder_id" TEXT NOT NULL,
   "streams" INTEGER NOT NULL,
   "network" TEXT NOT NULL,
   "target" TEXT NOT NULL,
   "job" TEXT NOT NULL,
   "model" TEXT NOT NULL,
   "outcome" TEXT NOT NULL,
   "started_at" REAL NOT NULL,
   "kind" TEXT,
   "job_version" INTEGER,
   "prompt_hash" TEXT,
   "location" TEXT,
   "scheduled_at" REAL,
   "http_status" INTEGER,
   "error" TEXT,
   "connect_s" REAL,
   "ttfb_s" REAL,
   "ttft_s" REAL,
   "duration_s" REAL,
   "output_tokens" INTEGER,
   "input_tokens" INTEGER,
   "token_source" TEXT,
   "tokens_per_s" REAL,
   "max_gap_s" REAL,
   "bytes" INTEGER,
   "queue_s" REAL,
   "retry_after_s" REAL,
   "served_model" TEXT,
   "system_fingerprint" TEXT,
   "node" TEXT,
   "lagged" INTEGER,
   "details" TEXT,
   "dns_s" REAL,
   "tcp_s" REAL,
   "tls_s" REAL,
   "ip_version" INTEGER,
   "tls_version" TEXT,
   "tls_cipher" TEXT,
   "tls_cert_expiry" REAL
);
CREATE TABLE capacity_steps (ladder_id text not null,
        streams integer not null, started_at float, elapsed_s float, runs integer,
        outcomes text, output_tokens integer, tokens_per_s float, stream_tps_p50 float,
        ttft_p50_s float, ttft_p95_s float, error_rate float, disconnect_rate float,
        held integer, broke text, primary key (ladder_id, streams)) without rowid;
CREATE TABLE contract_params (run_id text not null,
        network text not null, tier text not null, model text not null,
        started_at float not null, param text not null, cell text not null, detail text,
        value float);
CREATE TABLE contract_runs (run_id text primary key,
        network text not null, tier text not null, model text not null, reference text,
        started_at float not null, suite text not null, suite_digest text not null,
        requests integer not null, spend_usd float, duration_s float, capped text);
CREATE TABLE contract_tool_grades (run_id text not null,
        network text not null, tier text not null, model text not null,
        started_at float not null, suite text not null, item text not null,
        stream integer not null, grade text, outcome text not null, finish_reason text,
        calls integer not null, detail text);
CREATE TABLE equality_verdicts (network text, tier text, model text, reference text, started_at float, verdict text, p_value float, statistic float, samples integer, reference_samples integer, requests integer, failed integer, spend_usd float, prompt_set text, prompt_set_digest text, alpha float, permutations integer, consecutive_differs integer, duration_s float, error text);
INSERT INTO "equality_verdicts" VALUES('akash','small','m','ref',1790000100.0,'same as reference',0.4,0.01,20,20,20,0,0.01,'p','d',0.01,200,0,0.0,'');
CREATE TABLE fingerprint_sets (network text, model text, version integer, method text, prompts text, reference text, created_at float, candidates text, tried integer, requests integer, spend_usd float, primary key (network, model, version));
CREATE TABLE fingerprint_verdicts (network text, tier text, model text, started_at float, verdict text, set_version integer, method text, distance float, p_value float, reference_distance float, reference_p_value float, samples integer, requests integer, failed integer, output_tokens integer, spend_usd float, alpha float, baseline_runs integer, changed_since float, duration_s float, error text, observations text, reference_network text);
INSERT INTO "fingerprint_verdicts" VALUES('akash','small','m',1790000200.0,'same',1,'tokens',0.1,0.5,NULL,NULL,10,10,0,10,NULL,0.001,1,NULL,0.0,'','{}','ref');
CREATE TABLE "probe_results" (
   "network" TEXT NOT NULL,
   "target" TEXT NOT NULL,
   "job" TEXT NOT NULL,
   "model" TEXT NOT NULL,
   "outcome" TEXT NOT NULL,
   "started_at" REAL NOT NULL,
   "kind" TEXT,
   "job_version" INTEGER,
   "prompt_hash" TEXT,
   "location" TEXT,
   "scheduled_at" REAL,
   "http_status" INTEGER,
   "error" TEXT,
   "connect_s" REAL,
   "ttfb_s" REAL,
   "ttft_s" REAL,
   "duration_s" REAL,
   "output_tokens" INTEGER,
   "input_tokens" INTEGER,
   "token_source" TEXT,
   "tokens_per_s" REAL,
   "max_gap_s" REAL,
   "bytes" INTEGER,
   "queue_s" REAL,
   "retry_after_s" REAL,
   "served_model" TEXT,
   "system_fingerprint" TEXT,
   "node" TEXT,
   "lagged" INTEGER,
   "details" TEXT,
   "dns_s" REAL,
   "tcp_s" REAL,
   "tls_s" REAL,
   "ip_version" INTEGER,
   "tls_version" TEXT,
   "tls_cipher" TEXT,
   "tls_cert_expiry" REAL
);
INSERT INTO "probe_results" VALUES('akash','small','chat-short-v1','m','ok',1790000000.0,'openai',1,'','eu',NULL,NULL,'',NULL,NULL,0.3,1.2,16,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,0,'{}',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "probe_results" VALUES('akash','small','chat-short-v1','m','timeout',1790000060.0,'openai',1,'','eu',NULL,NULL,'',NULL,NULL,0.3,1.2,16,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,0,'{}',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "probe_results" VALUES('akash','small','chat-short-v1','m','ok',1790000120.0,'openai',1,'','eu',NULL,NULL,'',NULL,NULL,0.3,1.2,16,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,0,'{}',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE quality_answers (audit_id text not null,
        side text not null, network text not null, tier text not null, model text,
        suite text not null, idx integer not null, family text not null,
        difficulty integer not null, seed integer not null, outcome text not null,
        grade text, extracted text, raw text, error text,
        primary key (audit_id, side, network, tier, idx)) without rowid;
CREATE TABLE quality_audits (audit_id text, network text, tier text, model text, reference text, started_at float, verdict text, suite text, seed integer, items integer, pairs integer, correct integer, reference_correct integer, network_only integer, reference_only integer, accuracy float, accuracy_low float, accuracy_high float, reference_accuracy float, reference_low float, reference_high float, difference float, difference_low float, difference_high float, p_value float, alpha float, refused integer, unparsed integer, requests integer, failed integer, spend_usd float, consecutive_worse integer, duration_s float, error text, by_family text, by_difficulty text);
CREATE TABLE rollup_hist (network text not null, target text not null,
    job text not null, location text not null, day integer not null, metric text not null,
    bucket integer not null, n integer not null,
    primary key (network, target, job, location, metric, bucket, day)) without rowid;
INSERT INTO "rollup_hist" VALUES('akash','small','chat-short-v1','eu',20717,'e2e',18,2);
INSERT INTO "rollup_hist" VALUES('akash','small','chat-short-v1','eu',20717,'ttft',-121,3);
CREATE TABLE rollup_hist_week (network text not null, target text not null,
    job text not null, location text not null, week integer not null, metric text not null,
    bucket integer not null, n integer not null,
    primary key (network, target, job, location, metric, bucket, week)) without rowid;
INSERT INTO "rollup_hist_week" VALUES('akash','small','chat-short-v1','eu',2960,'e2e',18,2);
INSERT INTO "rollup_hist_week" VALUES('akash','small','chat-short-v1','eu',2960,'ttft',-121,3);
CREATE TABLE rollup_ignored (network, target, job,
    location, day integer not null, col text not null, n integer not null,
    primary key (network, target, job, location, day, col));
CREATE TABLE rollup_nodes (network text not null, target text not null,
    job text not null, location text not null, day integer not null, node text not null,
    primary key (network, target, job, location, day, node)) without rowid;
CREATE TABLE rollup_runs (network text not null, target text not null,
    job text not null, location text not null, day integer not null, outcome text not null,
    runs integer not null, output_tokens integer not null, input_tokens integer not null,
    first_at real not null, last_at real not null,
    primary key (network, target, job, location, day, outcome)) without rowid;
INSERT INTO "rollup_runs" VALUES('akash','small','chat-short-v1','eu',20717,'ok',2,32,0,1790000000.0,1790000120.0);
INSERT INTO "rollup_runs" VALUES('akash','small','chat-short-v1','eu',20717,'timeout',1,16,0,1790000060.0,1790000060.0);
CREATE TABLE rollup_state (id integer primary key check (id = 1),
    rolled_rowid integer not null);
INSERT INTO "rollup_state" VALUES(1,3);
CREATE INDEX "idx_probe_results_network_started_at"
    ON "probe_results" ("network", "started_at");
CREATE INDEX "idx_probe_results_job_started_at"
    ON "probe_results" ("job", "started_at");
CREATE INDEX equality_verdicts_by_network on equality_verdicts (network, started_at);
CREATE INDEX capacity_ladders_network_started on capacity_ladders (network, started_at);
CREATE INDEX "idx_capacity_runs_ladder_id"
    ON "capacity_runs" ("ladder_id");
CREATE INDEX quality_audits_by_network on quality_audits (network, started_at);
CREATE INDEX contract_runs_by_network on contract_runs (network, started_at);
CREATE INDEX contract_tool_grades_by_run on contract_tool_grades (run_id);
CREATE INDEX contract_params_by_run on contract_params (run_id);
CREATE INDEX fingerprint_verdicts_by_network on fingerprint_verdicts (network, started_at);
COMMIT;
