-- A PostgreSQL database of schema version 5 (tests/data/schema/README.md):
-- data sets "snapshots" (keep 3; account-2 compressed; account-3 with
-- manifests) and "carts", as snapstore wrote them, dumped with pg_dump --inserts
-- --no-owner --no-privileges (its psql-only \restrict lines removed, so that
-- any client can run it as one multi-statement string).
--
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: carts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.carts (
    persistence_id text NOT NULL COLLATE pg_catalog."C",
    seq bigint NOT NULL,
    ts bigint NOT NULL,
    slice integer NOT NULL,
    body bytea NOT NULL,
    manifest text
);
ALTER TABLE ONLY public.carts ALTER COLUMN body SET STORAGE EXTERNAL;


--
-- Name: carts_dicts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.carts_dicts (
    id bigint NOT NULL,
    name text NOT NULL,
    created bigint NOT NULL,
    body bytea NOT NULL
);


--
-- Name: carts_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.carts_keys (
    unit text NOT NULL COLLATE pg_catalog."C",
    generation bigint NOT NULL,
    master_version bigint NOT NULL,
    wrapped bytea
)
WITH (fillfactor='50');


--
-- Name: snapshots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.snapshots (
    persistence_id text NOT NULL COLLATE pg_catalog."C",
    seq bigint NOT NULL,
    ts bigint NOT NULL,
    slice integer NOT NULL,
    body bytea NOT NULL,
    manifest text
);
ALTER TABLE ONLY public.snapshots ALTER COLUMN body SET STORAGE EXTERNAL;


--
-- Name: snapshots_dicts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.snapshots_dicts (
    id bigint NOT NULL,
    name text NOT NULL,
    created bigint NOT NULL,
    body bytea NOT NULL
);


--
-- Name: snapshots_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.snapshots_keys (
    unit text NOT NULL COLLATE pg_catalog."C",
    generation bigint NOT NULL,
    master_version bigint NOT NULL,
    wrapped bytea
)
WITH (fillfactor='50');


--
-- Name: snapstore_meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.snapstore_meta (
    name text NOT NULL,
    value bigint NOT NULL
);


--
-- Name: snapstore_settings; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.snapstore_settings (
    table_name text NOT NULL,
    name text NOT NULL,
    value bigint NOT NULL
);


--
-- Data for Name: carts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.carts VALUES ('cart-9', 1, 1700000003000, 557, '\x534e5042010100000000000011000000000000007b226974656d73223a5b22746561225d7d31010437', NULL);


--
-- Data for Name: carts_dicts; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: carts_keys; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: snapshots; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.snapshots VALUES ('account-1', 1, 1700000000000, 150, '\x534e504201010000000000001c000000000000007b226f776e6572223a22616461222c2262616c616e6365223a31307dfee8d4f5', NULL);
INSERT INTO public.snapshots VALUES ('account-1', 2, 1700000001000, 150, '\x534e504201010000000000001c000000000000007b226f776e6572223a22616461222c2262616c616e6365223a32357de2a2e58a', NULL);
INSERT INTO public.snapshots VALUES ('account-2', 7, 1700000002000, 771, '\x534e50420101010000000000720000000000000018950dcb4b0ac2401445c1bdbcf119e4befea6b7220ed2123010d210051171ef5af3fad8781deb69cdfae886f5655f8edb6a2d60f7edf11ce7dbda453881482253a8cc6842428e028a28a18c0aaa68c627fc7f1c0f78c4139ef182d7ebf707c4ad1b3ed9d5c836', NULL);
INSERT INTO public.snapshots VALUES ('account-3', 1, 1700000004000, 368, '\x534e504202010000000000001a000000000000001300040e0062616e6b2e4163636f756e742f317b226f776e6572223a226379222c2263656e7473223a3530307dfc684e5e', 'bank.Account/1');
INSERT INTO public.snapshots VALUES ('account-3', 2, 1700000005000, 368, '\x534e504202010000000000001e000000000000001300040e0062616e6b2e4163636f756e742f327b226f776e6572223a226379222c22616d6f756e74223a22352e3030227d94ca5f78', 'bank.Account/2');


--
-- Data for Name: snapshots_dicts; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: snapshots_keys; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: snapstore_meta; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.snapstore_meta VALUES ('schema_version:snapshots', 5);
INSERT INTO public.snapstore_meta VALUES ('schema_version:carts', 5);


--
-- Data for Name: snapstore_settings; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.snapstore_settings VALUES ('snapshots', 'keep', 3);
INSERT INTO public.snapstore_settings VALUES ('carts', 'keep', 3);


--
-- Name: carts_dicts carts_dicts_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.carts_dicts
    ADD CONSTRAINT carts_dicts_name_key UNIQUE (name);


--
-- Name: carts_dicts carts_dicts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.carts_dicts
    ADD CONSTRAINT carts_dicts_pkey PRIMARY KEY (id);


--
-- Name: carts_keys carts_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.carts_keys
    ADD CONSTRAINT carts_keys_pkey PRIMARY KEY (unit);


--
-- Name: carts carts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.carts
    ADD CONSTRAINT carts_pkey PRIMARY KEY (persistence_id, seq);


--
-- Name: snapshots_dicts snapshots_dicts_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots_dicts
    ADD CONSTRAINT snapshots_dicts_name_key UNIQUE (name);


--
-- Name: snapshots_dicts snapshots_dicts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots_dicts
    ADD CONSTRAINT snapshots_dicts_pkey PRIMARY KEY (id);


--
-- Name: snapshots_keys snapshots_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots_keys
    ADD CONSTRAINT snapshots_keys_pkey PRIMARY KEY (unit);


--
-- Name: snapshots snapshots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots
    ADD CONSTRAINT snapshots_pkey PRIMARY KEY (persistence_id, seq);


--
-- Name: snapstore_meta snapstore_meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapstore_meta
    ADD CONSTRAINT snapstore_meta_pkey PRIMARY KEY (name);


--
-- Name: snapstore_settings snapstore_settings_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapstore_settings
    ADD CONSTRAINT snapstore_settings_pkey PRIMARY KEY (table_name, name);


--
-- PostgreSQL database dump complete
--


