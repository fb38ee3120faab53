-- A finalized invoice and a credit note show their issuer as it was when
-- they were issued: `tally issuer set` changing a name, address, tax id or
-- email later must not change a document already sent. The details are
-- copied onto the document when it is finalized (invoices) or issued
-- (credit notes). Documents issued before this migration get the details
-- as they are now, the best record there is (the immutability triggers are
-- set aside for that one statement each, inside this transaction).
ALTER TABLE invoices ADD COLUMN issuer_details jsonb
    CHECK (issuer_details IS NULL OR jsonb_typeof(issuer_details) = 'object');
ALTER TABLE credit_notes ADD COLUMN issuer_details jsonb
    CHECK (issuer_details IS NULL OR jsonb_typeof(issuer_details) = 'object');

ALTER TABLE invoices DISABLE TRIGGER invoices_immutable;
UPDATE invoices i SET issuer_details = jsonb_build_object('name', s.name, 'address', s.address, 'tax_id', s.tax_id,
                                                          'email', s.email)
FROM issuers s WHERE s.issuer = i.issuer AND i.status <> 'draft';
ALTER TABLE invoices ENABLE TRIGGER invoices_immutable;

ALTER TABLE credit_notes DISABLE TRIGGER credit_notes_immutable;
UPDATE credit_notes c SET issuer_details = jsonb_build_object('name', s.name, 'address', s.address, 'tax_id', s.tax_id,
                                                              'email', s.email)
FROM issuers s WHERE s.issuer = c.issuer;
ALTER TABLE credit_notes ENABLE TRIGGER credit_notes_immutable;

-- From now on every issued document carries them.
ALTER TABLE credit_notes ADD CONSTRAINT credit_notes_issuer_details CHECK (issuer_details IS NOT NULL);
ALTER TABLE invoices ADD CONSTRAINT invoices_issuer_details CHECK (status = 'draft' OR issuer_details IS NOT NULL);
