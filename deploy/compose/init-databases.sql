-- Runs once, when the PostgreSQL volume is new: one database per service, owned by the
-- compose user (POSTGRES_USER). The schemas come from the migrate-* steps.
CREATE DATABASE liner_review;
CREATE DATABASE liner_forum;
CREATE DATABASE liner_catalog;
