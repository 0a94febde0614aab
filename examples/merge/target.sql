-- The new shop's schema: pos-a and shop-b are merged into it (make run).
DROP SCHEMA IF EXISTS shop_v2 CASCADE;
CREATE SCHEMA shop_v2;

-- One row per real-world customer; ids are derived from (system, entity,
-- old id) of the surviving record, so a rerun gives the same ids.
CREATE TABLE shop_v2.customers (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    phone         text,          -- E.164; unique after dedupe, not declared so
    email         text,          -- lowercased
    joined        date,
    level         text,          -- regular | silver | gold (pos-a only)
    province      text,
    city          text,
    district      text,
    address       text,          -- the street part after the district
    source_system text NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX customers_phone_idx ON shop_v2.customers (phone);
CREATE INDEX customers_email_idx ON shop_v2.customers (email);

CREATE TABLE shop_v2.orders (
    id            bigint PRIMARY KEY,
    order_number  text NOT NULL UNIQUE,  -- taken in both systems: <system>-<number>
    customer_id   bigint NOT NULL REFERENCES shop_v2.customers,
    status        text NOT NULL,
    total         numeric(12,2) NOT NULL,
    ordered_at    timestamptz NOT NULL,
    source_system text NOT NULL
);

CREATE TABLE shop_v2.order_items (
    id            bigint PRIMARY KEY,
    order_id      bigint NOT NULL REFERENCES shop_v2.orders,
    line          int,
    sku           text NOT NULL,
    qty           int NOT NULL,
    unit_price    numeric(12,2) NOT NULL,
    source_system text NOT NULL
);
