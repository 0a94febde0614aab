-- The legacy order system the demo migrates from (deterministic).
DROP SCHEMA IF EXISTS legacy CASCADE;
CREATE SCHEMA legacy;
CREATE TABLE legacy.orders (
    order_id   integer PRIMARY KEY,
    cust_id    integer,
    order_no   text,
    status     text,
    amount     numeric(14,4),
    created    timestamp,
    remark     text
);
INSERT INTO legacy.orders
SELECT g,
       1 + (g * 7) % 60,
       'SO-' || lpad(g::text, 6, '0'),
       (ARRAY['new','paid','shipped','done'])[1 + g % 4],
       round(((g * 37) % 100000) / 100.0, 2),
       timestamp '2023-01-01 08:00' + (g || ' minutes')::interval * 97,
       CASE WHEN g % 50 = 0 THEN E'gift wrap\tplease' ELSE NULL END
FROM generate_series(1, 2400) AS g;
-- Rejected on purpose: an unknown status, a negative amount, a too-long order number.
UPDATE legacy.orders SET status = 'lost?' WHERE order_id IN (101, 202);
UPDATE legacy.orders SET amount = -5.00 WHERE order_id = 303;
UPDATE legacy.orders SET order_no = 'SO-' || repeat('9', 30) WHERE order_id = 404;
