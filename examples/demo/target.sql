-- The new system's schema (the demo loads into it).
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
    id            bigint PRIMARY KEY,
    full_name     text NOT NULL,
    email         text,
    phone         varchar(20),
    signed_up     date,
    tier          text NOT NULL,
    credit_limit  numeric(10,2),
    source_system text NOT NULL
);
CREATE TABLE shop.orders (
    id           bigint PRIMARY KEY,
    customer_id  bigint NOT NULL,
    order_number varchar(20) NOT NULL,
    status       text NOT NULL,
    total        numeric(12,2) NOT NULL,
    ordered_at   timestamptz,
    note         text
);
