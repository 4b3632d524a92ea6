-- Runs once when the PostgreSQL volume is created: the database for framecast's frame metrics
-- (FRAMECAST_METRICS_DB), next to Airflow's metadata database.
CREATE DATABASE framecast_metrics OWNER airflow;
